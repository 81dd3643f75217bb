"""Several traits: the latent form against the marginal form, and the equivalence Sigma_g = c Sigma_b.

Simulated 80 individuals, two traits, 20% of records missing. Tolerances are Monte Carlo: two
posterior means of the same quantity from independent chains differ by N(0, mcse_a^2 + mcse_b^2), so
|z| < 4 (a false alarm once in 16,000 comparisons; about ten here). The latent form mixes slowly (its
explicit effects trade off with the variances), so it runs longer.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesblup as bb
from bayesblup.testing import simulate_genotypes, simulate_multitrait

pytestmark = [pytest.mark.slow, pytest.mark.recovery]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(15)
    geno, _ = simulate_genotypes(80, 100, allele_freq=rng.uniform(0.1, 0.9, 100), seed=rng)
    G = bb.genomic_relationship(geno)
    W = bb.genotype_matrix(geno)
    Y = simulate_multitrait(
        G, Sigma_g=np.array([[0.6, 0.35], [0.35, 0.5]]), Sigma_e=np.array([[0.5, 0.1], [0.1, 0.7]]),
        mu=[1.0, -2.0], missing=0.2, seed=3,
    )  # fmt: skip
    return G, W, Y


def _z(a, b, name):
    ra, rb = a.summary().loc[name], b.summary().loc[name]
    return (ra["mean"] - rb["mean"]) / np.hypot(ra["mcse_mean"], rb["mcse_mean"])


def test_latent_form_agrees_with_the_marginal_form(data):
    _, W, Y = data
    marginal = bb.MBLUP(Y, W).fit(chains=2, draws=1000, tune=1000, seed=4)
    latent = bb.MBLUP(Y, W, form="latent").fit(chains=2, draws=2000, tune=1000, seed=4, target_accept=0.95)
    for name in ("h2_t1", "h2_t2", "r_g_t1_t2", "r_e_t1_t2"):
        assert abs(_z(marginal, latent, name)) < 4, name
    # marker effects: the latent form's draws of b against the marginal form's exact conditional moments
    a = marginal.marker_effects.set_index(["marker", "trait"])["mean"]
    b = latent.marker_effects.set_index(["marker", "trait"])["mean"].loc[a.index]
    assert np.corrcoef(a, b)[0, 1] > 0.95


def test_check_equivalence_per_trait_and_correlation(data):
    G, W, Y = data
    kw = {"chains": 2, "draws": 1000, "tune": 1000, "seed": 4}
    report = bb.check_equivalence(bb.MBLUP(Y, W).fit(**kw), bb.GBLUP(Y, G).fit(**kw))
    assert report.holds, str(report)
    assert list(report.table.index) == ["sigma2_g_t1", "sigma2_g_t2", "h2_t1", "h2_t2", "r_g_t1_t2"]
    assert report.correlation > 0.999


def test_several_kernels_explicit_path_agrees_with_the_latent_form(data):
    """Two marker sets: the marginal form (background integrated out, the other set explicit) against the latent
    form (every set explicit), and the genetic values per set; then check_equivalence set by set."""
    *_, Y = data
    rng = np.random.default_rng(15)  # the fixture's genotypes again
    geno, _ = simulate_genotypes(80, 100, allele_freq=rng.uniform(0.1, 0.9, 100), seed=rng)
    sets = {"feature": list(geno.markers[:15])}
    G_sets = bb.relationships_by_set(geno, sets)
    marginal = bb.MultiGBLUP(Y, G_sets).fit(chains=2, draws=1000, tune=1000, seed=4)
    latent = bb.MultiGBLUP(Y, G_sets, form="latent").fit(chains=2, draws=2000, tune=1000, seed=4, target_accept=0.95)
    for name in ("h2_t1", "h2_t2", "h2_feature_t1", "h2_rest_t2", "r_g_t1_t2", "r_e_t1_t2"):
        assert abs(_z(marginal, latent, name)) < 4, name
    for column in ("mean", "mean_feature", "mean_rest"):
        a = marginal.genetic_values.set_index(["id", "trait"])[column]
        b = latent.genetic_values.set_index(["id", "trait"])[column].loc[a.index]
        assert np.corrcoef(a, b)[0, 1] > 0.95, column
    W_sets = bb.genotype_matrices_by_set(geno, sets)
    report = bb.check_equivalence(bb.MultiMBLUP(Y, W_sets).fit(chains=2, draws=1000, tune=1000, seed=4), marginal)
    assert report.holds, str(report)
