"""Simulators with known truth, for tests, benchmarks and teaching (as ``sgkit.testing``).

Markers are unlinked and in Hardy-Weinberg equilibrium in the founders; offspring receive one
allele from each parent, drawn with Mendel's probabilities marker by marker.
"""

from __future__ import annotations

import numpy as np

from .genotypes import MISSING, Genotypes
from .names import ADDITIVE

__all__ = ["simulate_genotypes", "simulate_offspring"]


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
