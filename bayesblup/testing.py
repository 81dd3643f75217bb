"""Simulators with known truth, for tests, benchmarks and teaching (as ``sgkit.testing``).

Markers are unlinked and in Hardy-Weinberg equilibrium in the founders; offspring receive one
allele from each parent, drawn with Mendel's probabilities marker by marker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .genotypes.calls import MISSING, Genotypes
from .names import ADDITIVE

__all__ = ["SimulatedRecords", "simulate_genotypes", "simulate_offspring", "simulate_records"]


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
