"""The low-rank path against the dense route under NUTS, at n = 3000, m = 1000 (slow tier).

Both routes sample the same posterior (their log-likelihoods agree to 1e-8, tests/models/test_low_rank.py), with
different floating-point paths and so different chains. h2's posterior mean must agree within 4 x the combined
Monte Carlo standard error (``sqrt(mcse_a^2 + mcse_b^2)``, ArviZ's ``mcse_mean`` of each fit): a false failure
has probability about 6e-5 under a normal MC error. The genetic values' posterior means are each a smooth
function of the draws of (mu, sigma2_g, sigma2_e); their MC error is taken as the posterior sd of g over sqrt of
the smaller bulk ESS of h2 (a conservative proxy: g's mean varies less across draws than g itself), and every
individual's means must agree within 4 x the combined value.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.linalg.spectral import RankDeficiencyWarning
from bayesblup.testing import simulate_genotypes, simulate_records

pytestmark = [pytest.mark.recovery, pytest.mark.slow]


def test_low_rank_h2_and_genetic_values_equal_the_dense_route_to_mc_error():
    n, m = 3000, 1000
    geno, _ = simulate_genotypes(n, m, seed=21)
    W = bb.genotype_matrix(geno)
    sim = simulate_records(W.values, geno.ids, h2=0.5, unphenotyped=0.05, seed=22)
    y = sim.table["y"]
    fits = {}
    for path in ("low-rank", "dense"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            model = bb.GBLUP(y, W, path=path)
            fits[path] = model.fit(chains=4, draws=1000, tune=1000, seed=3)
    assert fits["low-rank"].model.path == "low-rank" and fits["dense"].model.path == "spectral"
    thin, dense = (fits[p].summary().loc["h2"] for p in ("low-rank", "dense"))
    assert abs(thin["mean"] - dense["mean"]) <= 4 * np.hypot(thin["mcse_mean"], dense["mcse_mean"])
    g_thin = fits["low-rank"].genetic_values
    g_dense = fits["dense"].genetic_values
    assert isinstance(g_thin, pd.DataFrame) and (g_thin["id"] == g_dense["id"]).all()
    ess = min(thin["ess_bulk"], dense["ess_bulk"])
    mc = np.hypot(g_thin["sd"], g_dense["sd"]) / np.sqrt(ess)
    assert (np.abs(g_thin["mean"] - g_dense["mean"]) <= 4 * mc).all()
