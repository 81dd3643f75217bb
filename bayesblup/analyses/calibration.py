"""Simulation-based calibration (Talts et al. 2018) and interval coverage for G-BLUP and M-BLUP.

If data are simulated from the prior and the model, and the posterior is computed correctly, then
the true value of every parameter is one more draw from its posterior. So the rank of the truth
among ``L`` independent posterior draws is uniform on ``0, ..., L``, and a central interval of level
``p`` covers the truth with probability exactly ``p`` (averaged over the prior). Each replication:

1. draws the parameters from the prior: ``mu``, and ``sigma2_g`` (``sigma2_b``) and ``sigma2_e``, or
   ``h2`` and ``sigma2_p`` for a prior in the h2 parameterisation (:mod:`bayesblup.models.priors`);
2. simulates ``y = mu 1 + g + e`` exactly from the model, independently of the code that fits it:
   for G-BLUP ``g = sqrt(sigma2_g) L z`` with ``L L' = G`` from the eigendecomposition of G
   (negative rounding-error eigenvalues set to zero), for M-BLUP ``g = W b`` with ``b ~ N(0, sigma2_b
   I_m)``; ``e ~ N(0, sigma2_e I)``;
3. fits the marginal form by NUTS and thins the pooled draws to ``L`` (every ``thin``-th draw,
   ``thin = chains draws // L``);
4. records the rank of each true value among the thinned draws (the number of draws below it), the
   central intervals of the pooled (unthinned) draws, and the fit's diagnostics.

The prior must be a fixed dict of :class:`~bayesblup.Prior` with every variable given, ``"mu"``
included: the presets (and ``mu``'s default) follow ``var(y)`` and ``mean(y)``, so they are not a prior
one can draw from before the data exist. The fits of all replications share one compiled model
(the prior's numbers are data of the compiled graph; :mod:`bayesblup.inference.compiled`), so a
replication at n = 50 with 2 chains x (500 + 500) costs about 0.7 s.

Thinning by a fixed step assumes that draws ``thin`` apart are nearly independent; a bulk ESS below
``L`` would make the histogram U-shaped without any error in the posterior. Each replication's
smallest bulk ESS is recorded (``diagnostics``) to check that assumption.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InputError
from ..genotypes.relationship import Relationship
from ..models.priors import Prior

if TYPE_CHECKING:
    from ..genotypes.scaling import GenotypeMatrix

__all__ = ["SBCResult", "interval_coverage", "rank_uniformity", "simulation_based_calibration", "thinned_rank"]


def thinned_rank(truth: float, draws, draws_per_rank: int) -> int:
    """The rank of ``truth`` among L draws thinned from ``draws``: how many of them lie below it.

    Parameters
    ----------
    truth : float
        The value the data were simulated with.
    draws : array
        Posterior draws, ``(chain, draw)`` or already pooled; pooled chain after chain.
    draws_per_rank : int
        L: every ``thin``-th pooled draw is kept, ``thin = total // L``, and the first L of them.

    Returns
    -------
    int
        A rank in ``0..L``.

    Examples
    --------
    >>> thinned_rank(5.0, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], 5)  # kept: 0, 2, 4, 6, 8
    3
    """
    flat = np.asarray(draws, dtype=np.float64).reshape(-1)
    L = int(draws_per_rank)
    if not 1 <= L <= flat.size:
        raise InputError(f"draws_per_rank must lie in 1..{flat.size} (the number of draws), got {draws_per_rank}.")
    return int((flat[:: flat.size // L][:L] < truth).sum())


def rank_uniformity(ranks, draws_per_rank: int, *, bins: int) -> dict:
    """Pearson's chi-square test that ranks in ``0..L`` are uniform, over ``bins`` equal bins.

    Parameters
    ----------
    ranks : array of int
        One rank per replication, each in ``0..draws_per_rank``.
    draws_per_rank : int
        L, the number of posterior draws each rank was taken among (L + 1 possible ranks).
    bins : int
        B, which must divide L + 1, so that every bin holds the same number of rank values; each bin's
        expected count is then N / B for N ranks. The chi-square approximation wants N / B >= 5.

    Returns
    -------
    dict
        ``chi2`` (the statistic), ``df`` (B - 1), ``p_value`` (upper tail of chi-square with df
        degrees of freedom) and ``histogram`` (counts per bin, a list).

    Examples
    --------
    >>> rank_uniformity(list(range(100)), 99, bins=10)["chi2"]
    0.0
    """
    ranks = np.asarray(ranks)
    L = int(draws_per_rank)
    if ranks.ndim != 1 or ranks.size == 0:
        raise InputError("ranks must be a non-empty one-dimensional array.")
    if not np.issubdtype(ranks.dtype, np.integer) or ranks.min() < 0 or ranks.max() > L:
        raise InputError(f"ranks must be integers in 0..{L} (L = draws_per_rank = {L}).")
    if bins < 2 or (L + 1) % bins:
        raise InputError(f"bins must be at least 2 and divide L + 1 = {L + 1}; divisors: {_divisors(L + 1)}.")
    import scipy.stats as st

    histogram = np.bincount(ranks // ((L + 1) // bins), minlength=bins)
    expected = ranks.size / bins
    chi2 = float(((histogram - expected) ** 2).sum() / expected)
    return {"chi2": chi2, "df": bins - 1, "p_value": float(st.chi2.sf(chi2, bins - 1)), "histogram": histogram.tolist()}


def _divisors(k: int) -> list[int]:
    return [d for d in range(2, k + 1) if k % d == 0]


def _default_bins(L: int, n: int) -> int:
    """The largest divisor B <= 20 of L + 1 that leaves at least 5 ranks expected per bin, else the smallest."""
    small = [d for d in _divisors(L + 1) if d <= 20]
    if not small:
        raise InputError(f"L + 1 = {L + 1} has no divisor up to 20: give bins, or use L + 1 = 100, 200, ...")
    return max([d for d in small if n / d >= 5], default=small[0])


@dataclass(frozen=True)
class SBCResult:
    """What :func:`simulation_based_calibration` found.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per replication, one column per parameter (``sigma2_g`` or ``sigma2_b``, ``sigma2_e``,
        ``h2``, ``mu``): the number of the L thinned posterior draws below the true value.
    truth : pandas.DataFrame
        The values drawn from the prior, one row per replication.
    intervals : pandas.DataFrame
        ``replication, parameter, level, lower, upper, covered``: central intervals of the pooled
        draws (the quantiles ``(1 - level) / 2`` and ``(1 + level) / 2``, as ``summary()``'s q05 and q95
        for level 0.9) and whether each covered the truth.
    diagnostics : pandas.DataFrame
        Per replication: ``seed`` (of the fit), ``divergences``, ``min_ess_bulk`` over the ranked
        parameters, ``max_r_hat``.
    draws_per_rank : int
        L; ranks lie in ``0..L``.
    settings : dict
        Model, n, prior, chains, draws, tune, thin, seed, seconds.
    """

    ranks: pd.DataFrame
    truth: pd.DataFrame
    intervals: pd.DataFrame
    diagnostics: pd.DataFrame
    draws_per_rank: int
    settings: dict = field(default_factory=dict)

    @property
    def replications(self) -> int:
        return len(self.truth)

    def uniformity(self, bins: int | None = None) -> pd.DataFrame:
        """Chi-square test of uniform ranks per parameter (:func:`rank_uniformity`).

        Parameters
        ----------
        bins : int, optional
            B, a divisor of L + 1; by default the largest divisor up to 20 that leaves at least 5
            replications expected per bin.

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter: ``chi2, df, p_value, histogram``.
        """
        bins = _default_bins(self.draws_per_rank, len(self.ranks)) if bins is None else int(bins)
        rows = {
            name: rank_uniformity(self.ranks[name].to_numpy(), self.draws_per_rank, bins=bins) for name in self.ranks
        }
        return pd.DataFrame.from_dict(rows, orient="index")

    def coverage(self, level: float = 0.9) -> pd.DataFrame:
        """How often the central interval of ``level`` covered the truth, per parameter.

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter: ``n``, ``covered`` (a count) and ``rate``.
        """
        run = sorted(self.intervals["level"].unique()) if len(self.intervals) else []
        if not any(np.isclose(run, level)):
            raise InputError(f"no intervals of level {level}; the levels run: {run}.")
        table = self.intervals[np.isclose(self.intervals["level"], level)]
        grouped = table.groupby("parameter", sort=False)["covered"]
        return pd.DataFrame({"n": grouped.size(), "covered": grouped.sum(), "rate": grouped.mean()})

    def lines(self, bins: int | None = None) -> list[str]:
        """A short report: settings, diagnostics, and per parameter the chi-square test and 90% coverage."""
        s = self.settings
        d = self.diagnostics
        low_ess = int((d["min_ess_bulk"] < self.draws_per_rank).sum())
        out = [
            f"{s['model']}: {self.replications} replications at n = {s['n']}, NUTS {s['chains']} x {s['draws']} "
            f"(+{s['tune']}), L = {self.draws_per_rank} draws per rank (thin {s['thin']}), {s['seconds']:.0f} s",
            f"diagnostics: {int((d['divergences'] > 0).sum())} replications with divergences, median smallest bulk "
            f"ESS {d['min_ess_bulk'].median():.0f}, {low_ess} with ESS < L",
        ]
        has_90 = len(self.intervals) and bool(np.isclose(self.intervals["level"], 0.9).any())
        cover = self.coverage(0.9) if has_90 else None
        table = self.uniformity(bins)
        for name in self.ranks.columns:
            row = table.loc[name]
            parts = [f"{name:<10}", f"chi2 {row['chi2']:7.2f} (df {row['df']}) p = {row['p_value']:.3f}"]
            if cover is not None:
                parts.append(f"90% coverage {cover.loc[name, 'rate']:.3f}")
            out.append("  ".join(parts))
        return out


def _as_model(kernel):
    """The model class: G-BLUP for a Relationship, M-BLUP for a GenotypeMatrix."""
    from ..fitting import GBLUP, MBLUP
    from ..genotypes.relationship import Relationship
    from ..genotypes.scaling import GenotypeMatrix

    if isinstance(kernel, Relationship):
        return GBLUP
    if isinstance(kernel, GenotypeMatrix):
        return MBLUP
    raise InputError(
        "kernel must be G (a Relationship, for G-BLUP) or W (a GenotypeMatrix, for M-BLUP); "
        f"got {type(kernel).__name__}."
    )


def _check_prior(prior, kernel_name: str) -> tuple[str, ...]:
    """The prior's free variables in drawing order; refuses anything not fixed and complete."""
    if not isinstance(prior, dict):
        raise InputError(
            "calibration needs a fixed prior: a dict of bayesblup.Prior with every variable (mu included); the "
            f"presets follow var(y) and mean(y), which do not exist before the data. Got {prior!r}."
        )
    names = ("mu", "h2", "sigma2_p") if "h2" in prior else ("mu", kernel_name, "sigma2_e")
    if set(prior) != set(names):
        raise InputError(
            f"calibration needs a Prior for exactly {', '.join(names)} (a data-independent mu included); "
            f"got {', '.join(sorted(prior))}."
        )
    for name in names:
        if not isinstance(prior[name], Prior):
            raise InputError(f"prior for {name}: expected bayesblup.Prior(...), got {type(prior[name]).__name__}.")
    return names


