"""Figures of a fit: h2, the equivalence seen, genetic values, diagnostics, partitioned h2, marker effects.

Every function takes fit objects (from ``GBLUP.fit``, ``MBLUP.fit``, ``MultiGBLUP.fit`` ...) and
returns a :class:`matplotlib.figure.Figure`; :func:`write_plots` writes the ones that apply as PNGs
(``bayesblup fit ... --plots``). h2's density and the rank plots are drawn by ArviZ (arviz-plots,
matplotlib backend), labelled here; the rest with matplotlib directly. Intervals are equal-tailed, 90% by default,
the same as ``fit.summary()``'s q05 and q95. matplotlib is an optional dependency: ``pip install
'bayesblup[plots]'``.

Example (wheat trait y1)::

    import bayesblup as bb
    wheat = bb.datasets.load_wheat()
    geno, _ = bb.quality_control(wheat.genotypes)
    fit = bb.GBLUP(wheat.phenotypes["y1"], bb.genomic_relationship(geno), prior="bglr").fit(seed=1)
    bb.plots.plot_h2(fit, reference={"REML (rrBLUP)": 0.499}).savefig("h2.png")
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = [
    "plot_energy",
    "plot_equivalence",
    "plot_genetic_correlations",
    "plot_genetic_values",
    "plot_h2",
    "plot_marker_effects",
    "plot_partitioned_h2",
    "plot_rank",
    "plot_trace",
    "write_plots",
]

#: Colours: posterior (G-BLUP), M-BLUP, reference lines.
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#555555"


def require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise InputError("plots need matplotlib, which is not installed: pip install 'bayesblup[plots]'.") from exc
    import arviz_plots

    return arviz_plots


def _draws(fit, name: str) -> np.ndarray:
    """Every posterior draw of a scalar parameter; refused for a MAP fit (no draws; quadrature's are independent)."""
    if fit.method == "map":
        raise InputError(f"plots need posterior draws; this fit used method={fit.method!r}. Fit with NUTS.")
    post = fit.datatree["posterior"]
    if name not in post:
        raise InputError(f"the fit has no parameter {name!r}; it has {', '.join(post.data_vars)}.")
    return np.asarray(post[name]).ravel()


def _figure(pc):
    """The matplotlib Figure behind an arviz-plots PlotCollection."""
    return pc.viz["figure"].item()


def _axes(pc, name: str):
    return pc.viz["plot"][name].values.flat[0]


def _interval(draws: np.ndarray, prob: float) -> tuple[float, float]:
    tail = (1 - prob) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def _about(fit) -> dict:
    """``model`` name, ``prior`` label and ``sets`` ({set: markers}, or None), from the model or summary.json.

    A fit read back by :func:`bayesblup.load_fit` may have no model; its stored summary says the same.
    """
    stored = getattr(fit, "stored", None)
    if stored is not None:
        sets = stored.get("sets")
        markers = None if sets is None else {k: v["n_markers"] for k, v in sets.items()}
        return {"model": stored["model"], "prior": stored["prior"], "sets": markers}
    model = fit.model
    markers = None if model.single else {k.name: k.n_markers for k in model.kernels}
    return {"model": model.name, "prior": getattr(model, "prior_label", None), "sets": markers}


def _variance_components(fit) -> list[str]:
    """h2 and the sampled variances (no derived per-set ratios), and any other parameter the diagnostics warn about.

    A warning (R-hat above 1.01, ESS below 400) names its parameter and points to the trace plot (``--plots``):
    that parameter is drawn too, even when it is not a variance (``mu``, say).
    """
    from .results.fit import THRESHOLDS

    post = fit.datatree["posterior"]
    names = [n for n in fit.parameter_names if n in post and post[n].ndim == 2]
    keep = [n for n in names if n.startswith("h2") or (n.startswith("sigma2") and "equiv" not in n)]
    table = fit.summary()
    flagged = [
        n for n in names if n in table.index and n not in keep and (
            table.loc[n, "r_hat"] > THRESHOLDS["r_hat"]
            or min(table.loc[n, "ess_bulk"], table.loc[n, "ess_tail"]) < THRESHOLDS["ess"]
        )
    ]  # fmt: skip
    return (keep + flagged) or names[:4]


def plot_h2(fit, *, reference: dict[str, float] | None = None, prob: float = 0.9):
    """The posterior of h2 with its equal-tailed interval, against reference point estimates.

    Parameters
    ----------
    fit : BLUPFit
        A NUTS fit.
    reference : dict of str to float, optional
        Point estimates drawn as vertical lines, e.g. ``{"REML (rrBLUP)": 0.499}``.
    prob : float
        Interval probability (0.9: the summary's q05 and q95).
    """
    azp = require_matplotlib()
    _draws(fit, "h2")
    pc = azp.plot_dist(
        fit.datatree, var_names=["h2"], ci_kind="eti", ci_prob=prob, point_estimate="mean", backend="matplotlib"
    )
    ax = _axes(pc, "h2")
    low, high = _interval(_draws(fit, "h2"), prob)
    ax.plot([], [], color=BLUE, label=f"posterior, {prob:.0%} interval [{low:.3f}, {high:.3f}]")
    for (label, value), style in zip((reference or {}).items(), ("--", ":", "-."), strict=False):
        ax.axvline(value, color=GREY, linestyle=style, label=f"{label}: {value:.3f}")
    ax.set_xlabel("h2 = genetic variance / (genetic + residual variance)")
    about = _about(fit)
    ax.set_title(f"h2 posterior ({about['model']}, prior {about['prior']})")
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, bottom + 1.45 * (top - bottom))  # headroom, so that the legend never covers the curve
    ax.legend(loc="upper left", fontsize="small", framealpha=0.9)
    return _figure(pc)


