"""Kernels (bayesblup.kernels) and one model over any list of them.

Exact: each kernel's factor reproduces K over every individual, its diagonal and cross-covariances are
K's own entries, and a model mixing a relationship and a marker kernel has the log-likelihood of the
dense multivariate normal ``N(mu 1, sigma2_g G + sigma2_b W W' + sigma2_e I)`` (1e-8 relative:
a different order of floating-point operations on the same numbers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesblup as bb
from bayesblup.kernels import MarkerKernel, RelationshipKernel
from bayesblup.testing import simulate_genotypes


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    geno, _ = simulate_genotypes(40, 60, allele_freq=rng.uniform(0.1, 0.9, 60), seed=rng)
    G = bb.genomic_relationship(geno)
    W = bb.genotype_matrix(geno)
    y = pd.Series(rng.normal(2.0, 1.0, 40), index=geno.ids, name="y")
    y.iloc[:5] = np.nan  # five genotyped individuals without a record
    return G, W, y


@pytest.mark.exact
@pytest.mark.parametrize("kind", ["relationship", "marker"])
def test_kernel_factor_diagonal_and_targets_are_those_of_K(data, kind):
    G, W, y = data
    kernel = RelationshipKernel(G) if kind == "relationship" else MarkerKernel(W)
    records = bb.match_records(y, G.ids)
    bound = kernel.bind(records.ids, records.unphenotyped)
    every = np.concatenate([G.index(records.ids), G.index(records.unphenotyped)])
    K = G.matrix[np.ix_(every, every)] * bound.c  # K = c G
    L = bound.factor_all()
    np.testing.assert_allclose(L @ L.T, K, rtol=0, atol=1e-10 * np.abs(K).max())
    np.testing.assert_allclose(bound.diagonal(), np.diag(K), rtol=1e-12)
    np.testing.assert_allclose(bound.matrix(), K[:35, :35], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bound.relationship_matrix(), K[:35, :35] / bound.c, rtol=1e-12, atol=1e-12)
    M, v = bound.targets()["unphenotyped"]
    np.testing.assert_allclose(M, K[35:, :35], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v, np.diag(K)[35:], rtol=1e-12)
    assert bound.c == (1.0 if kind == "relationship" else W.scaling.denominator)
    assert ("markers" in bound.targets()) == (kind == "marker")


@pytest.mark.exact
def test_one_model_mixes_a_relationship_and_a_marker_kernel(data):
    G, W, y = data
    model = bb.BLUPModel(y, {"G": G, "W": W}, prior="bglr")
    assert model.name == "mixed" and model.set_names == ["G", "W"]
    assert [k.variance_name for k in model.kernels] == ["sigma2_g_G", "sigma2_b_W"]
    pm_model = model.model
    assert {"sigma2_g_equiv_W", "h2_G", "h2_W"} <= set(pm_model.named_vars)
    logp = pm_model.compile_logp(vars=[pm_model["y_marginal"]], jacobian=False)
    p = G.index(model.ids)
    Gp, Wp = G.matrix[np.ix_(p, p)], W.values[p]
    rng = np.random.default_rng(1)
    for _ in range(3):
        mu, sg, sb, se = rng.normal(2, 0.3), rng.uniform(0.1, 1), rng.uniform(1e-3, 1e-2), rng.uniform(0.2, 1)
        cov = sg * Gp + sb * Wp @ Wp.T + se * np.eye(model.n)
        expected = st.multivariate_normal(np.full(model.n, mu), cov).logpdf(model.y)
        point = {"mu": mu, "sigma2_g_G_log__": np.log(sg), "sigma2_b_W_log__": np.log(sb), "sigma2_e_log__": np.log(se)}
        assert float(logp(point)) == pytest.approx(expected, rel=1e-8)


@pytest.mark.structural
def test_model_slots_family_and_traits(data):
    G, _, y = data
    model = bb.GBLUP(y, G)
    assert model.traits == ("y",) and model.family == "gaussian"
    spec = model.describe()
    assert spec["family"] == "gaussian" and spec["path"] == "spectral" and spec["kernels"][0]["kind"] == "gblup"
    with pytest.raises(bb.InputError, match=r"family must be one of gaussian, binary, ordinal; got 'poisson'"):
        bb.GBLUP(y, G, family="poisson")
    with pytest.raises(bb.InputError, match=r"family='binary' needs y to take exactly two values"):
        bb.GBLUP(y, G, family="binary")  # a continuous trait
    with pytest.raises(bb.InputError, match=r"name each one"):
        bb.BLUPModel(y, [G, G])
