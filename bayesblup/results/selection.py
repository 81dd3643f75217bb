"""Selection: the best candidates by posterior mean, and each one's probability of being in the top fraction.

``P(i in the top k%)`` is the share of joint posterior draws of the candidates' genetic values in which
individual i is among the ``t = ceil(k n_c)`` best of the ``n_c`` candidates (the top 10% of 95 candidates is
the best 10). In every draw exactly t candidates are in the top, so the probabilities sum to t over the
candidates, draw by draw and hence exactly; a tie within a draw (a duplicated genotype, MAP's conditional
draws) goes to the candidate listed first. The draws are exact draws of g given each retained draw of the
parameters (:mod:`bayesblup.inference.joint_draws`; the latent form's own draws of g), at most ``draws``
parameter draws evenly spaced over the posterior, with several draws of g at each where there are fewer (MAP:
one, the mode; the probability is then conditional on it). Each probability is a mean of D indicators: its
Monte Carlo sd is ``sqrt(p (1 - p) / D)``, at most ``0.5 / sqrt(D)`` (0.016 for D = 1000) when the draws are
independent (quadrature, MAP), more when the parameters are NUTS's autocorrelated draws.

Ranking by the posterior mean and the probability of being in the top answer different questions: an
individual of lower reliability (a wide posterior, e.g. a candidate without a record, related to few that have
one) can have a lower mean than another and still a higher chance of being in the top, or the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..inference.joint_draws import kernels_draws, single_kernel_draws, theta_plan, unphenotyped_terms
from ..inference.posterior import evenly_spaced
from .draws import beta_draws as _beta
from .draws import flat_draws as _flat
from .draws import theta_draws as _theta

__all__ = [
    "COLUMNS", "check_top", "check_top_options", "describe", "format_selection", "genetic_draws", "top_count",
    "top_counts", "top_table",
]  # fmt: skip

#: The columns of ``fit.top()`` and of selection.csv, in order.
COLUMNS = ["rank", "id", "mean", "sd", "reliability", "phenotyped", "p_top"]


def top_count(n_candidates: int, fraction: float) -> int:
    """``t = ceil(fraction n_candidates)``, at least 1: how many candidates make the top ``fraction`` in a draw.

    The product is rounded to 9 decimals first, so that 0.1 x 30 (3.0000000000000004 in floating point) is 3.
    """
    return min(n_candidates, max(1, math.ceil(round(fraction * n_candidates, 9))))


def check_top_options(n, fraction, draws=1000) -> None:
    """The numbers of ``--top N --top-fraction F`` (and ``fit.top``'s ``draws``), refused before anything is read."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"the number of individuals to list (--top, n=) must be an integer of at least 1, got {n!r}.")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction < 1:
        raise InputError(
            f"the top fraction (--top-fraction, fraction=) must lie strictly between 0 and 1, got {fraction!r}: e.g. "
            "0.1 for the top 10%."
        )
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise InputError(f"draws must be an integer of at least 1, got {draws!r}.")


def _candidates(model, candidates) -> tuple[np.ndarray, str]:
    """Positions of the candidates among the model's individuals (records first), and their label."""
    ids = model.individuals.astype(str)
    if isinstance(candidates, str):
        if candidates == "all":
            return np.arange(ids.size), "all"
        if candidates == "unphenotyped":
            if ids.size == model.n:
                raise InputError(
                    "candidates='unphenotyped': every individual of this fit has a record; put the candidates in the "
                    "genotypes (or G) without a phenotype, or rank candidates='all'."
                )
            return np.arange(model.n, ids.size), "unphenotyped"
        raise InputError(
            f"candidates is 'all', 'unphenotyped' or a list of individual IDs; got the string {candidates!r}."
        )
    wanted = [str(i) for i in candidates]
    position = {name: k for k, name in enumerate(ids)}
    absent = [i for i in wanted if i not in position]
    if absent:
        raise InputError(f"{len(absent)} candidates are not individuals of the fit: {preview(absent, 10)}.")
    twice = sorted({i for i in wanted if wanted.count(i) > 1})
    if twice:
        raise InputError(f"candidates name {preview(twice, 10)} more than once; give each candidate once.")
    if not wanted:
        raise InputError("candidates is an empty list; give at least one individual ID.")
    return np.array([position[i] for i in wanted], dtype=np.intp), "list"


def check_top(
    model, n: int, fraction: float, *, method: str, candidates="all", draws: int = 1000
) -> tuple[np.ndarray, str]:
    """Refuse what ``fit.top`` cannot do for this model and method, before sampling.

    Returns the candidates' positions among the model's individuals (records first) and their label.
    """
    check_top_options(n, fraction, draws)
    if model.multi_trait:
        raise InputError(
            "a selection list (--top, fit.top) is not available for several traits yet: fit the trait to select on "
            "alone with --top, or sort genetic_values.csv by that trait's mean."
        )
    if model.threshold and method == "map":
        raise InputError(
            "a selection list (--top, fit.top) needs joint draws of g, which the Laplace mode of a binary or ordinal "
            "trait (method map) does not give (it holds each individual's mean and sd): use --method nuts."
        )
    positions, label = _candidates(model, candidates)
    if n > positions.size:
        raise InputError(
            f"a selection list of the best {n} (--top, n=) needs as many candidates; the fit has {positions.size}: "
            f"give at most {positions.size}."
        )
    return positions, label


@dataclass
class GeneticDraws:
    """Joint draws of g over every individual, by chunks, and how they were made."""

    chunks: Iterator[np.ndarray]  # (k, N) each
    n_theta: int  # parameter draws used
    repeats: int  # draws of g at each
    source: str  # how, in words


def genetic_draws(fit, *, draws: int = 1000, seed: int | None = None) -> GeneticDraws:
    """Joint posterior draws of every individual's genetic value (records first), at most ``draws`` thetas.

    The latent form's own draws of g (evenly thinned); the marginal form's exact draws given each theta
    (:mod:`bayesblup.inference.joint_draws`), seeded by ``seed`` (the fit's seed when None).
    """
    model = fit.model
    post = fit.datatree["posterior"]
    seed = fit.settings.get("seed") if seed is None else seed
    rng = np.random.default_rng(seed)
    if model.form == "latent":
        g = np.asarray(post["g"].values, dtype=np.float64)
        g = g.reshape(-1, g.shape[-1])
        used = evenly_spaced(g.shape[0], draws)
        chunks = (g[used[k : k + 256]] for k in range(0, used.size, 256))
        return GeneticDraws(chunks, used.size, 1, "the sampler's draws of g (latent form)")
    D = post.sizes["chain"] * post.sizes["draw"]
    used, repeats = theta_plan(D, draws)
    if model.single:
        theta = _theta(post, model)
        data = model.spectral_data
        unphenotyped = unphenotyped_terms(data, model.kernels[0], model.targets.get("unphenotyped"), model.factor)
        chunks = single_kernel_draws(
            data, unphenotyped, theta.pop("mu"), theta.pop("sigma2_k"), theta.pop("sigma2_e"), **theta,
            columns=np.repeat(used, repeats), rng=rng,
        )  # fmt: skip
        how = "exact draws of g given each draw of the parameters (marginal form)"
        return GeneticDraws(chunks, used.size, repeats, how)
    chunks = kernels_draws(
        model.kernels_data, _flat(post, "mu"), {k.name: _flat(post, k.variance_name) for k in model.kernels},
        _flat(post, "sigma2_e"), beta=_beta(post, model),
        sigma2_pe=_flat(post, "sigma2_pe") if model.permanent_environment else None, used=used, repeats=repeats,
        rng=rng,
    )  # fmt: skip
    return GeneticDraws(chunks, used.size, repeats, "Matheron's exact draws of g given each draw of the parameters")


def top_counts(chunks, positions: np.ndarray, t: int) -> tuple[np.ndarray, int]:
    """Per candidate, in how many draws it is among the t best candidates; and the number of draws.

    Within a draw the candidates are ordered by value, a tie going to the one listed first (a stable sort).
    """
    counts = np.zeros(positions.size, dtype=np.int64)
    total = 0
    for g in chunks:
        x = g[:, positions]
        best = np.argsort(-x, axis=1, kind="stable")[:, :t]
        counts += np.bincount(best.ravel(), minlength=positions.size)
        total += x.shape[0]
    return counts, total


def top_table(fit, n: int = 20, *, fraction: float = 0.10, candidates="all", draws: int = 1000, seed=None):
    """:meth:`BLUPFit.top`: the n best candidates by posterior mean, with P(in the top ``fraction``)."""
    model = fit._require_model("a selection list (fit.top)")
    positions, label = check_top(model, n, fraction, method=fit.method, candidates=candidates, draws=draws)
    t = top_count(positions.size, fraction)
    source = genetic_draws(fit, draws=draws, seed=seed)
    counts, total = top_counts(source.chunks, positions, t)
    table = fit.genetic_values.iloc[positions][["id", "mean", "sd", "reliability", "phenotyped"]].copy()
    table["p_top"] = counts / total
    table = table.sort_values("mean", ascending=False, kind="stable").head(n).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.attrs = {
        "fraction": float(fraction),
        "candidates": label,
        "n_candidates": int(positions.size),
        "n_top": int(t),
        "n_draws": int(total),
        "n_theta": int(source.n_theta),
        "draws_per_theta": int(source.repeats),
        "draws_of_g": source.source,
        "mc_sd_max": 0.5 / math.sqrt(total),
        "conditional_on_mode": fit.method == "map",
    }
    return table[COLUMNS]


def describe(attrs: dict, n_rows: int) -> str:
    """One line saying what a selection table holds (the command line's, and ``bayesblup summary``'s)."""
    pct = f"{100 * attrs['fraction']:g}%"
    who = {"all": "candidates", "unphenotyped": "candidates without a record", "list": "candidates"}[
        attrs["candidates"]
    ]
    line = (
        f"selection.csv: the best {n_rows} by posterior mean of the {attrs['n_candidates']} {who}; p_top = P(in the "
        f"top {pct}: the best {attrs['n_top']}) from {attrs['n_draws']} joint draws of g (Monte Carlo sd at most "
        f"{attrs['mc_sd_max']:.3f})"
    )
    if attrs.get("conditional_on_mode"):
        line += ", given the MAP variances"
    return line


def format_selection(table: pd.DataFrame, rows: int = 5) -> list[str]:
    """The head of a selection table as aligned text lines, after :func:`describe`'s line."""
    head = table.head(rows)
    width = max(4, *(len(str(i)) for i in head["id"])) if len(head) else 4
    lines = [describe(table.attrs, len(table))] if table.attrs else []
    lines.append(f"{'rank':>5}  {'id':<{width}}{'mean':>10}{'sd':>9}{'reliability':>13}{'phenotyped':>12}{'p_top':>8}")
    for row in head.itertuples(index=False):
        lines.append(
            f"{row.rank:>5}  {row.id!s:<{width}}{row.mean:>10.4f}{row.sd:>9.4f}{row.reliability:>13.3f}"
            f"{bool(row.phenotyped)!s:>12}{row.p_top:>8.3f}"
        )
    return lines