def _density(ax, draws: np.ndarray, *, color: str, label: str) -> None:
    from scipy.stats import gaussian_kde

    grid = np.linspace(*np.quantile(draws, [0.0005, 0.9995]), 200)
    ax.plot(grid, gaussian_kde(draws)(grid), color=color, label=label)
    ax.fill_between(grid, gaussian_kde(draws)(grid), color=color, alpha=0.15)


def _equivalence_pairs(mblup_fit, gblup_fit) -> list[tuple[str, str, str]]:
    """(title, G-BLUP variable, M-BLUP variable) for each variance and for h2."""
    sets = _about(gblup_fit)["sets"]
    if sets is None:
        pairs = [("sigma2_g (G-BLUP) vs c sigma2_b (M-BLUP)", "sigma2_g", "sigma2_g_equiv")]
    else:
        pairs = [(f"set {k}: sigma2_g vs c_k sigma2_b", f"sigma2_g_{k}", f"sigma2_g_equiv_{k}") for k in sets]
    return [*pairs, ("h2", "h2", "h2")]


def plot_equivalence(mblup_fit, gblup_fit):
    """The equivalence, seen: ``sigma2_g`` of G-BLUP over ``c sigma2_b`` of M-BLUP, and both h2.

    With ``G = WW'/c`` the two models are one model, so the two posteriors of each panel coincide
    up to Monte Carlo error (``c = m`` for the standardised scalings, ``nu_p`` for ``centered``; per
    set with several marker sets). :func:`bayesblup.analyses.equivalence.check_equivalence` gives the numbers.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    if _about(mblup_fit)["model"] != "mblup" or _about(gblup_fit)["model"] != "gblup":
        raise InputError("plot_equivalence(mblup_fit, gblup_fit): pass the M-BLUP fit first, then the G-BLUP fit.")
    pairs = _equivalence_pairs(mblup_fit, gblup_fit)
    fig = Figure(figsize=(4.2 * len(pairs), 3.4), layout="constrained")
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (title, g_name, m_name) in zip(axes, pairs, strict=True):
        _density(ax, _draws(gblup_fit, g_name), color=BLUE, label=f"G-BLUP {g_name}")
        _density(ax, _draws(mblup_fit, m_name), color=ORANGE, label=f"M-BLUP {m_name}")
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("h2" if g_name == "h2" else "genetic variance")
        ax.set_yticks([])
        ax.legend(fontsize="small", frameon=False)
    fig.suptitle("G-BLUP and M-BLUP: one model (eq 7)")
    return fig


#: Reliability bands of the genetic-value plot: one colour per band, so that 0.6 and 0.85 never look alike.
RELIABILITY_EDGES = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)


def _reliability_colours():
    """A discrete colour scale over :data:`RELIABILITY_EDGES` and its norm.

    One colour per band from plasma (perceptually ordered, readable without red-green vision), its pale yellow end
    left out: 0.6 is purple, 0.85 orange, and neighbouring bands differ in hue.
    """
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    bands = len(RELIABILITY_EDGES) - 1
    colours = colormaps["plasma"](np.linspace(0.0, 0.9, bands))
    cmap = ListedColormap(colours).with_extremes(under=GREY)  # below 0 (PEV above the prior variance): grey
    return cmap, BoundaryNorm(RELIABILITY_EDGES, bands)


def plot_genetic_values(fit, *, prob: float = 0.9, top: int = 20):
    """Genetic values: all individuals ranked by posterior mean, and the top ``top`` with their IDs.

    Left, every individual ranked by its posterior mean with its interval; right, the ``top`` best, their IDs on
    the axis and their reliabilities beside. The interval is ``mean +- z sd`` (z the normal quantile of ``prob``:
    1.64 for 90%): given the variances each genetic value is Gaussian, so this is the normal interval of its
    posterior mean and sd. Colour is the reliability, ``1 - PEV / prior variance``, in bands
    (:data:`RELIABILITY_EDGES`). Filled circles: individuals with a record; open squares: individuals without one,
    predicted from their relatives.

    Parameters
    ----------
    fit : BLUPFit
        A fit of one trait, by NUTS or quadrature.
    prob : float
        Interval probability (0.9, as the summary's q05 and q95).
    top : int
        How many of the best individuals to show by ID (0: the ranking alone).
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from scipy.stats import norm

    if fit.method == "map":
        raise InputError(f"plots need posterior draws; this fit used method={fit.method!r}. Fit with NUTS.")
    gv = fit.genetic_values.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
    top = max(0, min(int(top), len(gv)))
    z = float(norm.ppf(0.5 + prob / 2))
    cmap, rel_norm = _reliability_colours()
    fig = Figure(figsize=(12 if top else 9, max(4.6, 0.24 * top + 1.9)), layout="constrained")
    if top:
        ranked, best = fig.subplots(1, 2, width_ratios=(1.5, 1))
    else:
        ranked, best = fig.subplots(), None
    phenotyped = gv["phenotyped"].to_numpy(dtype=bool)
    rank = np.arange(1, len(gv) + 1)
    low, high = gv["mean"] - z * gv["sd"], gv["mean"] + z * gv["sd"]
    ranked.vlines(rank, low, high, color="#bbbbbb", linewidth=0.6, zorder=1)
    dots = ranked.scatter(
        rank[phenotyped], gv["mean"][phenotyped], c=gv["reliability"][phenotyped], cmap=cmap, norm=rel_norm, s=9,
        zorder=2, label="with a record",
    )  # fmt: skip
    if (~phenotyped).any():  # open squares, edged in the reliability colour
        ranked.scatter(
            rank[~phenotyped], gv["mean"][~phenotyped], s=26, marker="s", facecolors="none", zorder=3,
            edgecolors=cmap(rel_norm(gv["reliability"][~phenotyped].to_numpy())), label="no record (predicted)",
        )  # fmt: skip
    ranked.axhline(0.0, color=GREY, linewidth=0.6)
    ranked.set_xlabel("rank by posterior mean")
    ranked.set_ylabel(f"genetic value (trait units), mean and {prob:.0%} interval")
    ranked.set_title(f"All {len(gv)} individuals, ranked", fontsize="medium")
    if top:
        ranked.axvspan(0.5, top + 0.5, color="#dddddd", zorder=0, label=f"top {top}, shown right")
        _top_panel(best, gv.iloc[:top], z=z, cmap=cmap, rel_norm=rel_norm)
    ranked.legend(loc="upper right", fontsize="small", markerscale=1.5)
    bar = fig.colorbar(dots, ax=[ranked, best] if top else ranked, ticks=RELIABILITY_EDGES, extend="min")
    bar.set_label("reliability = 1 - PEV / prior variance")
    fig.suptitle(
        f"Genetic values ({_about(fit)['model']}): posterior mean and {prob:.0%} interval (mean ± {z:.2f} sd); "
        "filled: with a record, open: none (predicted from relatives)",
        fontsize="medium",
    )
    return fig


def _top_panel(ax, best, *, z: float, cmap, rel_norm) -> None:
    """The best individuals, top first: IDs on the left, intervals, reliabilities on the right."""
    y = np.arange(len(best))[::-1]
    phenotyped = best["phenotyped"].to_numpy(dtype=bool)
    colours = cmap(rel_norm(best["reliability"].to_numpy()))
    ax.hlines(y, best["mean"] - z * best["sd"], best["mean"] + z * best["sd"], colors=colours, linewidth=2)
    ax.scatter(best["mean"][phenotyped], y[phenotyped], c=colours[phenotyped], s=30, zorder=3)
    if (~phenotyped).any():
        ax.scatter(
            best["mean"][~phenotyped], y[~phenotyped], marker="s", s=36, facecolors="white",
            edgecolors=colours[~phenotyped], linewidths=1.5, zorder=3,
        )  # fmt: skip
    ax.set_yticks(y, [str(i) for i in best["id"]], fontsize="small")
    ax.set_ylim(-0.7, len(best) - 0.3)
    right = ax.secondary_yaxis("right")
    right.set_yticks(y, [f"{r:.2f}" for r in best["reliability"]], fontsize="small")
    right.set_ylabel("reliability")
    ax.axvline(0.0, color=GREY, linewidth=0.6)
    ax.set_xlabel("genetic value (trait units)")
    ax.set_ylabel("individual (ID)")
    ax.set_title(f"Top {len(best)} by posterior mean", fontsize="medium")
    ax.grid(axis="x", color="#eeeeee")


#: What each kind of parameter is, for the diagnostics' axis labels (a set's or trait's suffix is named after it).
_MEANINGS = {
    "h2": ("heritability, the genetic share of the phenotypic variance", "0-1"),
    "sigma2_g": ("genetic variance", "{units}²"),
    "sigma2_b": ("variance of a marker effect", "{units}²"),
    "sigma2_e": ("residual variance", "{units}²"),
    "sigma2_pe": ("permanent-environment variance", "{units}²"),
    "sigma2_p": ("phenotypic variance", "{units}²"),
    "mu": ("intercept", "{units}"),
}


def _family(fit) -> str:
    model = fit.model
    if model is not None:
        return getattr(model, "family", "gaussian")
    return (fit.stored or {}).get("specification", {}).get("family", "gaussian")


def _describe(fit, name: str) -> tuple[str, str]:
    """``name`` with its units, and what it is: ``("sigma2_e (trait units²)", "sigma2_e: residual variance")``."""
    units = "trait units" if _family(fit) == "gaussian" else "liability units"
    for key in sorted(_MEANINGS, key=len, reverse=True):  # sigma2_pe before sigma2_p
        if name == key or name.startswith(f"{key}_"):
            what, unit = _MEANINGS[key]
            suffix = name[len(key) + 1 :]
            if suffix:
                sets = _about(fit)["sets"] or {}
                kind = "set" if suffix.split("_")[0] in sets else "trait" if suffix in _trait_names(fit) else "term"
                what = f"{what}, {kind} {suffix}"
            return f"{name} ({unit.format(units=units)})", f"{name}: {what}"
    return name, name


def _chain_draws(fit, name: str) -> np.ndarray:
    """(chain, draw) draws of a scalar parameter."""
    _draws(fit, name)  # refuses a MAP fit or an unknown name
    return np.asarray(fit.datatree["posterior"][name].values, dtype=np.float64)


def _chain_colour(chain: int) -> str:
    return f"C{chain % 10}"


def plot_trace(fit, var_names: list[str] | None = None):
    """Trace and marginal density per chain of h2 and the variances: chains that agree overlap and look alike.

    One row per parameter: its density per chain (left) and its draws in order (right), one colour per chain
    (legend above); divergent transitions, if any, are marked under the trace.
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    from scipy.stats import gaussian_kde

    names = var_names or _variance_components(fit)
    draws = {name: _chain_draws(fit, name) for name in names}
    chains = next(iter(draws.values())).shape[0]
    stats = fit.datatree["sample_stats"] if "sample_stats" in fit.datatree.children else None
    diverging = None
    if stats is not None and "diverging" in stats:
        diverging = np.asarray(stats["diverging"].values, dtype=bool)
    fig = Figure(figsize=(11, 2.2 * len(names) + 1.2), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False, width_ratios=(1, 2.2))
    for (density, trace), name in zip(axes, names, strict=True):
        x = draws[name]
        grid = np.linspace(x.min(), x.max(), 200)
        for c in range(chains):
            colour = _chain_colour(c)
            if np.ptp(x[c]) > 0:
                density.plot(grid, gaussian_kde(x[c])(grid), color=colour, linewidth=1)
            trace.plot(np.arange(x.shape[1]), x[c], color=colour, linewidth=0.6, alpha=0.8, label=f"chain {c}")
        if diverging is not None and diverging.any():
            where = np.nonzero(diverging)
            trace.plot(where[1], np.full(where[1].size, x.min()), "|", color="black", markersize=8)
        label, meaning = _describe(fit, name)
        density.set_xlabel(label, fontsize="small")
        density.xaxis.set_major_locator(MaxNLocator(4))
        density.set_yticks([])
        density.set_ylabel("density")
        trace.set_ylabel(label, fontsize="small")
        trace.set_title(meaning, fontsize="small", loc="left")
        if trace is not axes[-1, 1]:
            trace.sharex(axes[-1, 1])
            trace.tick_params(labelbottom=False)
    axes[-1, 1].set_xlabel("draw (after tuning)")
    handles, labels = axes[0, 1].get_legend_handles_labels()
    if diverging is not None and diverging.any():
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], marker="|", color="black", linestyle="none", markersize=8))
        labels.append(f"divergent transition ({int(diverging.sum())})")
    fig.suptitle(f"Trace per chain ({_about(fit)['model']}): the chains should overlap and show no trend")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 8), frameon=False)
    return fig


def plot_rank(fit, var_names: list[str] | None = None):
    """Rank plots per chain (arviz-plots ``plot_rank``), each panel with the parameter's R-hat and ESS.

    ArviZ draws, per chain, the ECDF of its draws' fractional ranks among all chains' draws minus the uniform
    one: flat near 0 when the chains sample the same distribution. Its ``p`` tests that the chains' ranks are
    uniform (the multi-chain test of Säilynoja et al. 2022, flagged below 0.01); R-hat and the bulk and tail ESS
    are the summary's (``summary.json``): rank-normalised split R-hat (Vehtari et al. 2021), which compares the
    chains' location and spread. The two are different checks and can disagree a little: a ``p`` near 0.05 with
    R-hat under 1.01 is what chance gives in about one panel in twenty.
    """
    azp = require_matplotlib()
    from .results.fit import THRESHOLDS

    names = var_names or _variance_components(fit)
    for name in names:
        _draws(fit, name)
    width = min(4, len(names))
    rows = -(-len(names) // width)
    pc = azp.plot_rank(
        fit.datatree, var_names=names, backend="matplotlib", figure_kwargs={"figsize": (4.3 * width, 3.4 * rows + 1.2)}
    )
    fig = _figure(pc)
    table = fit.summary()
    for name in names:
        ax = _axes(pc, name)
        for text in list(ax.texts):  # ArviZ's "p=0.04(α=0.01)", in words
            found = re.match(r"p=([\d.]+)\(α=([\d.]+)\)", text.get_text())
            if found:
                text.set_text(f"uniform ranks? p = {found[1]} (flag < {found[2]})")
                text.set_fontsize("small")
        row = table.loc[name]
        bad = row["r_hat"] > THRESHOLDS["r_hat"] or min(row["ess_bulk"], row["ess_tail"]) < THRESHOLDS["ess"]
        numbers = f"R-hat {row['r_hat']:.3f}\nbulk ESS {row['ess_bulk']:.0f}\ntail ESS {row['ess_tail']:.0f}"
        if np.isnan(row["r_hat"]):  # quadrature's independent draws: the summary gives no R-hat or ESS
            numbers = "independent draws:\nno R-hat or ESS needed"
        ax.text(
            0.98, 0.04, numbers,
            transform=ax.transAxes, ha="right", va="bottom", fontsize="small", color="#d62728" if bad else "black",
            bbox={"facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9},
        )  # fmt: skip
        ax.set_title(_describe(fit, name)[1], fontsize="small")
    lines = pc.viz["ecdf_lines"][names[0]]
    handles = [lines.sel(chain=c).item() for c in lines["chain"].values]
    fig.legend(handles, [f"chain {c}" for c in lines["chain"].values], loc="upper center", ncols=len(handles),
               frameon=False, bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    caption = (
        "Lines: each chain's ranks among all chains' draws, as ECDF minus uniform; flat near 0 when the chains agree. "
        "p: ArviZ's multi-chain uniformity test of the ranks (Säilynoja et al. 2022), flagged below 0.01. R-hat "
        "(rank-normalised split R-hat, Vehtari et al. 2021) and ESS: the summary's, red past "
        f"{THRESHOLDS['r_hat']} or {THRESHOLDS['ess']}. ArviZ's rank plot has no R-hat of its own, and the two checks "
        "differ (R-hat: half-chains' location and spread; the test: whole chains' ranks), so a p near 0.05 beside a "
        "good R-hat, or an R-hat just past 1.01 beside a large p, is chance (about 1 panel in 20)."
    )
    width, height = fig.get_size_inches()
    lines = textwrap.wrap(caption, width=int(width * 15))  # x-small text: about 15 characters per inch
    fig.text(0.01, 0.01, "\n".join(lines), fontsize="x-small", va="bottom")
    bottom = (0.14 * len(lines) + 0.75) / height  # the caption, then the axes' ticks and label above it
    fig.subplots_adjust(bottom=bottom, top=1 - 0.75 / height, hspace=0.6)
    return fig


def bfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain from the Hamiltonian energy (chain, draw): ``mean(diff(E)^2) / var(E)``, as ArviZ."""
    energy = np.atleast_2d(np.asarray(energy, dtype=np.float64))
    return np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1, ddof=1)


