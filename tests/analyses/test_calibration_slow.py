"""Slow tier: G* calibration at a realistic size (run by `make test-slow`, a separate CI step)."""

from __future__ import annotations

import numpy as np
import pytest

import bayesblup as bb
from bayesblup.testing import simulate_genotypes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.recovery
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


@pytest.mark.exact
def test_standardized_hwe__float32_matches_float64_at_scale():
    """float32 G at n = 2000, m = 30,000: relative error ~ eps32 * sqrt(m) ~ 1e-5; tolerance 1e-4 absolute."""
    geno, _ = simulate_genotypes(2000, 30000, seed=7, missing_rate=0.01)
    geno, _ = bb.quality_control(geno)
    G64 = bb.genomic_relationship(geno, scaling="standardized-hwe").matrix
    G32 = bb.genomic_relationship(geno, scaling="standardized-hwe", dtype=np.float32).matrix
    assert np.abs(G32 - G64).max() < 1e-4


# --- simulation-based calibration and interval coverage (bayesblup.analyses.calibration) ---------------------
#
# With fixed seeds these tests are deterministic. Each stated false-alarm rate is the probability that a
# correct sampler fails for seeds drawn at random: the chance that an unrelated change to the random
# streams (a new PyMC, another seed) turns the test red without any bug.

SBC_ALPHA = 0.001  # per chi-square test; 4 parameters x 2 models = 8 tests: family-wise <= 0.8% (Bonferroni)


def _sbc_kernels(n: int, m: int, seed: int):
    geno, _ = simulate_genotypes(n, m, seed=seed)
    return bb.genomic_relationship(geno, scaling="standardized"), bb.genotype_matrix(geno, scaling="standardized")


def _check_sbc(sbc, capsys) -> None:
    """Ranks uniform per parameter at SBC_ALPHA over 10 bins (20 expected per bin), and the thinning adequate."""
    table = sbc.uniformity(bins=10)
    with capsys.disabled():
        print()
        for line in sbc.lines(bins=10):
            print(f"  SBC {line}")
        for name, row in table.iterrows():
            print(f"  SBC {sbc.settings['model']} {name}: histogram {row['histogram']}")
    # Thinning by a fixed step is sound when draws `thin` apart are nearly independent: ESS >= L.
    assert sbc.diagnostics["min_ess_bulk"].median() > 2 * sbc.draws_per_rank
    # Divergences are reported, not tested (the ranks are the test); a bound against a broken sampler only.
    assert (sbc.diagnostics["divergences"] > 0).mean() < 0.1
    for name, row in table.iterrows():
        assert row["p_value"] > SBC_ALPHA, f"{name}: ranks not uniform, chi2 {row['chi2']:.1f}, p {row['p_value']:.2g}"


@pytest.mark.recovery
def test_sbc__gblup_ranks_are_uniform(capsys):
    """G-BLUP, n = 50 (simulated HWE genotypes, m = 500): 200 replications, L = 99 (thin 10 of 2 x 500).

    Prior: ``mu ~ Normal(0, 1)``, ``sigma2_g, sigma2_e ~ LogNormal(0, 1)`` (h2 logit-normal, sd 1.4: the
    whole range). Each of the 4 chi-square tests (10 bins, 9 df) has false-alarm rate SBC_ALPHA = 0.001;
    with M-BLUP's 4 the family-wise rate is at most 0.8%.
    """
    G, _ = _sbc_kernels(50, 500, seed=21)
    prior = {
        "mu": bb.Prior("Normal", mu=0.0, sigma=1.0),
        "sigma2_g": bb.Prior("LogNormal", mu=0.0, sigma=1.0),
        "sigma2_e": bb.Prior("LogNormal", mu=0.0, sigma=1.0),
    }
    sbc = bb.simulation_based_calibration(G, prior, replications=200, draws_per_rank=99, seed=2018)
    _check_sbc(sbc, capsys)


@pytest.mark.recovery
def test_sbc__mblup_ranks_are_uniform(capsys):
    """M-BLUP, n = 50, m = 500: 200 replications, L = 99, under BGLR's prior shapes with fixed numbers.

    ``sigma2_b ~ InverseGamma(5/2, 1.75/m)`` and ``sigma2_e ~ InverseGamma(5/2, 1.75)`` are BGLR's BRR
    defaults (df0 = 5, R2 = 0.5) for var(y) = 1 (MSx ~ m), fixed so that they do not follow the data;
    ``mu ~ Normal(0, 1)``. False-alarm rate as for G-BLUP: 0.001 per test, family-wise <= 0.8%.
    """
    _, W = _sbc_kernels(50, 500, seed=22)
    m = W.values.shape[1]
    prior = {
        "mu": bb.Prior("Normal", mu=0.0, sigma=1.0),
        "sigma2_b": bb.Prior("InverseGamma", alpha=2.5, beta=1.75 / m),
        "sigma2_e": bb.Prior("InverseGamma", alpha=2.5, beta=1.75),
    }
    sbc = bb.simulation_based_calibration(W, prior, replications=200, draws_per_rank=99, seed=2019)
    _check_sbc(sbc, capsys)


@pytest.mark.recovery
def test_coverage__90_percent_intervals_of_h2_cover_the_truth(capsys):
    """G-BLUP, n = 80, m = 500: over 300 seeded simulations the 90% interval of h2 covers 84-95% of the time.

    The truth is drawn from the prior that is fitted (the default preset's shape with fixed numbers:
    ``h2 ~ Beta(1, 1)``, ``sigma2_p ~ LogNormal(0, 1)``, ``mu ~ Normal(0, 1)``), so a correct posterior
    covers it with probability exactly 0.9 per simulation (up to the Monte Carlo error of q05 and q95 from
    2 x 500 draws), and the count of 300 independent simulations is Binomial(300, 0.9). A fixed truth would
    guarantee no such rate: Bayesian intervals need not have nominal frequentist coverage at one value
    (near h2 = 0 or 1 the prior pulls them inwards). The window [84%, 95%] is 252-285 covered:
    P(X <= 251) + P(X >= 286) = 4.4e-4 + 5.7e-4 = 0.10%, the false-alarm rate. (With 100 simulations it
    would be 4.4%: too often for CI.)
    """
    G, _ = _sbc_kernels(80, 500, seed=23)
    prior = {
        "mu": bb.Prior("Normal", mu=0.0, sigma=1.0),
        "h2": bb.Prior("Beta", alpha=1.0, beta=1.0),
        "sigma2_p": bb.Prior("LogNormal", mu=0.0, sigma=1.0),
    }
    table = bb.interval_coverage(G, prior, simulations=300, level=0.9, seed=2020)
    covered = int(table["covered"].sum())
    rate = covered / len(table)
    with capsys.disabled():
        print(
            f"\n  coverage: 90% intervals of h2 covered the truth in {covered} of {len(table)} simulations ({rate:.1%})"
        )
    assert len(table) == 300
    assert 0.84 <= rate <= 0.95