def _draw(prior: Prior, rng: np.random.Generator) -> float:
    """One draw from ``prior`` (a PyMC distribution), seeded from ``rng``."""
    import pymc as pm

    dist = getattr(pm, prior.distribution).dist(**prior.parameters)
    return float(pm.draw(dist, random_seed=int(rng.integers(2**31 - 1))))


@contextlib.contextmanager
def _quiet():
    """PyMC's per-fit log lines and the (known) rank deficiency of the kernel, silenced for the loop."""
    from ..linalg.spectral import RankDeficiencyWarning

    loggers = [logging.getLogger(name) for name in ("pymc", "pymc.sampling.mcmc", "pymc.stats.convergence")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _run(
    kernel,
    prior: dict,
    *,
    replications: int,
    draws_per_rank: int | None,
    levels: tuple[float, ...],
    chains: int,
    draws: int,
    tune: int,
    seed: int,
    nuts_sampler: str | None,
    target_accept: float | None,
    say,
) -> SBCResult:
    """Simulate and fit ``replications`` times; ranks only when ``draws_per_rank`` is given."""
    Model = _as_model(kernel)
    kernel_name = Model.kernel_variance
    names = _check_prior(prior, kernel_name)
    if int(replications) < 1:
        raise InputError(f"replications must be at least 1, got {replications}.")
    for level in levels:
        if not 0 < level < 1:
            raise InputError(f"interval levels must lie in (0, 1), got {level}.")
    total = int(chains) * int(draws)
    thin = None
    if draws_per_rank is not None:
        if not 1 <= int(draws_per_rank) <= total:
            raise InputError(f"draws_per_rank must lie in 1..chains x draws = {total}, got {draws_per_rank}.")
        thin = total // int(draws_per_rank)
    ids = pd.Index(np.asarray(kernel.ids).astype(str))
    n = len(ids)
    if isinstance(kernel, Relationship):
        G = np.asarray(kernel.matrix, dtype=np.float64)
        values, vectors = np.linalg.eigh((G + G.T) / 2)
        factor = vectors * np.sqrt(np.clip(values, 0.0, None))  # L L' = G
        c = 1.0
    else:
        factor = np.asarray(kernel.values, dtype=np.float64)  # g = W b
        c = float(kernel.scaling.denominator)
    rank_rows, truth_rows, interval_rows, diag_rows = [], [], [], []
    t0 = time.perf_counter()
    with _quiet():
        for r, child in enumerate(np.random.SeedSequence(seed).spawn(int(replications))):
            rng = np.random.default_rng(child)
            fit_seed = int(rng.integers(2**31 - 1))
            drawn = {name: _draw(prior[name], rng) for name in names}
            if "h2" in drawn:
                sigma2_k = drawn["h2"] * drawn["sigma2_p"] / c
                sigma2_e = (1 - drawn["h2"]) * drawn["sigma2_p"]
            else:
                sigma2_k, sigma2_e = drawn[kernel_name], drawn["sigma2_e"]
            truth = {
                kernel_name: sigma2_k,
                "sigma2_e": sigma2_e,
                "h2": c * sigma2_k / (c * sigma2_k + sigma2_e),
                "mu": drawn["mu"],
            }
            g = factor @ rng.normal(0.0, np.sqrt(sigma2_k), size=factor.shape[1])
            y = truth["mu"] + g + rng.normal(0.0, np.sqrt(sigma2_e), size=n)
            model = Model(pd.Series(y, index=ids, name="y"), kernel, prior=prior)
            fit = model.fit(
                chains=chains, draws=draws, tune=tune, seed=fit_seed, cores=1, nuts_sampler=nuts_sampler,
                target_accept=target_accept, progressbar=False,
            )  # fmt: skip
            post = fit.datatree["posterior"]
            ranks = {}
            for name, value in truth.items():
                flat = np.asarray(post[name].values, dtype=np.float64).reshape(-1)  # chain after chain
                if thin is not None:
                    ranks[name] = thinned_rank(value, flat, draws_per_rank)
                for level in levels:
                    lower, upper = np.quantile(flat, [(1 - level) / 2, (1 + level) / 2])
                    interval_rows.append(
                        {
                            "replication": r, "parameter": name, "level": float(level), "truth": value,
                            "lower": float(lower), "upper": float(upper), "covered": bool(lower <= value <= upper),
                        }
                    )  # fmt: skip
            table = fit.summary().loc[list(truth)]
            diag_rows.append(
                {
                    "replication": r,
                    "seed": fit_seed,
                    "divergences": fit.diagnostics()["divergences"],
                    "min_ess_bulk": float(table["ess_bulk"].min()),
                    "max_r_hat": float(table["r_hat"].max()),
                }
            )
            rank_rows.append(ranks)
            truth_rows.append(truth)
            if say and ((r + 1) % max(1, int(replications) // 10) == 0 or r + 1 == replications):
                say(f"replication {r + 1} of {replications} ({time.perf_counter() - t0:.0f} s)")
    settings = {
        "model": "gblup" if isinstance(kernel, Relationship) else "mblup",
        "n": n,
        "prior": {name: p.to_dict() for name, p in prior.items()},
        "chains": int(chains),
        "draws": int(draws),
        "tune": int(tune),
        "thin": thin,
        "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
    return SBCResult(
        ranks=pd.DataFrame(rank_rows, columns=list(truth) if thin is not None else []),
        truth=pd.DataFrame(truth_rows),
        intervals=pd.DataFrame(interval_rows),
        diagnostics=pd.DataFrame(diag_rows).set_index("replication"),
        draws_per_rank=int(draws_per_rank) if thin is not None else 0,
        settings=settings,
    )


def simulation_based_calibration(
    kernel: Relationship | GenotypeMatrix,
    prior: dict[str, Prior],
    *,
    replications: int = 100,
    draws_per_rank: int = 99,
    levels: tuple[float, ...] = (0.5, 0.9),
    chains: int = 2,
    draws: int = 500,
    tune: int = 500,
    seed: int = 0,
    nuts_sampler: str | None = "pymc",
    target_accept: float | None = None,
    say: Callable[[str], None] | None = None,
) -> SBCResult:
    """Simulation-based calibration of the variance components (Talts et al. 2018).

    See the module docstring for what one replication does. Under a correct posterior, each
    parameter's ranks are uniform on ``0..L``: test with :meth:`SBCResult.uniformity`.

    Parameters
    ----------
    kernel : Relationship or GenotypeMatrix
        G (a G-BLUP is fitted) or W (an M-BLUP); its individuals are those simulated, one record each.
    prior : dict of Prior
        Fixed and complete: ``{"mu", "sigma2_g" | "sigma2_b", "sigma2_e"}`` or ``{"mu", "h2",
        "sigma2_p"}``, with numbers that do not depend on the data.
    replications : int
        Number of simulated data sets.
    draws_per_rank : int
        L: the pooled draws are thinned to L (every ``chains draws // L``-th draw). Choose L with many
        divisors of L + 1 (99, 199) for the histogram's bins.
    levels : tuple of float
        Levels of the central intervals recorded per replication (:meth:`SBCResult.coverage`).
    chains, draws, tune : int
        NUTS per fit; chains run one after the other in this process (``cores=1``).
    seed : int
        Replication r uses ``numpy.random.SeedSequence(seed).spawn(...)[r]`` for the prior draw, the
        simulation and the fit's seed: the result is bit-reproducible, and replication r does not
        depend on how many replications are run.
    nuts_sampler : str or None
        Passed to ``fit``; ``"pymc"`` (default) shares one compiled model across the replications.
    target_accept : float, optional
        Passed to ``fit``.
    say : callable, optional
        Progress, about ten lines.

    Returns
    -------
    SBCResult

    Examples
    --------
    >>> import bayesblup as bb
    >>> from bayesblup.testing import simulate_genotypes
    >>> geno, _ = simulate_genotypes(40, 300, seed=1)
    >>> G = bb.genomic_relationship(geno)
    >>> prior = {"mu": bb.Prior("Normal", mu=0.0, sigma=1.0), "sigma2_g": bb.Prior("LogNormal", mu=0.0, sigma=1.0),
    ...          "sigma2_e": bb.Prior("LogNormal", mu=0.0, sigma=1.0)}
    >>> sbc = bb.simulation_based_calibration(G, prior, replications=200, seed=1)  # doctest: +SKIP
    >>> sbc.uniformity(bins=10)["p_value"]  # doctest: +SKIP
    """
    if draws_per_rank is None:
        raise InputError("draws_per_rank must be a number of draws (L); use interval_coverage for intervals only.")
    return _run(
        kernel, prior, replications=replications, draws_per_rank=draws_per_rank, levels=tuple(levels),
        chains=chains, draws=draws, tune=tune, seed=seed, nuts_sampler=nuts_sampler, target_accept=target_accept,
        say=say,
    )  # fmt: skip


def interval_coverage(
    kernel: Relationship | GenotypeMatrix,
    prior: dict[str, Prior],
    *,
    simulations: int = 100,
    level: float = 0.9,
    parameters: tuple[str, ...] = ("h2",),
    chains: int = 2,
    draws: int = 500,
    tune: int = 500,
    seed: int = 0,
    nuts_sampler: str | None = "pymc",
    target_accept: float | None = None,
    say: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Whether the central interval of each seeded simulation covered the truth drawn from the prior.

    The simulations are those of :func:`simulation_based_calibration` (same seeding), without ranks.
    With the truth drawn from the prior that is fitted, a correct posterior's interval of level p
    covers it with probability exactly p (averaged over the prior; up to the Monte Carlo error of the
    interval's ends). A fixed truth gives no such guarantee: Bayesian intervals need not have
    nominal frequentist coverage at any one parameter value (near h2 = 0 or 1 the prior pulls the
    interval inwards).

    Parameters
    ----------
    kernel, prior, chains, draws, tune, seed, nuts_sampler, target_accept, say
        As for :func:`simulation_based_calibration`.
    simulations : int
        Number of simulated data sets.
    level : float
        The interval's level (0.9: ``summary()``'s q05 to q95).
    parameters : tuple of str
        Among ``h2``, ``sigma2_e``, ``mu`` and the kernel's variance (``sigma2_g`` or ``sigma2_b``).

    Returns
    -------
    pandas.DataFrame
        One row per simulation and parameter: ``replication, parameter, level, truth, lower, upper,
        covered``; ``table["covered"].mean()`` is the coverage.
    """
    known = (_as_model(kernel).kernel_variance, "sigma2_e", "h2", "mu")
    unknown = set(parameters) - set(known)
    if unknown:
        raise InputError(f"parameters {sorted(unknown)} are not among {', '.join(known)}.")
    result = _run(
        kernel, prior, replications=simulations, draws_per_rank=None, levels=(float(level),), chains=chains,
        draws=draws, tune=tune, seed=seed, nuts_sampler=nuts_sampler, target_accept=target_accept, say=say,
    )  # fmt: skip
    table = result.intervals
    return table[table["parameter"].isin(parameters)].reset_index(drop=True)