#: E-BFMI below which the sampler explores the posterior's tails poorly (Betancourt 2016; ArviZ's threshold).
BFMI_THRESHOLD = 0.3


def plot_energy(fit):
    """Energy diagnostics of NUTS: E-BFMI per chain, and the marginal energy against its transitions.

    Left, the E-BFMI (energy Bayesian fraction of missing information) of each chain, with the 0.3 threshold
    below which NUTS explores the tails poorly. Right, the distribution of the energy (centred) and of its
    changes between successive draws: when the second is much narrower than the first, the momentum resampling
    cannot move the sampler across the energy levels of the posterior (Betancourt 2016).
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    _draws(fit, "h2")
    if "sample_stats" not in fit.datatree.children or "energy" not in fit.datatree["sample_stats"]:
        raise InputError(f"the energy plot needs NUTS's energy; this fit ({fit.method}, {fit.sampler}) has none.")
    energy = np.asarray(fit.datatree["sample_stats"]["energy"].values, dtype=np.float64)
    values = bfmi(energy)
    chains = np.arange(values.size)
    fig = Figure(figsize=(11, max(3.4, 0.35 * values.size + 2)), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 2))
    left.scatter(values, chains, c=[_chain_colour(c) for c in chains], s=40, zorder=3)
    for c, value in zip(chains, values, strict=True):
        left.annotate(f"{value:.2f}", (value, c), xytext=(6, 0), textcoords="offset points", va="center",
                      fontsize="small")  # fmt: skip
    left.axvline(BFMI_THRESHOLD, color="#d62728", linestyle="--", label=f"{BFMI_THRESHOLD}: below, poor exploration")
    left.set_yticks(chains, [f"chain {c}" for c in chains])
    left.set_ylim(values.size - 0.5, -0.5)
    left.set_xlim(0, max(1.0, float(values.max()) * 1.2))
    left.set_xlabel("E-BFMI (higher is better)")
    left.set_title("BFMI per chain", fontsize="medium")
    left.legend(loc="lower right", fontsize="x-small")
    marginal = (energy - energy.mean(axis=1, keepdims=True)).ravel()
    transition = np.diff(energy, axis=1).ravel()
    bins = np.histogram_bin_edges(np.concatenate([marginal, transition]), bins=60)
    right.hist(marginal, bins=bins, density=True, color=BLUE, alpha=0.45, label="marginal energy (centred)")
    right.hist(transition, bins=bins, density=True, color=ORANGE, alpha=0.45, label="energy transition (change)")
    right.set_xlabel("energy (Hamiltonian, per draw)")
    right.set_yticks([])
    right.set_title("Energy: the two should overlap", fontsize="medium")
    right.legend(fontsize="small")
    fig.suptitle(f"NUTS energy ({_about(fit)['model']}, all chains)")
    return fig


def plot_partitioned_h2(fit, *, prob: float = 0.9):
    """Partitioned heritability of a multi-set fit: ``h2_<set>`` and h2 with intervals.

    Beside each set, an open diamond marks what the set would explain if every marker carried the
    same variance (its share of markers times h2): a set well to the right of it is enriched.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    markers = _about(fit)["sets"]
    if markers is None:
        raise InputError("plot_partitioned_h2 needs a fit with several marker sets (MultiGBLUP or MultiMBLUP).")
    traits = _trait_names(fit)
    # (label, parameter, its trait's total h2 parameter, set); several traits: a block of rows per trait
    rows = []
    for trait in traits:
        tag, suffix = (f"{trait}: ", f"_{trait}") if len(traits) > 1 else ("", "")
        rows.append((f"{tag}total h2", f"h2{suffix}", None, None))
        rows += [(f"{tag}h2_{k}", f"h2_{k}{suffix}", f"h2{suffix}", k) for k in markers]
    total = sum(m for m in markers.values() if m is not None)
    fig = Figure(figsize=(6.5, 0.6 * len(rows) + 1.4), layout="constrained")
    ax = fig.subplots()
    for y, (_, name, whole, k) in enumerate(rows[::-1]):
        draws = _draws(fit, name)
        low, high = _interval(draws, prob)
        ax.hlines(y, low, high, color=BLUE, linewidth=2.5)
        ax.plot(float(draws.mean()), y, "o", color=BLUE)
        if k is not None and markers.get(k):
            ax.plot(float(_draws(fit, whole).mean()) * markers[k] / total, y, "D", markerfacecolor="none", color=GREY)
    ax.plot([], [], "o-", color=BLUE, label=f"posterior mean, {prob:.0%} interval")
    if all(markers.values()):
        ax.plot([], [], "D", markerfacecolor="none", color=GREY, label="h2 x share of markers (no enrichment)")
    ax.set_yticks(range(len(rows)), [row[0] for row in rows[::-1]])
    ax.set_xlabel("share of phenotypic variance")
    ax.set_xlim(left=0.0)
    ax.set_title("Partitioned heritability")
    fig.legend(loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    return fig


def _trait_names(fit) -> list[str]:
    """The fit's traits (one, or several for a multi-trait fit)."""
    stored = getattr(fit, "stored", None)
    if fit.model is None and stored is not None:
        trait = stored.get("trait")
        return list(trait) if isinstance(trait, list) else [str(trait)]
    return list(fit.model.traits)


def plot_genetic_correlations(fit, *, prob: float = 0.9):
    """Posteriors of the genetic correlations of a multi-trait fit, one panel per pair, with h2 per trait.

    Each panel shows the posterior density of ``r_g`` for a pair of traits (and, dashed, the residual
    correlation ``r_e``), with the equal-tailed interval of ``r_g`` in the legend; the last panel shows
    each trait's h2. A genetic correlation near +-1 says the traits share their genes' effects; one
    whose interval spans 0 is not told apart from none by these data.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    traits = _trait_names(fit)
    if len(traits) < 2:
        raise InputError("plot_genetic_correlations needs a fit of several traits (--trait y1 y2 ...).")
    pairs = [(a, b) for i, a in enumerate(traits) for b in traits[i + 1 :]]
    panels = len(pairs) + 1
    columns = min(3, panels)
    rows = -(-panels // columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).reshape(-1)
    for ax, (a, b) in zip(axes, pairs, strict=False):
        r_g = _draws(fit, f"r_g_{a}_{b}")
        low, high = _interval(r_g, prob)
        _density(ax, r_g, color=BLUE, label=f"r_g {r_g.mean():.2f} [{low:.2f}, {high:.2f}]")
        r_e = _draws(fit, f"r_e_{a}_{b}")
        ax.hist(r_e, bins=40, density=True, histtype="step", color=GREY, linestyle="--", label=f"r_e {r_e.mean():.2f}")
        ax.axvline(0.0, color=GREY, linewidth=0.8)
        ax.set_xlim(-1, 1)
        ax.set_yticks([])
        ax.set_title(f"{a} and {b}", fontsize="medium")
        ax.set_xlabel("correlation")
        ax.legend(fontsize="small", frameon=False)
    ax = axes[len(pairs)]
    for k, trait in enumerate(traits):
        h2 = _draws(fit, f"h2_{trait}")
        low, high = _interval(h2, prob)
        ax.hlines(k, low, high, color=BLUE, linewidth=2.5)
        ax.plot(float(h2.mean()), k, "o", color=BLUE)
    ax.set_yticks(range(len(traits)), traits)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"h2, posterior mean and {prob:.0%} interval")
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle("Genetic correlations (solid) and residual correlations (dashed)")
    return fig


def _genome_axis(placed) -> tuple[np.ndarray, list[tuple[str, float, float]], list[str]]:
    """Each marker's place along the genome, each chromosome's (name, start, end), and the chromosomes in map order.

    Chromosomes go in natural order with a gap between them. Where a chromosome's markers all share one position
    (a map written without positions, or a .bim's unplaced markers, chromosome 0 at position 0), that
    chromosome's markers are spaced evenly in the fit's order over the median span of the chromosomes that have
    positions, and are named in the returned list; the other chromosomes keep their positions.
    """
    import pandas as pd

    from .genotypes.markers import chromosome_order

    rows = placed["marker"].to_numpy(dtype=str)
    placed = placed.drop_duplicates("marker")  # one row per marker and trait with several traits: place each once
    chromosome = placed["chromosome"].to_numpy(dtype=str)
    position = placed["position"].to_numpy(dtype=np.float64).copy()
    order = chromosome_order(chromosome)
    members = {name: np.flatnonzero(chromosome == name) for name in order}
    flat = [name for name in order if members[name].size > 1 and np.ptp(position[members[name]]) == 0]
    spans = [np.ptp(position[members[name]]) for name in order if name not in flat and members[name].size > 1]
    for name in flat:  # evenly spaced in the fit's order, over a typical chromosome's length (1 a marker if none)
        k = members[name].size
        step = float(np.median(spans)) / (k - 1) if spans else 1.0
        position[members[name]] = np.arange(k) * step
    span = {n: (position[members[n]].min(), position[members[n]].max()) for n in order}
    gap = 0.02 * sum(high - low for low, high in span.values()) or 1.0
    x = np.empty_like(position)
    bounds, start = [], 0.0
    for name in order:
        low, high = span[name]
        x[members[name]] = start + position[members[name]] - low
        bounds.append((name, start, start + high - low))
        start += high - low + gap
    x = pd.Series(x, index=placed["marker"].to_numpy(dtype=str)).reindex(rows).to_numpy()
    return x, bounds, flat


def _order_note(in_map_order: list[str], n_chromosomes: int) -> str:
    """The x label's note on chromosomes without positions, whose markers stand in the fit's order."""
    if not in_map_order:
        return ""
    if len(in_map_order) == n_chromosomes:
        return " (positions missing: markers in file order)"
    names = ", ".join(in_map_order[:5]) + (", ..." if len(in_map_order) > 5 else "")
    return f" (no positions on {names}: markers there in file order)"


def plot_marker_effects(fit, map=None, *, label_top: int = 5):  # map: as the command line's --map
    """Marker effects along the genome (Manhattan-style): posterior mean of each marker's effect b, and ``|mean| / sd``.

    Chromosomes in natural order (1, 2, ..., 10, X; unplaced last), alternately coloured, labelled on the x axis.
    Top, the posterior mean of b (trait units per unit of W: per genotype sd for the standardised scalings, per
    allele for ``centered``); below, ``|mean| / sd``, with a line at the normal quantile of 90% (1.64): markers
    above it have a 90% interval that excludes 0 (given the normal approximation). The ``label_top`` markers with
    the largest ``|mean| / sd`` are named. A MAP fit (sd 0) gets the top panel alone; several traits, one pair of
    panels per trait.

    Parameters
    ----------
    fit : BLUPFit
        A fit with marker effects (M-BLUP; ``fit.marker_effects``).
    map : DataFrame or path, optional
        Columns ``marker, chromosome, position``, or a PLINK ``.bim`` or such a CSV
        (:func:`bayesblup.genotypes.markers.read_marker_map`). Without it, the columns ``chromosome`` and
        ``position`` of ``fit.marker_effects`` (``bayesblup fit --map`` writes them to marker_effects.csv).
    label_top : int
        How many markers to name.

    Raises
    ------
    InputError
        Without marker effects, without a map, or if the map lacks markers of the fit (how many, and the first few).
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from scipy.stats import norm

    from .genotypes.markers import place_markers

    effects = fit.marker_effects
    if effects is None:
        raise InputError(
            "plot_marker_effects needs marker effects: fit M-BLUP (bb.MBLUP, --model mblup); this fit has none."
        )
    if map is not None:
        placed = place_markers(effects["marker"], map)
    elif {"chromosome", "position"} <= set(effects.columns):
        placed = effects[["marker", "chromosome", "position"]].astype({"chromosome": str})
    else:
        raise InputError(
            "plot_marker_effects needs a marker map: map= a DataFrame marker,chromosome,position, a PLINK .bim or a "
            "CSV with those columns (bayesblup fit --map PATH)."
        )
    x, bounds, in_map_order = _genome_axis(placed)
    chromosome = placed["chromosome"].to_numpy(dtype=str)
    traits = list(dict.fromkeys(effects["trait"])) if "trait" in effects.columns else [None]
    sd = effects["sd"].to_numpy(dtype=np.float64)
    with_sd = bool(np.nan_to_num(sd).max() > 0)
    z = float(norm.ppf(0.95))
    rows = len(traits) * (2 if with_sd else 1)
    fig = Figure(figsize=(12, 2.6 * rows + 1.0), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    stripe = {name: (BLUE, "#7aa6c9")[k % 2] for k, (name, _, _) in enumerate(bounds)}
    colours = np.array([stripe[c] for c in chromosome])
    scaling = _scaling(fit)
    per = "allele" if scaling == "centered" else "genotype sd"
    for k, trait in enumerate(traits):
        here = np.ones(len(effects), dtype=bool) if trait is None else (effects["trait"] == trait).to_numpy()
        mean, spread = effects["mean"].to_numpy(dtype=np.float64)[here], sd[here]
        at, tint, names = x[here], colours[here], placed["marker"].to_numpy(dtype=str)[here]
        tag = "" if trait is None else f"{trait}: "
        top_ax = axes[k * (2 if with_sd else 1)]
        size = float(np.clip(8000 / len(at), 5, 20))  # larger dots for a few markers
        top_ax.scatter(at, mean, c=tint, s=size, linewidths=0, rasterized=len(at) > 20_000)
        top_ax.axhline(0.0, color=GREY, linewidth=0.6)
        top_ax.set_ylabel(f"{tag}posterior mean of b\n(trait units per {per})", fontsize="small")
        if not with_sd:
            continue
        ax = axes[k * 2 + 1]
        score = np.abs(mean) / np.where(spread > 0, spread, np.nan)
        ax.scatter(at, score, c=tint, s=size, linewidths=0, rasterized=len(at) > 20_000)
        ax.axhline(z, color="#d62728", linestyle="--", linewidth=0.8, label=f"{z:.2f}: 90% interval excludes 0")
        ax.set_ylabel(f"{tag}|mean| / sd", fontsize="small")
        ax.set_ylim(0, 1.25 * max(z, float(np.nanmax(score, initial=0.0))))  # headroom: the legend above the points
        ax.legend(loc="upper right", fontsize="x-small")
        best = np.argsort(np.nan_to_num(score, nan=-1.0))[::-1][:label_top]
        for j, i in enumerate(best[np.argsort(at[best])]):  # left to right, raised in turn so neighbours do not overlap
            ax.annotate(
                names[i], (at[i], score[i]), fontsize="x-small", xytext=(3, 3 + 9 * (j % 2)),
                textcoords="offset points",
            )  # fmt: skip
    labels = [f"{name} (unplaced)" if name == "0" else name for name, _, _ in bounds]  # PLINK's 0: no chromosome
    axes[-1].set_xticks([(a + b) / 2 for _, a, b in bounds], labels, fontsize="small")
    axes[-1].set_xlabel("chromosome" + _order_note(in_map_order, len(bounds)))
    for ax in axes:
        for _, a, b in bounds[1::2]:
            ax.axvspan(a, b, color="#f2f2f2", zorder=0)
    source = placed.attrs.get("source") or fit.settings.get("marker_map")
    where = f", map {Path(source).name}" if source and source != "the marker map" else ""
    n_markers = placed["marker"].nunique()
    fig.suptitle(f"Marker effects along the genome ({_about(fit)['model']}, {n_markers} markers{where})")
    return fig


def _scaling(fit) -> str | None:
    if fit.model is not None:
        return getattr(fit.model, "scaling", None)
    return (fit.stored or {}).get("scaling")


def write_plots(fit, folder: str | Path, *, reference: dict[str, float] | None = None, map=None) -> list[Path]:
    """Write every plot that applies to ``fit`` as PNGs into an existing ``folder``; returns the paths.

    h2.png, genetic_values.png, trace.png, rank.png (with two chains or more), energy.png, partitioned_h2.png
    for several marker sets, and marker_effects.png for marker effects with a map (``map``, or the columns
    ``chromosome`` and ``position`` that ``bayesblup fit --map`` gives them). A file that exists is not replaced
    (the command line writes into a new folder).
    """
    require_matplotlib()
    import matplotlib.pyplot as plt

    folder = Path(folder)
    figures = {
        "h2": lambda: plot_h2(fit, reference=reference),
        "genetic_values": lambda: plot_genetic_values(fit),
        "trace": lambda: plot_trace(fit),
        "rank": lambda: plot_rank(fit),
        "energy": lambda: plot_energy(fit),
    }
    if len(_trait_names(fit)) > 1:  # h2 per trait is in the correlations' figure; values per trait in the CSV
        del figures["h2"], figures["genetic_values"]
        figures = {"genetic_correlations": lambda: plot_genetic_correlations(fit)} | figures
    if _about(fit)["sets"] is not None:
        figures["partitioned_h2"] = lambda: plot_partitioned_h2(fit)
    if fit.datatree["posterior"].sizes["chain"] < 2:  # ranks compare chains: one chain has nothing to rank
        del figures["rank"]
    if "sample_stats" not in fit.datatree.children:  # no Hamiltonian, no energy: independent draws (quadrature)
        del figures["energy"]
    effects = fit.marker_effects
    if effects is not None and (map is not None or {"chromosome", "position"} <= set(effects.columns)):
        if map is not None:  # a map without the fit's markers is refused before any file is written
            from .genotypes.markers import place_markers

            map = place_markers(effects["marker"].unique(), map)  # (one row per marker and trait with several)
        figures["marker_effects"] = lambda: plot_marker_effects(fit, map)
    written = []
    for name, make in figures.items():
        path = folder / f"{name}.png"
        if path.exists():
            raise InputError(f"{path} exists; plots are written into a new folder and never replace a file.")
        fig = make()
        fig.savefig(path, dpi=110)
        plt.close(fig)  # arviz-plots registers its figures with pyplot: release them
        written.append(path)
    return written
