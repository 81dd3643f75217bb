"""Slow tier: G* calibration at a realistic size (run by `make test-slow`, a separate CI step)."""

from __future__ import annotations

import numpy as np
import pytest

import bayesblup as bb
from bayesblup.testing import simulate_genotypes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_centered__large_n_off_diagonal_spread_matches_closed_form(seed):
    """n = 2500 unrelated HWE individuals, m = 20,000 markers, true p.

    Closed forms: E[G*_ii] = 1, E[G*_ik] = 0, Var(G*_ik) = sum (2pq)^2 / nu^2. With 3.1 M pairs the
    sample sd of off-diagonals estimates its target with relative sd ~ 1/sqrt(2 * 3.1e6) ~ 4e-4 (plus a
    small kurtosis term); 1% is > 10 of those sds. The mean diagonal has sd ~ 0.0002 here; 0.002 is ~10 sd.
    """
    n, m = 2500, 20000
    geno, p = simulate_genotypes(n, m, seed=seed)
    G = bb.genomic_relationship(geno, scaling="centered", allele_freq=p).matrix
    nu = np.sum(2 * p * (1 - p))
    off = G[np.triu_indices(n, 1)]
    assert np.diag(G).mean() == pytest.approx(1.0, abs=0.002)
    assert abs(off.mean()) < 1e-4
    assert off.std() == pytest.approx(np.sqrt(np.sum((2 * p * (1 - p)) ** 2)) / nu, rel=0.01)


def test_standardized_hwe__float32_matches_float64_at_scale():
    """float32 G at n = 2000, m = 30,000: relative error ~ eps32 * sqrt(m) ~ 1e-5; tolerance 1e-4 absolute."""
    geno, _ = simulate_genotypes(2000, 30000, seed=7, missing_rate=0.01)
    geno, _ = bb.quality_control(geno)
    G64 = bb.genomic_relationship(geno, scaling="standardized-hwe").matrix
    G32 = bb.genomic_relationship(geno, scaling="standardized-hwe", dtype=np.float32).matrix
    assert np.abs(G32 - G64).max() < 1e-4
