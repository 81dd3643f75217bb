"""Full posterior draws of g from the marginal form agree with the reported mean and sd."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.testing import simulate_genotypes


@pytest.mark.recovery
def test_genetic_value_draws__thinned_and_consistent_with_moments():
    geno, _ = simulate_genotypes(80, 300, seed=5)
    geno, _ = bb.quality_control(geno)
    rng = np.random.default_rng(5)
    G = bb.genomic_relationship(geno, scaling="standardized-hwe")
    g = np.linalg.cholesky(G.matrix + 1e-9 * np.eye(80)) @ rng.standard_normal(80)
    y = pd.Series(g + rng.standard_normal(80), index=geno.ids, name="y")
    fit = bb.GBLUP(y, G).fit(chains=2, draws=600, tune=500, seed=5, genetic_value_draws=True, thin=2)
    draws = fit.datatree["genetic_value_draws"]["g"]
    assert draws.dims == ("chain", "draw", "individual") and draws.shape == (2, 300, 80)
    flat = draws.values.reshape(-1, 80)
    # Each draw is an exact draw of g | y, theta_d, so the draws' mean estimates the posterior mean with
    # Monte Carlo error sd / sqrt(ESS); ESS >= kept / 4 allows for autocorrelation of theta: 5 such errors.
    mc_error = fit.genetic_values["sd"].to_numpy() / np.sqrt(flat.shape[0] / 4)
    assert (np.abs(flat.mean(0) - fit.genetic_values["mean"].to_numpy()) < 5 * mc_error).all()
    # The sd of 600 draws estimates the posterior sd within ~6% (1 sd); 25% is > 4 of those.
    np.testing.assert_allclose(flat.std(0, ddof=1), fit.genetic_values["sd"], rtol=0.25)


@pytest.mark.exact
def test_genetic_value_draws__reproducible_with_the_seed():
    geno, _ = simulate_genotypes(40, 120, seed=6)
    geno, _ = bb.quality_control(geno)
    G = bb.genomic_relationship(geno, scaling="standardized-hwe")
    y = pd.Series(np.random.default_rng(6).standard_normal(40), index=geno.ids, name="y")
    draws = [
        bb.GBLUP(y, G)
        .fit(chains=1, draws=50, tune=50, seed=9, genetic_value_draws=True)
        .datatree["genetic_value_draws"]["g"]
        .values
        for _ in range(2)
    ]
    np.testing.assert_array_equal(draws[0], draws[1])
