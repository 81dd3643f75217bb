"""Figures of a fit: the h2 posterior, the equivalence seen, genetic values, diagnostics, partitioned h2.

Every function takes fit objects (from ``GBLUP.fit``, ``MBLUP.fit``, ``MultiGBLUP.fit`` ...) and
returns a :class:`matplotlib.figure.Figure`; :func:`write_plots` writes the ones that apply as PNGs
(``bayesblup fit ... --plots``). Distributions and diagnostics are drawn by ArviZ (arviz-plots,
matplotlib backend); the rest with matplotlib directly. Intervals are equal-tailed, 90% by default,
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

from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = [
    "plot_energy",
    "plot_equivalence",
    "plot_genetic_correlations",
    "plot_genetic_values",
    "plot_h2",
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
    """h2 and the sampled variances (no derived per-set ratios), for the diagnostics."""
    post = fit.datatree["posterior"]
    names = [n for n in fit.parameter_names if n in post and post[n].ndim == 2]
    keep = [n for n in names if n.startswith("h2") or (n.startswith("sigma2") and "equiv" not in n)]
    return keep or names[:4]


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


def plot_genetic_values(fit, *, prob: float = 0.9, label_top: int = 0):
    """Caterpillar plot: genetic values ranked by posterior mean, with intervals, coloured by reliability.

    The interval is ``mean +- z sd`` (z the normal quantile of ``prob``): given the variances each
    genetic value is Gaussian, so this is the normal interval of its posterior mean and sd.
    Individuals without a record (predicted from their relatives alone) are drawn as open squares.

    Parameters
    ----------
    label_top : int
        Write the IDs of this many top-ranked individuals beside their points.
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from scipy.stats import norm

    if fit.method == "map":
        raise InputError(f"plots need posterior draws; this fit used method={fit.method!r}. Fit with NUTS.")
    gv = fit.genetic_values.sort_values("mean", ascending=False).reset_index(drop=True)
    z = float(norm.ppf(0.5 + prob / 2))
    rank = np.arange(1, len(gv) + 1)
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.vlines(rank, gv["mean"] - z * gv["sd"], gv["mean"] + z * gv["sd"], color="#bbbbbb", linewidth=0.6, zorder=1)
    phenotyped = gv["phenotyped"].to_numpy(dtype=bool)
    norm_rel = {"vmin": 0.0, "vmax": 1.0, "cmap": "viridis"}
    dots = ax.scatter(
        rank[phenotyped], gv["mean"][phenotyped], c=gv["reliability"][phenotyped], s=9, zorder=2,
        label="phenotyped", **norm_rel,
    )  # fmt: skip
    if (~phenotyped).any():  # open squares, edged in the reliability colour
        edges = dots.cmap(dots.norm(gv["reliability"][~phenotyped].to_numpy()))
        ax.scatter(
            rank[~phenotyped], gv["mean"][~phenotyped], s=26, marker="s", facecolors="none", edgecolors=edges,
            zorder=3, label="no record (predicted)",
        )  # fmt: skip
    for i in range(min(label_top, len(gv))):
        ax.annotate(str(gv["id"][i]), (rank[i], gv["mean"][i]), fontsize="x-small", xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    fig.colorbar(dots, ax=ax, label="reliability (1 - PEV / prior variance)")
    ax.axhline(0.0, color=GREY, linewidth=0.6)
    ax.set_xlabel("rank by posterior mean")
    ax.set_ylabel(f"genetic value ({prob:.0%} interval)")
    ax.set_title(f"Genetic values of {len(gv)} individuals ({_about(fit)['model']})")
    ax.legend(loc="upper right", fontsize="small", markerscale=1.5)
    return fig


def plot_trace(fit, var_names: list[str] | None = None):
    """Trace and marginal density per chain (arviz-plots ``plot_trace_dist``) of h2 and the variances."""
    azp = require_matplotlib()
    _draws(fit, "h2")
    names = var_names or _variance_components(fit)
    return _figure(azp.plot_trace_dist(fit.datatree, var_names=names, backend="matplotlib"))


def plot_rank(fit, var_names: list[str] | None = None):
    """Rank plots per chain (arviz-plots ``plot_rank``): flat when the chains mix."""
    azp = require_matplotlib()
    _draws(fit, "h2")
    names = var_names or _variance_components(fit)
    return _figure(azp.plot_rank(fit.datatree, var_names=names, backend="matplotlib"))


def plot_energy(fit):
    """Energy diagnostics (arviz-plots ``plot_energy``): marginal against transition energy, and BFMI."""
    azp = require_matplotlib()
    _draws(fit, "h2")
    return _figure(azp.plot_energy(fit.datatree, backend="matplotlib"))


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


def write_plots(fit, folder: str | Path, *, reference: dict[str, float] | None = None) -> list[Path]:
    """Write every plot that applies to ``fit`` as PNGs into an existing ``folder``; returns the paths.

    h2.png, genetic_values.png, trace.png, rank.png (with two chains or more), energy.png, and
    partitioned_h2.png for several marker sets. A file that exists is not replaced (the command line writes into
    a new folder).
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
