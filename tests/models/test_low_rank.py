"""The low-rank path (one kernel given as a factor W with fewer markers than individuals with a record).

Exact: its log-likelihood, the r rotated components plus the null space's Gram term, is the dense multivariate
normal of the records (scipy) to 1e-8 relative, with fixed effects, weights, repeated records and a permanent
environment; genetic values, their sd, marker effects and unphenotyped individuals equal the dense route's
(G from ``genomic_relationship``, or W W' eigendecomposed n x n) at the same draws to 1e-8; the thin eigenvalues
are the dense decomposition's non-zero ones. The tolerances are float64 rounding: the same numbers reached
through another order of operations (U from ``W V s^-1/2`` is orthonormal to about ``eps * s_max / s_min``,
~1e-14 at these sizes). Structural: which path is taken, its override and refusals, and no n x n allocation.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesblup as bb
from bayesblup.inference.posterior import conditional_fixed_effects, conditional_genetic_values, posterior_moments
from bayesblup.linalg.spectral import RankDeficiencyWarning, ThinSpectral
from bayesblup.testing import simulate_genotypes, simulate_records

N, M = 70, 24  # individuals and markers: m < n, so the low-rank path applies


def _genotypes(n=N, m=M, seed=5):
    p = np.random.default_rng(seed).uniform(0.2, 0.8, size=m)
    geno, _ = simulate_genotypes(n, m, allele_freq=p, seed=seed + 1)
    return geno, bb.genotype_matrix(geno)


def _dense_G(geno) -> bb.Relationship:
    with warnings.catch_warnings():  # G has rank m - 1 < n: the dense route warns, as it should
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        return bb.genomic_relationship(geno)


def _table(geno, W, case: str) -> pd.DataFrame:
    """Records of one case: "plain" one each; "none" 1-4 weighted ones; "diagonal" with p, weights summing to 3."""
    sim = simulate_records(
        W.values, geno.ids, h2=0.4, pe_share=0.2, records=(1, 1) if case == "plain" else (1, 4),
        weights=None if case == "plain" else (1, 3), sex_effect=0.8, age_slope=0.1, unphenotyped=0.1, seed=11,
    )  # fmt: skip
    table = sim.table
    if case == "diagonal":
        counts = table.groupby(level=0, sort=False)["w"].transform("size")
        table = table.assign(w=3.0 / counts)
    return table


def _model(name, table, source, case, **kwargs):
    Model = bb.GBLUP if name == "gblup" else bb.MBLUP
    options = {"fixed": table[["sex", "age"]]}
    if case != "plain":
        options |= {"weights": table["w"], "repeated": True, "permanent_environment": case == "diagonal"}
    with warnings.catch_warnings():  # only the dense route warns of G's rank
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        model = Model(table["y"], source, **options, **kwargs)
        model.spectral  # noqa: B018 - decompose inside the guard
    return model


def _likelihood(pm_model):
    terms = pm_model.observed_RVs + pm_model.potentials
    return pm_model.compile_fn(pm_model.logp(vars=terms), on_unused_input="ignore")


CASES = ("plain", "none", "diagonal")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_low_rank_logp_equals_dense_mvn(name, case):
    """log N(y; X beta, Z (sigma2_k K + sigma2_pe I) Z' + sigma2_e D) to 1e-8 relative, in the graph and in numpy.

    numpy: the components' normal log-densities plus ``SpectralData.null_terms`` plus the within-individual
    terms, the sum the quadrature method adds up, equal the same dense logp.
    """
    geno, W = _genotypes()
    table = _table(geno, W, case)
    model = _model(name, table, W, case, prior="bglr")
    assert model.path == "low-rank" and isinstance(model.spectral, ThinSpectral)
    data = model.spectral_data
    assert data.null_dim == model.n - data.lam.size > 0 and data.vectors is None
    logp = _likelihood(model.model)
    rec = model.records
    Z = np.zeros((model.n_records, model.n))
    Z[np.arange(model.n_records), rec.record_index] = 1.0
    Wp = model.kernels[0].W
    K = Wp @ Wp.T / (W.scaling.denominator if name == "gblup" else 1.0)
    D = np.diag(1.0 / rec.weights) if rec.weights is not None else np.eye(model.n_records)
    X1 = np.hstack([np.ones((model.n_records, 1)), rec.X])
    rng = np.random.default_rng(3)
    for mu, sg, spe, se in [(9.0, 0.5, 0.3, 0.4), (11.0, 1.4, 0.05, 0.9), (10.0, 0.02, 0.2, 2.0)]:
        beta = rng.normal(0, 0.5, size=rec.n_covariates)
        sk = sg / model.factor
        point = {"mu": mu, "beta": beta, f"{model.kernel_variance}_log__": np.log(sk), "sigma2_e_log__": np.log(se)}
        if case == "diagonal":
            point["sigma2_pe_log__"] = np.log(spe)
        V = Z @ (sk * K + (spe * np.eye(model.n) if case == "diagonal" else 0)) @ Z.T + se * D
        expected = st.multivariate_normal(X1 @ np.concatenate([[mu], beta]), V).logpdf(rec.y)
        assert float(logp(point)) == pytest.approx(expected, rel=1e-8)
        a, b = data.noise
        nu = a * se + b * (spe if case == "diagonal" else 0.0)
        mean = data.one * mu + data.X @ beta
        numpy = st.norm(mean, np.sqrt(sk * data.lam + nu)).logpdf(data.y).sum() + data.null_terms(mu, beta, nu)
        if data.within is not None:
            wa, wb, wC, n_extra, constant = data.within
            scatter = wa - 2 * wb @ beta + beta @ wC @ beta
            numpy += constant - 0.5 * n_extra * np.log(2 * np.pi * se) - scatter / (2 * se)
        assert numpy == pytest.approx(expected, rel=1e-8)


@pytest.mark.exact
def test_null_terms_broadcast_over_parameter_arrays():
    """``null_terms`` at an array of (mu, beta, nu) equals it point by point (the quadrature grid's use), to 1e-12."""
    geno, W = _genotypes()
    model = _model("gblup", _table(geno, W, "plain"), W, "plain")
    data = model.spectral_data
    rng = np.random.default_rng(2)
    mu, nu, beta = rng.normal(10, 1, (3, 4)), rng.uniform(0.2, 2, (3, 4)), rng.normal(0, 1, (3, 4, 2))
    grid = data.null_terms(mu, beta, nu)
    assert grid.shape == (3, 4)
    for i, j in np.ndindex(3, 4):
        assert grid[i, j] == pytest.approx(float(data.null_terms(mu[i, j], beta[i, j], nu[i, j])), rel=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_low_rank_posterior_equals_the_dense_route(name, case):
    """At the same draws: g (mean, sd), unphenotyped and new individuals, marker effects, GLS fixed effects, to 1e-8.

    G-BLUP's dense route is G from ``genomic_relationship``: the factor route gives the same posterior.
    """
    geno, W = _genotypes()
    table = _table(geno, W, case)
    thin = _model(name, table, W, case)
    dense = _model(name, table, _dense_G(geno) if name == "gblup" else W, case, path="dense")
    assert (thin.path, dense.path) == ("low-rank", "spectral")
    rng = np.random.default_rng(9)
    n_draws = 60
    c = thin.factor
    draws = {
        "mu": rng.normal(10, 0.3, n_draws), "sigma2_k": rng.uniform(0.2, 2.0, n_draws) / c,
        "sigma2_e": rng.uniform(0.3, 1.5, n_draws), "beta": rng.normal(0, 0.5, (n_draws, 2)),
    }  # fmt: skip
    if case == "diagonal":
        draws["sigma2_pe"] = rng.uniform(0.05, 0.5, n_draws)
    # new individuals (fit.predict): M over the records, Cov(g_new, g) = sigma2_k W_new W' / c_G, given as a matrix
    W_new = rng.normal(size=(3, M))
    divisor = W.scaling.denominator if name == "gblup" else 1.0
    new = {"new": (W_new @ thin.kernels[0].W.T / divisor, (W_new**2).sum(1) / divisor)}
    g_thin, t_thin = posterior_moments(thin.spectral_data, **draws, targets=thin.targets | new)
    g_dense, t_dense = posterior_moments(dense.spectral_data, **draws, targets=dense.targets | new)
    scale = np.abs(g_dense.mean).max()
    np.testing.assert_allclose(g_thin.mean, g_dense.mean, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(g_thin.sd, g_dense.sd, rtol=1e-8)
    assert set(t_thin) == set(t_dense) == ({"unphenotyped", "new"} | ({"markers"} if name == "mblup" else set()))
    for key in t_dense:
        np.testing.assert_allclose(
            t_thin[key].mean, t_dense[key].mean, rtol=0, atol=1e-8 * np.abs(t_dense[key].mean).max()
        )
        np.testing.assert_allclose(t_thin[key].sd, t_dense[key].sd, rtol=1e-8)
    pe = {"sigma2_pe": 0.2} if case == "diagonal" else {}
    np.testing.assert_allclose(
        conditional_fixed_effects(thin.spectral_data, 0.7 / c, 0.6, **pe),
        conditional_fixed_effects(dense.spectral_data, 0.7 / c, 0.6, **pe), rtol=1e-8,
    )  # fmt: skip
    one = conditional_genetic_values(thin.spectral_data, 10.0, 0.7 / c, 0.6, np.array([0.3, 0.1]), **pe)
    other = conditional_genetic_values(dense.spectral_data, 10.0, 0.7 / c, 0.6, np.array([0.3, 0.1]), **pe)
    for a, b in zip(one, other, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8 * np.abs(b).max())


@pytest.mark.exact
def test_genetic_value_draws_on_the_low_rank_path_lie_in_the_kernels_column_space():
    """A kept draw is E[g | theta] plus noise in the column space of W: least squares on W leaves < 1e-10 of it."""
    geno, W = _genotypes()
    model = _model("gblup", _table(geno, W, "plain"), W, "plain")
    rng = np.random.default_rng(4)
    D = 8
    args = (rng.normal(10, 0.3, D), rng.uniform(0.2, 2.0, D), rng.uniform(0.3, 1.5, D))
    beta = rng.normal(0, 0.5, (D, 2))
    g, _ = posterior_moments(model.spectral_data, *args, beta=beta, keep_draws=np.ones(D, bool), seed=1)
    assert g.draws.shape == (D, model.n)
    centred = (
        g.draws[0] - conditional_genetic_values(model.spectral_data, args[0][0], args[1][0], args[2][0], beta[0])[0]
    )
    Wp = model.kernels[0].W
    coef, *_ = np.linalg.lstsq(Wp, centred, rcond=None)
    assert np.linalg.norm(centred - Wp @ coef) < 1e-10 * np.linalg.norm(centred)
    assert np.linalg.norm(centred) > 0


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.exact
def test_thin_eigenvalues_and_rank_match_the_dense_decomposition(weighted):
    """The thin decomposition's eigenvalues are the dense one's non-zero ones (1e-10 of the largest), same rank."""
    geno, W = _genotypes()
    case = "none" if weighted else "plain"
    table = _table(geno, W, case)
    thin = _model("gblup", table, W, case)
    dense = _model("gblup", table, W, case, path="dense")
    sp, full = thin.spectral, dense.spectral
    assert sp.rank == full.rank == M  # W is centred over every individual, not over the records: rank m
    assert sp.n_clipped == full.n_clipped and sp.n == full.n == thin.n
    np.testing.assert_allclose(sp.values, full.values[full.values > 0], rtol=0, atol=1e-10 * full.values.max())
    # U'U = I on the kept components, U never formed but for this check
    U = sp.vectors()
    np.testing.assert_allclose(U.T @ U, np.eye(sp.rank), rtol=0, atol=1e-10)
    assert thin.msx == pytest.approx(dense.msx, rel=1e-10)


@pytest.mark.exact
def test_no_n_by_n_array_is_allocated_on_the_low_rank_path():
    """n = 3000, m = 300: decomposition, rotated data, priors, genetic values and unphenotyped individuals peak
    below half of one n x n float64 matrix (36 MB) under tracemalloc (numpy reports its buffers to it), so no n x n
    array is formed. Measured: about 16 MB (W's rows of the records, 7 MB, and a row block of W times the basis);
    the dense route peaks at about 280 MB here.
    """
    n, m = 3000, 300
    geno, W = _genotypes(n, m, seed=8)
    rng = np.random.default_rng(1)
    y = pd.Series(rng.normal(size=n), index=geno.ids, name="y")
    y.iloc[:50] = np.nan  # unphenotyped individuals, predicted through W_u
    model = bb.GBLUP(y, W)
    tracemalloc.start()
    try:
        model.spectral_data  # noqa: B018
        model.priors  # noqa: B018 - BGLR's MSx from the thin eigenvalues
        D = 40
        g, extra = posterior_moments(
            model.spectral_data, rng.normal(size=D), rng.uniform(0.5, 1, D), rng.uniform(0.5, 1, D),
            targets=model.targets, keep_draws=np.arange(D) < 2,
        )  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert model.path == "low-rank" and g.mean.shape == (n - 50,) and extra["unphenotyped"].mean.shape == (50,)
    assert peak < n * n * 8 / 2, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.structural
def test_path_choice_override_and_refusals():
    geno, W = _genotypes()
    table = _table(geno, W, "plain")
    y = table["y"]
    G = _dense_G(geno)
    assert bb.GBLUP(y, W).path == "low-rank" and bb.MBLUP(y, W).path == "low-rank"
    assert bb.GBLUP(y, W).describe()["path"] == "low-rank"
    assert bb.GBLUP(y, W, path="dense").path == "spectral" and bb.GBLUP(y, G).path == "spectral"
    assert bb.GBLUP(y, W, form="latent").path == "latent"
    # G-BLUP from W is G-BLUP: its variance, h2, G's scale and denominator
    model = bb.GBLUP(y, W)
    kernel = model.describe()["kernels"][0]
    assert model.name == "gblup" and model.kernel_variance == "sigma2_g" and model.factor == 1.0
    assert kernel["kind"] == "gblup" and kernel["g_denominator"] == W.scaling.denominator and kernel["n_markers"] == M
    with pytest.raises(bb.InputError, match=r"path='low-rank' is not available here: the kernel is a relationship"):
        bb.GBLUP(y, G, path="low-rank")
    few = _genotypes(n=N, m=N + 10)[1]
    with pytest.raises(bb.InputError, match=r"W has 80 markers, not fewer than the 63 individuals with a record"):
        bb.GBLUP(y, few, path="low-rank")
    assert bb.MBLUP(y, few).path == "spectral"  # auto: dense where W is wide
    with pytest.raises(bb.InputError, match=r"path='low-rank' is not available here: it is the one-kernel path"):
        bb.MultiMBLUP(y, {"a": W, "b": W}, path="low-rank")
    # a permanent environment with unequal total weights: auto falls back to the dense path, low-rank refused
    rep = _table(geno, W, "none")
    options = {"weights": rep["w"], "repeated": True, "permanent_environment": True}
    assert bb.GBLUP(rep["y"], W, **options).path == "spectral"
    with pytest.raises(bb.InputError, match=r"unequal total record weights samples an n-vector"):
        bb.GBLUP(rep["y"], W, path="low-rank", **options)
    with pytest.raises(bb.InputError, match=r"path must be one of auto, woodbury, dense, low-rank; got 'thin'"):
        bb.GBLUP(y, W, path="thin")
