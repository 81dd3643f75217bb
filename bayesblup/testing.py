"""Simulators with known truth, for tests, benchmarks and teaching (as ``sgkit.testing``).

Markers are unlinked and in Hardy-Weinberg equilibrium in the founders; offspring receive one
allele from each parent, drawn with Mendel's probabilities marker by marker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .genotypes.calls import MISSING, Genotypes
from .genotypes.relationship import Relationship
from .genotypes.scaling import GenotypeMatrix
from .names import ADDITIVE

__all__ = [
    "MultitraitTruth",
    "SimulatedRecords",
    "simulate_genotypes",
    "simulate_multitrait",
    "simulate_offspring",
    "simulate_records",
]


def simulate_genotypes(
    n: int,
    m: int,
    *,
    allele_freq: np.ndarray | None = None,
    missing_rate: float = 0.0,
    seed: int | np.random.Generator | None = None,
    id_prefix: str = "ind",
    order: str = "F",
) -> tuple[Genotypes, np.ndarray]:
    """Unrelated individuals with 0/1/2 counts drawn under Hardy-Weinberg equilibrium.

    Parameters
    ----------
    n, m : int
        Individuals and markers.
    allele_freq : ndarray, shape (m,), optional
        True frequencies of the counted allele; by default uniform on [0.05, 0.95].
    missing_rate : float
        Probability that a call is set missing, independently per call.
    seed : int or numpy.random.Generator, optional
        Random seed.
    id_prefix : str
        IDs are ``f"{id_prefix}{i}"``.
    order : {"F", "C"}
        Memory order of the calls; "F" (marker-major) is how PLINK files are read.

    Returns
    -------
    Genotypes
        The calls, with IDs ``ind1..indn`` and markers ``snp1..snpm``.
    ndarray
        The true allele frequencies.
    """
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, size=m) if allele_freq is None else np.asarray(allele_freq, dtype=float)
    calls = np.empty((n, m), dtype=np.int8, order=order)
    for j0 in range(0, m, 2048):  # by blocks so that int64 draws never take n x m memory
        j1 = min(m, j0 + 2048)
        calls[:, j0:j1] = rng.binomial(2, p[j0:j1], size=(n, j1 - j0))
    if missing_rate > 0:
        calls[rng.random((n, m)) < missing_rate] = MISSING
    genotypes = Genotypes(
        calls=calls,
        ids=[f"{id_prefix}{i + 1}" for i in range(n)],
        markers=[f"snp{j + 1}" for j in range(m)],
        coding=ADDITIVE,
        source="simulated",
    )
    return genotypes, p


def simulate_offspring(
    dams: np.ndarray, sires: np.ndarray, *, seed: int | np.random.Generator | None = None
) -> np.ndarray:
    """One offspring per (dam, sire) row pair: each parent passes one allele per marker.

    Parameters
    ----------
    dams, sires : ndarray of int, shape (k, m)
        Parental 0/1/2 counts (no missing calls).
    seed : int or numpy.random.Generator, optional
        Random seed.

    Returns
    -------
    ndarray of int8, shape (k, m)
        Offspring counts. A parent with count ``x`` passes the counted allele with probability ``x/2``.
    """
    rng = np.random.default_rng(seed)
    from_dam = rng.random(dams.shape) < np.asarray(dams) / 2.0
    from_sire = rng.random(sires.shape) < np.asarray(sires) / 2.0
    return (from_dam.astype(np.int8) + from_sire.astype(np.int8)).astype(np.int8)


@dataclass(frozen=True)
class SimulatedRecords:
    """A trait simulated on known genetic values, with its truth.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per record, indexed by ID (repeated for repeated records): the trait ``y``, the
        record weight ``w``, the individual's ``sex`` (F/M) and the record's ``age``.
    genetic_values : pandas.Series
        True g of every individual (phenotyped or not), by ID.
    truth : dict
        ``sigma2_g``, ``sigma2_pe``, ``sigma2_e`` (of a weight-1 record), ``h2``, ``mu``, ``sex[M]``
        and ``age``.
    unphenotyped : tuple of str
        Individuals given no record.
    """

    table: pd.DataFrame
    genetic_values: pd.Series
    truth: dict
    unphenotyped: tuple[str, ...]


def simulate_records(
    W: np.ndarray,
    ids,
    *,
    h2: float = 0.5,
    pe_share: float = 0.0,
    records: int | tuple[int, int] = 1,
    weights: tuple[int, int] | None = None,
    sex_effect: float = 0.0,
    age_slope: float = 0.0,
    unphenotyped: float = 0.0,
    mu: float = 10.0,
    seed: int | np.random.Generator | None = None,
) -> SimulatedRecords:
    """Records ``y = mu + sex + age + g + p + e`` on individuals with standardised genotypes W.

    ``g = W b`` with ``b ~ N(0, I h2 / m)``, so ``sigma2_g = h2`` on ``G = WW'/m``; the permanent
    environment has variance ``pe_share`` and the residual of a weight-1 record ``1 - h2 - pe_share``
    (a record of weight w has ``sigma2_e / w``).

    Parameters
    ----------
    W : ndarray, shape (n, m)
        Standardised genotypes of every individual.
    ids : sequence of str
        Their IDs.
    h2, pe_share : float
        Shares of the variance of a weight-1 record.
    records : int or (int, int)
        Records per individual, fixed or drawn uniformly from the inclusive range.
    weights : (int, int), optional
        Each record's weight (e.g. the number of measurements it averages), uniform on the inclusive
        range; by default every weight is 1.
    sex_effect, age_slope : float
        Fixed effects of sex (M against F, per individual) and age (per record, 1 to 8).
    unphenotyped : float
        Share of the individuals left without records (the last ones).
    mu : float
        Intercept.
    seed : int or numpy.random.Generator, optional
        Random seed.
    """
    rng = np.random.default_rng(seed)
    n, m = W.shape
    ids = np.asarray(ids, dtype=str)
    sigma2_e = 1.0 - h2 - pe_share
    if not (0 <= h2 < 1 and 0 <= pe_share and sigma2_e > 0):
        raise ValueError("h2 and pe_share must be non-negative and leave a positive residual variance")
    g = W @ rng.normal(0.0, np.sqrt(h2 / m), size=m)
    pe = rng.normal(0.0, np.sqrt(pe_share), size=n)
    sex = rng.choice(np.array(["F", "M"]), size=n)
    n_phenotyped = n - round(unphenotyped * n)
    lo, hi = (records, records) if isinstance(records, int) else records
    counts = rng.integers(lo, hi + 1, size=n_phenotyped)
    who = np.repeat(np.arange(n_phenotyped), counts)
    w = np.ones(who.size) if weights is None else rng.integers(weights[0], weights[1] + 1, size=who.size).astype(float)
    age = rng.uniform(1.0, 8.0, size=who.size)
    e = rng.normal(0.0, np.sqrt(sigma2_e / w))
    y = mu + sex_effect * (sex[who] == "M") + age_slope * age + g[who] + pe[who] + e
    table = pd.DataFrame({"y": y, "w": w, "sex": sex[who], "age": age}, index=pd.Index(ids[who], name="id"))
    truth = {"sigma2_g": h2, "sigma2_pe": pe_share, "sigma2_e": sigma2_e, "h2": h2, "mu": mu}
    truth |= {"sex[M]": sex_effect, "age": age_slope}
    return SimulatedRecords(table, pd.Series(g, index=ids), truth, tuple(ids[n_phenotyped:]))


@dataclass(frozen=True, eq=False)
class MultitraitTruth:
    """The truth behind :func:`simulate_multitrait`'s table, kept in its ``attrs["truth"]``.

    Compared by identity (``eq=False``): pandas compares ``attrs`` when it concatenates frames, and frames
    inside them would make that comparison raise.

    Attributes
    ----------
    genetic_values, residuals : pandas.DataFrame
        g and E, n x t like the table, complete (also where the record is NaN).
    marker_effects : pandas.DataFrame or None
        b (m x t, indexed by marker) when simulated from a GenotypeMatrix.
    Sigma_g, Sigma_e : ndarray, shape (t, t)
    mu : ndarray, shape (t,)
    """

    genetic_values: pd.DataFrame
    residuals: pd.DataFrame
    marker_effects: pd.DataFrame | None
    Sigma_g: np.ndarray
    Sigma_e: np.ndarray
    mu: np.ndarray


def _psd_factor(S: np.ndarray, name: str) -> np.ndarray:
    """F with ``F F' = S`` for a symmetric positive semi-definite S (eigendecomposition: S may be singular)."""
    S = np.atleast_2d(np.asarray(S, dtype=float))
    if S.ndim != 2 or S.shape[0] != S.shape[1] or not np.allclose(S, S.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be a symmetric square matrix")
    lam, U = np.linalg.eigh((S + S.T) / 2)
    if lam.min() < -1e-10 * max(1.0, abs(lam).max()):
        raise ValueError(f"{name} must be positive semi-definite (smallest eigenvalue {lam.min():.3g})")
    return U * np.sqrt(np.clip(lam, 0.0, None))


def simulate_multitrait(
    G_or_W: Relationship | GenotypeMatrix,
    *,
    Sigma_g,
    Sigma_e,
    mu=None,
    missing: float = 0.0,
    allow_empty: bool = False,
    names=None,
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Records of t correlated traits: ``Y = 1 mu' + g + E`` (n x t), one row per individual.

    ``vec(g) ~ N(0, Sigma_g ⊗ G)`` and ``vec(E) ~ N(0, Sigma_e ⊗ I_n)`` (vec stacks the trait columns), i.e. the
    rows of E are independent ``N(0, Sigma_e)`` and each trait's g has covariance ``Sigma_g[k, k] G``. From a
    Relationship, ``g = F Z Sg'`` with ``F F' = G`` and ``Sg Sg' = Sigma_g`` (Z standard normal, n x t); from a
    GenotypeMatrix, ``g = W b`` with the rows of b (m x t) independent ``N(0, Sigma_g / c)``,
    ``c = W.scaling.denominator``, so that ``Cov(vec g) = Sigma_g ⊗ WW'/c`` as well. Both covariances may be
    singular (eigendecompositions, not Cholesky factors).

    Parameters
    ----------
    G_or_W : Relationship or GenotypeMatrix
        The individuals (its IDs label the rows) and their kernel.
    Sigma_g, Sigma_e : array_like, shape (t, t)
        Genetic and residual covariance between traits, symmetric positive semi-definite.
    mu : array_like, shape (t,), optional
        Intercepts; zero by default.
    missing : float
        Share of each trait's records set NaN at random (``round(missing n)`` per trait). The traits are masked
        in turn, each among the individuals that would keep another record, so that no individual loses every
        trait; this needs ``missing <= (t - 1) / t``. (With one trait, a missing record leaves its individual
        without any.)
    allow_empty : bool
        Mask each trait independently of the others instead, so that an individual may be left with no record.
    names : sequence of str, optional
        Trait names; ``t1``, ``t2``, ... by default.
    seed : int or numpy.random.Generator, optional
        Random seed.

    Returns
    -------
    pandas.DataFrame
        n x t, indexed by ID (index name ``id``); ``attrs["truth"]`` holds the truth, a :class:`MultitraitTruth`
        (g, E, b, Sigma_g, Sigma_e, mu). pandas carries ``attrs`` through most operations, not all: read it
        from the table returned.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesblup as bb
    >>> from bayesblup.testing import simulate_genotypes, simulate_multitrait
    >>> calls, _ = simulate_genotypes(50, 400, seed=1)
    >>> G = bb.genomic_relationship(calls)
    >>> Y = simulate_multitrait(G, Sigma_g=[[1.0, 0.5], [0.5, 2.0]], Sigma_e=np.eye(2), missing=0.2, seed=2)
    >>> Y.shape, list(Y.columns), Y.isna().sum().tolist(), int(Y.isna().all(axis=1).sum())
    ((50, 2), ['t1', 't2'], [10, 10], 0)
    >>> truth = Y.attrs["truth"]
    >>> g, e = truth.genetic_values, truth.residuals
    >>> bool(np.allclose((g + e).where(Y.notna()), Y, equal_nan=True))
    True
    """
    if not isinstance(G_or_W, Relationship | GenotypeMatrix):
        raise TypeError("G_or_W must be a bayesblup.Relationship or a bayesblup.GenotypeMatrix")
    rng = np.random.default_rng(seed)
    Fg, Fe = _psd_factor(Sigma_g, "Sigma_g"), _psd_factor(Sigma_e, "Sigma_e")
    t = Fg.shape[0]
    if Fe.shape[0] != t:
        raise ValueError(f"Sigma_g is {t} x {t} but Sigma_e is {Fe.shape[0]} x {Fe.shape[0]}")
    names = [f"t{k + 1}" for k in range(t)] if names is None else [str(v) for v in names]
    if len(names) != t or len(set(names)) != t:
        raise ValueError(f"names must be {t} distinct trait names")
    mu = np.zeros(t) if mu is None else np.broadcast_to(np.asarray(mu, dtype=float), (t,))
    if not 0.0 <= missing <= 1.0:
        raise ValueError("missing must be a share in [0, 1]")
    ids = np.asarray(G_or_W.ids, dtype=str)
    n = ids.size
    b = None
    if isinstance(G_or_W, Relationship):
        g = _psd_factor(G_or_W.matrix, "the relationship matrix") @ rng.standard_normal((n, t)) @ Fg.T
    else:
        W = np.asarray(G_or_W.values, dtype=float)
        b = rng.standard_normal((W.shape[1], t)) @ Fg.T / np.sqrt(G_or_W.scaling.denominator)
        g = W @ b
    e = rng.standard_normal((n, t)) @ Fe.T
    Y = mu[None, :] + g + e
    k_missing = round(missing * n)
    if k_missing:
        masked = np.zeros((n, t), dtype=bool)
        for k in range(t):
            eligible = np.arange(n) if allow_empty or t == 1 else np.flatnonzero(masked.sum(axis=1) < t - 1)
            if eligible.size < k_missing:
                raise ValueError(
                    f"missing={missing} would leave individuals without any record; at most (t - 1) / t "
                    "with allow_empty=False"
                )
            masked[rng.choice(eligible, size=k_missing, replace=False), k] = True
        Y[masked] = np.nan
    index = pd.Index(ids, name="id")
    table = pd.DataFrame(Y, index=index, columns=names)
    markers = None if b is None else pd.Index(np.asarray(G_or_W.markers, dtype=str), name="marker")
    table.attrs["truth"] = MultitraitTruth(
        genetic_values=pd.DataFrame(g, index=index, columns=names),
        residuals=pd.DataFrame(e, index=index, columns=names),
        marker_effects=None if b is None else pd.DataFrame(b, index=markers, columns=names),
        Sigma_g=np.atleast_2d(np.asarray(Sigma_g, dtype=float)).copy(),
        Sigma_e=np.atleast_2d(np.asarray(Sigma_e, dtype=float)).copy(),
        mu=mu.copy(),
    )
    return table
