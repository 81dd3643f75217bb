"""G-BLUP and M-BLUP models: exact oracles, structure, priors and errors (fast; no real sampling).

Every numeric check here is exact up to float64 rounding: the spectral likelihood against a dense
multivariate normal, ``g | y, theta`` against Henderson's mixed-model equations, and marker effects
against the dense ridge solution. Sampling itself is replaced by PyMC's mock sampler.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import scipy.stats as st

import bayesblup as bb
from bayesblup.inference.posterior import conditional_genetic_values, posterior_moments
from bayesblup.testing import simulate_genotypes

MODELS = {"gblup": bb.GBLUP, "mblup": bb.MBLUP}

# Two kernels on simulated HWE genotypes with m > n, allele frequencies in [0.2, 0.8] so that no
# marker is monomorphic at these sizes:
# - "full-rank": standardized-hwe on the true (base) frequencies; W is not column-centred on the
#   sample, so G = WW'/m is positive definite;
# - "rank-deficient": centered on the sample frequencies; the columns of W sum to zero, G 1 = 0,
#   and the eigenvalue along 1 comes out of the eigensolver as ~1e-14 and is clipped to 0.
KERNELS = {
    "full-rank": {"scaling": "standardized-hwe", "base": True},
    "rank-deficient": {"scaling": "centered", "base": False},
}


def _simulated(kernel: str, n: int = 48, m: int = 150, seed: int = 3):
    """(G, W) of one kernel on simulated genotypes."""
    p = np.random.default_rng(seed).uniform(0.2, 0.8, size=m)
    geno, p = simulate_genotypes(n, m, allele_freq=p, seed=seed + 1)
    spec = KERNELS[kernel]
    freq = {"allele_freq": p} if spec["base"] else {}
    G = bb.genomic_relationship(geno, scaling=spec["scaling"], **freq)
    W = bb.genotype_matrix(geno, scaling=spec["scaling"], **freq)
    return G, W


def _trait(ids, rng, *, name="t") -> pd.Series:
    return pd.Series(rng.normal(3.0, 1.5, size=len(ids)), index=list(ids), name=name)


def _model(name: str, y, G, W, **kwargs):
    return MODELS[name](y, G if name == "gblup" else W, **kwargs)


def _kernel(name: str, G, W) -> np.ndarray:
    """K with Var(y) = sigma2_k K + sigma2_e I, computed densely: G, or WW' (= c G) for M-BLUP."""
    return G.matrix if name == "gblup" else W.values @ W.values.T


def _point(model, mu: float, sigma2_k: float, sigma2_e: float) -> dict:
    """The model's free variables (in PyMC's transformed space) at (mu, sigma2_k, sigma2_e)."""
    if model.prior_label == "default":
        total = model.factor * sigma2_k + sigma2_e
        h2 = model.factor * sigma2_k / total
        return {"mu": mu, "h2_logodds__": np.log(h2 / (1 - h2)), "sigma2_p_log__": np.log(total)}
    return {"mu": mu, f"{model.kernel_variance}_log__": np.log(sigma2_k), "sigma2_e_log__": np.log(sigma2_e)}


def _random_theta(rng, c: float):
    """mu, sigma2_k, sigma2_e over a wide range (h2 from ~0.05 to ~0.95)."""
    sigma2_g, sigma2_e = np.exp(rng.uniform(np.log(0.05), np.log(5.0), size=2))
    return float(rng.normal(0, 3)), float(sigma2_g / c), float(sigma2_e)


# --- the spectral likelihood is the dense one --------------------------------------------------
@pytest.mark.parametrize("prior", ["default", "bglr"])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.exact
def test_marginal_logp__equals_dense_multivariate_normal(rng, name, kernel, prior):
    """log N(y; mu 1, sigma2_k K + sigma2_e I) from the rotated diagonal likelihood, at random theta.

    Only the observed variable's logp (no priors, no Jacobian). Tolerance 1e-8 relative: both sides
    are exact; they differ by float64 rounding in an eigendecomposition and a dense Cholesky of an
    n = 48 matrix (~1e-13), and, for the rank-deficient G, by the clipped eigenvalue (~1e-14 x the
    largest, which moves logp by ~1e-14 relative).
    """
    G, W = _simulated(kernel)
    model = _model(name, _trait(G.ids, rng), G, W, prior=prior)
    K = _kernel(name, G, W)
    assert model.spectral.n_clipped == (1 if kernel == "rank-deficient" else 0)
    if kernel == "rank-deficient":  # the dense G really is singular: compare against it, not a ridge
        assert abs(np.linalg.eigvalsh(G.matrix)[0]) < 1e-12 * np.linalg.eigvalsh(G.matrix)[-1]
    pm_model = model.model
    logp = pm_model.compile_logp(vars=[pm_model["y_rotated"]], jacobian=False)
    c = model.factor
    for _ in range(4):
        mu, sigma2_k, sigma2_e = _random_theta(rng, c)
        cov = sigma2_k * K + sigma2_e * np.eye(model.n)
        expected = st.multivariate_normal(mu * np.ones(model.n), cov).logpdf(model.y)
        assert float(logp(_point(model, mu, sigma2_k, sigma2_e))) == pytest.approx(expected, rel=1e-8)


@pytest.mark.exact
def test_marginal_logp__mblup_kernel_is_c_times_G(rng):
    """M-BLUP's kernel is WW' = c G with c = m (standardized): its logp at sigma2_b is G-BLUP's at c sigma2_b."""
    G, W = _simulated("full-rank")
    y = _trait(G.ids, rng)
    gblup, mblup = bb.GBLUP(y, G, prior="bglr"), bb.MBLUP(y, W, prior="bglr")
    assert mblup.factor == W.values.shape[1]
    np.testing.assert_allclose(mblup.relationship_matrix, G.matrix, rtol=0, atol=1e-12)
    lg = gblup.model.compile_logp(vars=[gblup.model["y_rotated"]], jacobian=False)
    lm = mblup.model.compile_logp(vars=[mblup.model["y_rotated"]], jacobian=False)
    for _ in range(3):
        mu, sigma2_b, sigma2_e = _random_theta(rng, mblup.factor)
        at_g = lg(_point(gblup, mu, mblup.factor * sigma2_b, sigma2_e))
        # Tolerance: two eigendecompositions of the same G (one via WW'), float64 rounding only.
        assert float(lm(_point(mblup, mu, sigma2_b, sigma2_e))) == pytest.approx(float(at_g), rel=1e-10)


# --- g | y, theta is Henderson's BLUP ---------------------------------------------------------
def _records_shuffled(G, rng) -> pd.Series:
    """Records in another order than G, two missing, one genotyped individual without a record."""
    y = _trait(G.ids, rng).iloc[rng.permutation(G.n_individuals)]
    y.iloc[[3, 10]] = np.nan
    return y.iloc[1:]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.exact
def test_conditional_genetic_values__solve_henderson_mme(rng, name):
    """E[g | y, theta] solves Henderson's mixed-model equations; Var equals (G^-1/sg2 + I/se2)^-1.

    The MME [[1'1, 1'], [1, I + G^-1 se2/sg2]] [mu; g] = [1'y; y] are solved densely (full-rank G)
    and the GLS mu they give is used as the fixed mu; the variance is that with mu known. For
    M-BLUP, sigma2_k = sigma2_b and sg2 = c sigma2_b with G = WW'/c built here from W. Records are
    shuffled and partly missing, so the model must subset and order G by ID. Tolerance 1e-8
    (relative, with a 1e-10 floor): both sides are exact, G is well conditioned (n = 48, m = 150).
    """
    G, W = _simulated("full-rank")
    y = _records_shuffled(G, rng)
    model = _model(name, y, G, W)
    kept = y.dropna()
    np.testing.assert_array_equal(model.ids, kept.index.to_numpy())
    np.testing.assert_array_equal(model.y, kept.to_numpy())
    idx = [list(G.ids).index(i) for i in kept.index]
    if name == "gblup":
        G_sub = G.matrix[np.ix_(idx, idx)]
    else:
        rows = W.values[idx]
        G_sub = rows @ rows.T / W.scaling.denominator
    n = len(idx)
    for _ in range(3):
        _, sigma2_k, sigma2_e = _random_theta(rng, model.factor)
        sg2 = model.factor * sigma2_k
        G_inv = np.linalg.inv(G_sub)
        ones = np.ones((n, 1))
        lhs = np.block([[ones.T @ ones, ones.T], [ones, np.eye(n) + G_inv * sigma2_e / sg2]])
        rhs = np.concatenate([[kept.sum()], kept.to_numpy()])
        solution = np.linalg.solve(lhs, rhs)
        mu_hat, g_hat = solution[0], solution[1:]
        mean, var = conditional_genetic_values(model.posterior_data, mu_hat, sigma2_k, sigma2_e)
        np.testing.assert_allclose(mean, g_hat, rtol=1e-8, atol=1e-10)
        expected_var = np.diag(np.linalg.inv(G_inv / sg2 + np.eye(n) / sigma2_e))
        np.testing.assert_allclose(var, expected_var, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.exact
def test_conditional_genetic_values__singular_G_matches_covariance_form(rng, name):
    """For a singular (centred) G, where the MME need G^-1, the covariance form of the BLUP is exact.

    E[g | y, theta] = sg2 G V^-1 (y - mu 1) and Var = sg2 G - sg2^2 G V^-1 G with V = sg2 G + se2 I
    (dense). Tolerance 1e-8 relative (1e-10 absolute): exact on both sides; the clipped eigenvalue
    (~1e-14 x the largest) contributes below that.
    """
    G, W = _simulated("rank-deficient")
    model = _model(name, _trait(G.ids, rng), G, W)
    K = _kernel(name, G, W)
    for _ in range(3):
        mu, sigma2_k, sigma2_e = _random_theta(rng, model.factor)
        V = sigma2_k * K + sigma2_e * np.eye(model.n)
        gain = sigma2_k * K @ np.linalg.inv(V)
        mean, var = conditional_genetic_values(model.posterior_data, mu, sigma2_k, sigma2_e)
        np.testing.assert_allclose(mean, gain @ (model.y - mu), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(var, np.diag(sigma2_k * K - gain @ K * sigma2_k), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.exact
def test_marker_effects__dense_ridge_solution(rng, kernel):
    """E[b | y, theta] = sb2 W'(sb2 WW' + se2 I)^-1 (y - mu 1), its variance, and W E[b] = E[g].

    One draw of theta, so posterior_moments returns the conditional moments. Var(b_j | y, theta) is the
    diagonal of sb2 I - sb2^2 W'V^-1 W. Tolerance 1e-8 relative (1e-12 absolute; marker effects are
    ~1e-2): exact on both sides.
    """
    G, W = _simulated(kernel)
    model = bb.MBLUP(_trait(G.ids, rng), W)
    Wv = W.values
    mu, sb2, se2 = _random_theta(rng, model.factor)
    V = sb2 * Wv @ Wv.T + se2 * np.eye(model.n)
    V_inv = np.linalg.inv(V)
    b_dense = sb2 * Wv.T @ V_inv @ (model.y - mu)
    var_dense = sb2 - sb2**2 * np.einsum("ij,ik,kj->j", Wv, V_inv, Wv)
    g_moments, extra = posterior_moments(
        model.posterior_data, np.array([mu]), np.array([sb2]), np.array([se2]), targets=model.targets
    )
    b_moments = extra["markers"]
    np.testing.assert_allclose(b_moments.mean, b_dense, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(b_moments.sd**2, var_dense, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(Wv @ b_moments.mean, g_moments.mean, rtol=1e-8, atol=1e-10)
    g_mean, g_var = conditional_genetic_values(model.posterior_data, mu, sb2, se2)
    np.testing.assert_allclose(g_moments.mean, g_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_moments.sd**2, g_var, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.exact
def test_posterior_moments__law_of_total_variance_over_draws(rng, name):
    """Over D = 300 draws (more than one chunk of 256): mean of E[g|theta_d], and Var = mean Var + var E.

    The oracle loops draw by draw over the dense covariance form. Tolerance 1e-8 relative: exact
    arithmetic on both sides (the package accumulates shifted sums; the loop uses np.mean/np.var).
    """
    G, W = _simulated("rank-deficient")
    model = _model(name, _trait(G.ids, rng), G, W)
    K = _kernel(name, G, W)
    D = 300
    mu = rng.normal(3.0, 0.3, D)
    sk = np.exp(rng.normal(np.log(0.5), 0.5, D)) / model.factor
    se = np.exp(rng.normal(np.log(0.5), 0.5, D))
    means, variances = [], []
    for d in range(D):
        gain = sk[d] * K @ np.linalg.inv(sk[d] * K + se[d] * np.eye(model.n))
        means.append(gain @ (model.y - mu[d]))
        variances.append(np.diag(sk[d] * K - sk[d] * gain @ K))
    means, variances = np.array(means), np.array(variances)
    g, _ = posterior_moments(model.posterior_data, mu, sk, se)
    np.testing.assert_allclose(g.mean, means.mean(0), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(g.sd**2, variances.mean(0) + means.var(0), rtol=1e-8, atol=1e-10)


@pytest.mark.exact
def test_posterior_moments__marker_effects_over_draws_equal_the_draw_by_draw_oracle(rng):
    """M-BLUP's marker effects over D = 700 independent draws (three chunks): the package averages in
    the rotated basis and takes the between-draw variance from a low-rank basis of the draws; the
    oracle loops draw by draw over the dense form E[b | theta] = sigma2_b W' V^-1 (y - mu), Var[b_j |
    theta] = sigma2_b - sigma2_b^2 (W' V^-1 W)_jj. Tolerance 1e-8 relative: the basis leaves out less
    than 1e-13 of the draws' spread, the rest is rounding."""
    G, W = _simulated("rank-deficient")
    model = _model("mblup", _trait(G.ids, rng), G, W)
    Wv = W.values
    D = 700
    mu = rng.normal(3.0, 0.3, D)
    sk = np.exp(rng.normal(np.log(0.5), 0.5, D)) / model.factor
    se = np.exp(rng.normal(np.log(0.5), 0.5, D))
    means, variances = [], []
    for d in range(D):
        Vi_W = np.linalg.solve(sk[d] * Wv @ Wv.T + se[d] * np.eye(model.n), Wv)
        means.append(sk[d] * Vi_W.T @ (model.y - mu[d]))
        variances.append(sk[d] - sk[d] ** 2 * np.einsum("ij,ij->j", Wv, Vi_W))
    means, variances = np.array(means), np.array(variances)
    _, extra = posterior_moments(model.posterior_data, mu, sk, se, targets=model.targets)
    b = extra["markers"]
    np.testing.assert_allclose(b.mean, means.mean(0), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(b.sd**2, variances.mean(0) + means.var(0), rtol=1e-8, atol=1e-14)


@pytest.mark.exact
def test_posterior_moments__float32_marker_variances_within_1e_6(rng, monkeypatch):
    """Large problems form A = W'U in float32 (bayesblup.inference.posterior.FLOAT32_ABOVE). Forced here on a small
    one: the marker sds move by less than 1e-6 relative (float32 rounding is ~6e-8 per product, and rows
    where the posterior variance nearly cancels the prior's are recomputed in float64); means unchanged."""
    import bayesblup.inference.posterior as posterior

    G, W = _simulated("rank-deficient")
    model = _model("mblup", _trait(G.ids, rng), G, W)
    D = 400
    draws = (rng.normal(3.0, 0.3, D), np.exp(rng.normal(np.log(0.5), 0.5, D)) / model.factor, np.full(D, 0.5))
    _, exact = posterior_moments(model.posterior_data, *draws, targets=model.targets)
    monkeypatch.setattr(posterior, "FLOAT32_ABOVE", 0)
    _, single = posterior_moments(model.posterior_data, *draws, targets=model.targets)
    np.testing.assert_array_equal(single["markers"].mean, exact["markers"].mean)
    np.testing.assert_allclose(single["markers"].sd, exact["markers"].sd, rtol=1e-6)
    assert not np.array_equal(single["markers"].sd, exact["markers"].sd)  # the float32 path did run


# --- the latent form has the same prior on g ---------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.exact
def test_latent_form__g_has_covariance_sigma2_k_K(rng, name):
    """In the latent form g = J z is linear in the non-centred z; J J' must be sigma2_k c G.

    J is the Jacobian dg/dz from PyTensor at a point. Tolerance 1e-10 absolute on entries of order
    1: exact up to rounding, plus the clipped eigenvalue of the centred G (~1e-14).
    """
    import pytensor

    G, W = _simulated("rank-deficient")
    model = _model(name, _trait(G.ids, rng), G, W, form="latent", prior="bglr")
    pm_model = model.model
    (g_values,) = pm_model.replace_rvs_by_values([pm_model["g"]])
    jacobian = pytensor.gradient.jacobian(g_values, pm_model.rvs_to_values[pm_model["z"]])
    J_fn = pm_model.compile_fn(jacobian, inputs=pm_model.value_vars, on_unused_input="ignore")
    _, sigma2_k, sigma2_e = _random_theta(rng, model.factor)
    point = pm_model.initial_point() | _point(model, 1.0, sigma2_k, sigma2_e)
    J = J_fn(point)
    np.testing.assert_allclose(J @ J.T, sigma2_k * _kernel(name, G, W), rtol=0, atol=1e-10)


# --- structure, under PyMC's mock sampler ------------------------------------------------------
EXPECTED_VARS = {
    ("gblup", "marginal"): {"mu", "sigma2_g", "sigma2_e", "h2", "y_rotated"},
    ("mblup", "marginal"): {"mu", "sigma2_b", "sigma2_e", "h2", "sigma2_g_equiv", "y_rotated"},
    ("gblup", "latent"): {"mu", "sigma2_g", "sigma2_e", "h2", "z", "g", "y"},
    ("mblup", "latent"): {"mu", "sigma2_b", "sigma2_e", "h2", "sigma2_g_equiv", "z", "b", "g", "y"},
}


@pytest.mark.parametrize("form", ["marginal", "latent"])
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.structural
def test_model_structure_and_mock_fit(rng, mock_pymc_sample, name, form):
    G, W = _simulated("rank-deficient", n=30, m=60)
    y = _records_shuffled(G, rng)
    model = _model(name, y, G, W, form=form, prior="bglr")
    pm_model = model.model
    ids = y.dropna().index.astype(str).tolist()
    # Genotyped individuals without a record (NA, or absent from y) follow those with one.
    everyone = ids + [i for i in G.ids.astype(str) if i not in ids]
    assert len(everyone) == len(ids) + 3

    data = {v.name for v in pm_model.data_vars}
    assert set(pm_model.named_vars) - data == EXPECTED_VARS[name, form]
    assert set(model.parameter_names) <= set(pm_model.named_vars)
    if form == "marginal":  # every number of the graph is data: a compiled model serves other data sets
        assert model.reusable
        prior_names = {f"prior_{v}_{k}" for v, p in model.priors[1].items() for k in p.parameters}
        assert data == {"y_star", "one_star", "eigenvalues", "noise_a", "factor_c"} | prior_names
    else:
        assert not model.reusable and not data
        assert list(pm_model.coords["individual"]) == everyone
    dims = pm_model.named_vars_to_dims
    if form == "marginal":
        assert dims["y_rotated"] == ("component",)
        assert len(pm_model.coords["component"]) == len(ids)
    else:
        assert dims["g"] == ("individual",)
        assert dims["y"] == ("record",)
        if name == "mblup":
            assert dims["b"] == ("marker",)
            assert list(pm_model.coords["marker"]) == W.markers.astype(str).tolist()

    point = pm_model.initial_point()
    assert np.isfinite(pm_model.compile_logp()(point))
    assert np.isfinite(pm_model.compile_dlogp()(point)).all()

    fit = model.fit(chains=2, draws=6, tune=0, seed=1)
    assert isinstance(fit, bb.BLUPFit)
    assert (fit.method, fit.sampler) == ("nuts", "pymc")
    gv = fit.genetic_values
    assert list(gv.columns) == ["id", "mean", "sd", "pev", "reliability", "phenotyped"]
    assert gv["id"].tolist() == everyone
    assert gv["phenotyped"].tolist() == [True] * len(ids) + [False] * 3
    assert np.isfinite(gv[["mean", "sd"]].to_numpy()).all() and (gv["sd"] >= 0).all()
    assert list(fit.datatree["genetic_values"]["individual"].values) == everyone
    assert list(fit.summary().index) == model.parameter_names
    if name == "mblup":
        assert list(fit.marker_effects.columns) == ["marker", "mean", "sd"]
        assert fit.marker_effects["marker"].tolist() == W.markers.astype(str).tolist()
        assert list(fit.datatree["marker_effects"]["marker"].values) == W.markers.astype(str).tolist()
    else:
        assert fit.marker_effects is None


@pytest.mark.structural
def test_mock_fit__genetic_value_draws_are_thinned(rng, mock_pymc_sample):
    G, _ = _simulated("rank-deficient", n=30, m=60)
    model = bb.GBLUP(_trait(G.ids, rng), G)
    fit = model.fit(chains=2, draws=7, tune=0, seed=1, genetic_value_draws=True, thin=3)
    g = fit.datatree["genetic_value_draws"]["g"]
    assert g.dims == ("chain", "draw", "individual")
    assert g.shape == (2, 3, 30)  # draws 0, 3, 6 of each chain
    assert np.isfinite(g.values).all()


@pytest.mark.exact
def test_default_prior__variables_and_deterministic_mapping(rng):
    """prior="default": h2 and sigma2_p are free; sigma2_k = h2 sigma2_p / c and sigma2_e = (1 - h2) sigma2_p."""
    G, W = _simulated("full-rank")
    model = bb.MBLUP(_trait(G.ids, rng), W)
    pm_model = model.model
    data = {v.name for v in pm_model.data_vars}
    assert set(pm_model.named_vars) - data == EXPECTED_VARS["mblup", "marginal"] | {"sigma2_p"}
    assert {v.name for v in pm_model.free_RVs} == {"mu", "h2", "sigma2_p"}
    outs = pm_model.replace_rvs_by_values([pm_model[v] for v in ("sigma2_b", "sigma2_e", "h2", "sigma2_g_equiv")])
    f = pm_model.compile_fn(outs, inputs=pm_model.value_vars, on_unused_input="ignore")
    mu, sb2, se2 = _random_theta(rng, model.factor)
    out = f(_point(model, mu, sb2, se2))
    c = model.factor
    # Tolerance: a logit/exp round trip in float64.
    np.testing.assert_allclose(out, [sb2, se2, c * sb2 / (c * sb2 + se2), c * sb2], rtol=1e-12)


# --- priors -----------------------------------------------------------------------------------
# Log densities of the prior variables vs scipy: 1e-6 absolute. PyTensor stores a Python float that is
# exactly a float32 (2.5, 3.0, 1.75) as a float32 constant and evaluates terms of constants alone
# (log sigma, gammaln(alpha), alpha log beta) in float32: ~1e-7 off, a constant offset that leaves
# sampling alone. A relative error d in a parameter moves these log densities by ~d, so 1e-6 still
# pins the parameters the model really uses.
_LOGP_ABS = 1e-6


def _logp(pm_model, name: str, x: float) -> float:
    import pymc as pm

    return float(pm.logp(pm_model[name], x).eval())


@pytest.mark.exact
def test_bglr_prior__wheat_gblup(wheat, wheat_G, reference_dir):
    """InverseGamma(df0/2, S0/2), S0_g = var(y) R2 (df0+2) / mean non-zero eigenvalue, S0_e = var(y)(1-R2)(df0+2).

    Checked two ways: against the formula of bayesblup/priors.py computed here from the data, and
    against the S0 that BGLR itself chose for RKHS on the same data (tests/data/reference/README.md).
    The PyMC variables' log densities are compared with scipy's invgamma. Tolerance 1e-9 relative on
    S0: the CSV prints 15 significant digits; the rest is float64 rounding. Log densities: 1e-6
    absolute (see ``_LOGP_ABS``).
    """
    y = wheat.phenotypes["y1"]
    model = bb.GBLUP(y, wheat_G, prior="bglr")
    values = np.linalg.eigvalsh(wheat_G.matrix)
    mean_nonzero = values[values > 1e-10 * values[-1]].mean()
    vy = y.var(ddof=1)
    s0_g = vy * 0.5 * 7 / mean_nonzero
    s0_e = vy * 0.5 * 7
    bglr = pd.read_csv(reference_dir / "bglr_wheat_RKHS.csv").iloc[0]
    assert s0_g == pytest.approx(bglr["prior_S0_g"], rel=1e-9)
    assert s0_e == pytest.approx(bglr["prior_S0_e"], rel=1e-9)
    assert mean_nonzero == pytest.approx(bglr["MSx_or_mean_d"], rel=1e-9)

    label, priors = model.priors
    assert label == "bglr"
    assert priors["sigma2_g"].to_dict() == {
        "distribution": "InverseGamma",
        "parameters": {"alpha": 2.5, "beta": pytest.approx(s0_g / 2, rel=1e-9)},
    }
    for name, s0 in (("sigma2_g", s0_g), ("sigma2_e", s0_e)):
        for x in (0.1, 0.5, 2.0):
            expected = st.invgamma(2.5, scale=s0 / 2).logpdf(x)
            assert _logp(model.model, name, x) == pytest.approx(expected, rel=0, abs=_LOGP_ABS)


@pytest.mark.exact
def test_bglr_prior__wheat_mblup_uses_msx(wheat, wheat_W, reference_dir):
    """BRR: S0_b = var(y) R2 (df0+2) / MSx, MSx = sum of column variances of W (divisor n), as BGLR chose.

    Tolerance 1e-9 relative: BGLR's values printed to 15 digits (tests/data/reference/README.md).
    """
    model = bb.MBLUP(wheat.phenotypes["y1"], wheat_W, prior="bglr")
    Wv = wheat_W.values
    msx = Wv.var(axis=0, ddof=0).sum()
    bglr = pd.read_csv(reference_dir / "bglr_wheat_BRR.csv").iloc[0]
    assert msx == pytest.approx(bglr["MSx_or_mean_d"], rel=1e-9)
    assert model.msx == pytest.approx(msx, rel=1e-12)
    _, priors = model.priors
    assert 2 * priors["sigma2_b"].parameters["beta"] == pytest.approx(bglr["prior_S0_g"], rel=1e-9)
    assert 2 * priors["sigma2_e"].parameters["beta"] == pytest.approx(bglr["prior_S0_e"], rel=1e-9)
    x = 4e-4
    expected = st.invgamma(2.5, scale=bglr["prior_S0_g"] / 2).logpdf(x)
    assert _logp(model.model, "sigma2_b", x) == pytest.approx(expected, rel=0, abs=_LOGP_ABS)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.exact
def test_custom_prior_dict(rng, name):
    G, W = _simulated("full-rank")
    kv = bb.GBLUP.kernel_variance if name == "gblup" else bb.MBLUP.kernel_variance
    prior = {
        kv: bb.Prior("HalfNormal", sigma=2.0),
        "sigma2_e": bb.Prior("Exponential", lam=0.5),
        "mu": bb.Prior("Normal", mu=1.0, sigma=3.0),
    }
    model = _model(name, _trait(G.ids, rng), G, W, prior=prior)
    pm_model = model.model
    assert model.prior_label == "custom"
    assert {v.name for v in pm_model.free_RVs} == {"mu", kv, "sigma2_e"}
    assert "h2" in pm_model.named_vars
    assert _logp(pm_model, kv, 0.7) == pytest.approx(st.halfnorm(scale=2.0).logpdf(0.7), rel=0, abs=_LOGP_ABS)
    assert _logp(pm_model, "sigma2_e", 0.7) == pytest.approx(st.expon(scale=2.0).logpdf(0.7), rel=0, abs=_LOGP_ABS)
    assert _logp(pm_model, "mu", 0.3) == pytest.approx(st.norm(1.0, 3.0).logpdf(0.3), rel=0, abs=_LOGP_ABS)
    assert model.priors[1][kv] == prior[kv]


@pytest.mark.exact
def test_default_prior_mu_is_flat_around_the_data(rng):
    G, _ = _simulated("full-rank")
    y = _trait(G.ids, rng)
    _, priors = bb.GBLUP(y, G).priors
    assert priors["mu"].to_dict()["parameters"] == pytest.approx({"mu": y.mean(), "sigma": 10 * y.std(ddof=1)})
    assert priors["sigma2_p"].to_dict()["parameters"] == pytest.approx({"mu": np.log(y.var(ddof=1)), "sigma": 1.0})


HN = bb.Prior("HalfNormal", sigma=1.0)
BAD_PRIORS = [
    ("flat", r"prior must be one of default, bglr, or a dict of Prior objects; got 'flat'"),
    (0.5, r"prior must be one of default, bglr, or a dict of Prior objects; got float"),
    ({"sigma2_g": HN, "sigma2_e": HN, "sigma2_u": HN}, r"unknown variable\(s\) \['sigma2_u'\]; allowed"),
    ({"sigma2_b": HN, "sigma2_e": HN}, r"unknown variable\(s\) \['sigma2_b'\]"),  # M-BLUP's name on G-BLUP
    ({"sigma2_g": HN}, r"give a Prior for \['sigma2_e'\] too"),
    ({"sigma2_g": "HalfNormal", "sigma2_e": HN}, r"prior for sigma2_g: expected bayesblup.Prior\(...\), got str"),
    ({"sigma2_g": bb.Prior("Halfnormal"), "sigma2_e": HN}, r"'Halfnormal' is not a PyMC distribution"),
    ({"sigma2_g": bb.Prior("StudentT", sigma=1.0), "sigma2_e": HN}, r"prior for sigma2_g: StudentT\(.*\) is invalid"),
    ({"sigma2_g": HN, "sigma2_e": bb.Prior("Gamma", alpha=2.0)}, r"prior for sigma2_e: Gamma\(.*\) is invalid"),
]


@pytest.mark.parametrize(("prior", "match"), BAD_PRIORS)
@pytest.mark.structural
def test_bad_prior__input_error(rng, prior, match):
    G, _ = _simulated("full-rank", n=20, m=40)
    with pytest.raises(bb.InputError, match=match):
        bb.GBLUP(_trait(G.ids, rng), G, prior=prior).model  # noqa: B018  (priors resolve on build)


# --- errors -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    G, W = _simulated("full-rank", n=20, m=40)
    y = _trait(G.ids, np.random.default_rng(5))
    return y, G, W


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.structural
def test_error__bad_form(small, name):
    y, G, W = small
    with pytest.raises(bb.InputError, match=r"form must be one of marginal, latent; got 'dense'"):
        _model(name, y, G, W, form="dense")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "vi"}, r"method must be one of nuts, map, quadrature; got 'vi'"),
        ({"chains": 0}, r"chains must be at least 1, got 0"),
        ({"draws": 0}, r"draws must be at least 1, got 0"),
        ({"tune": -1}, r"tune must be >= 0, got -1"),
    ],
)
@pytest.mark.structural
def test_error__bad_fit_settings(small, kwargs, match):
    y, G, _ = small
    with pytest.raises(bb.InputError, match=match):
        bb.GBLUP(y, G).fit(**kwargs)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.structural
def test_error__phenotyped_ids_without_genotype_are_named(small, name):
    y, G, W = small
    extra = pd.Series([1.0, 2.0, np.nan], index=["ghost_a", "ghost_b", "ghost_na"], name="t")
    with pytest.raises(bb.InputError, match=r"t: 2 phenotyped individuals have no genotype: ghost_a, ghost_b\."):
        _model(name, pd.concat([y, extra]), G, W)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.structural
def test_error__duplicate_records(small, name):
    y, G, W = small
    doubled = pd.concat([y, y.iloc[[4]]])
    with pytest.raises(bb.InputError, match=rf"individual\(s\) {y.index[4]} have several records"):
        _model(name, doubled, G, W)


@pytest.mark.structural
def test_error__relationship_missing_ids_named():
    """Records passed as matched Records for other IDs: G's index lookup names the absent IDs."""
    G, _ = _simulated("full-rank", n=20, m=40)
    records = bb.match_records(pd.Series([1.0, 2.0, 3.0], index=["x1", "x2", "x3"], name="t"), ["x1", "x2", "x3"])
    with pytest.raises(bb.InputError, match=r"3 IDs are not in the relationship matrix: x1, x2, x3"):
        bb.GBLUP(records, G)


@pytest.mark.structural
def test_error__mblup_needs_a_genotype_matrix(small):
    y, G, _ = small
    with pytest.raises(bb.InputError, match=r"MBLUP needs W as a GenotypeMatrix"):
        bb.MBLUP(y, G)


@pytest.mark.parametrize("rtol", [0.0, 1.0, -1e-10])
@pytest.mark.structural
def test_error__eigen_rtol_out_of_range(small, rtol):
    y, G, _ = small
    with pytest.raises(bb.InputError, match=re.escape(f"eigen_rtol must lie in (0, 1), got {rtol}")):
        bb.GBLUP(y, G, eigen_rtol=rtol)


@pytest.mark.structural
def test_error__not_positive_semi_definite():
    Q = scipy.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    bad = Q @ np.diag([2.0, 1.0, 0.5, -0.3]) @ Q.T
    ids = ["a", "b", "c", "d"]
    with pytest.raises(bb.InputError, match=r"G is not positive semi-definite: its smallest eigenvalue is -0\.3"):
        bb.eigendecompose(bad)
    model = bb.GBLUP(pd.Series([1.0, 2.0, 0.5, 1.5], index=ids), bb.Relationship(bad, ids, scaling="user"))
    with pytest.raises(bb.InputError, match=r"not positive semi-definite"):
        model.model  # noqa: B018  (the eigendecomposition runs on build)


@pytest.mark.structural
def test_rank_deficiency_warning__centred_G_once(rng):
    G, _ = _simulated("rank-deficient", n=40)
    model = bb.GBLUP(_trait(G.ids, rng), G)
    with pytest.warns(bb.RankDeficiencyWarning, match=r"G has rank 39 of 40: 1 eigenvalue\(s\) below tol"):
        sp = model.spectral
    assert (sp.rank, sp.n_clipped) == (39, 1)
    assert sp.values[0] == 0.0 and sp.min_raw != 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", bb.RankDeficiencyWarning)
        model.model  # noqa: B018  (cached: no second warning)


@pytest.mark.structural
def test_rank_deficiency_warning__not_for_full_rank_G(rng):
    G, W = _simulated("full-rank")
    with warnings.catch_warnings():
        warnings.simplefilter("error", bb.RankDeficiencyWarning)
        assert bb.GBLUP(_trait(G.ids, rng), G).spectral.n_clipped == 0
        assert bb.MBLUP(_trait(G.ids, rng), W).spectral.n_clipped == 0


@pytest.mark.structural
def test_prior__raise_on_misspelled_parameter(rng):
    y = pd.Series(rng.normal(size=20), index=[f"i{i}" for i in range(20)], name="y")
    G = bb.Relationship(matrix=np.eye(20), ids=y.index, scaling="user")
    prior = {"sigma2_g": bb.Prior("HalfNormal", sgima=0.1), "sigma2_e": bb.Prior("HalfNormal", sigma=1.0)}
    with pytest.raises(bb.InputError, match=r"HalfNormal has no parameter 'sgima'; its parameters are sigma, tau"):
        bb.GBLUP(y, G, prior=prior).build()


@pytest.mark.structural
def test_prior__raise_on_vector_parameter(rng):
    y = pd.Series(rng.normal(size=20), index=[f"i{i}" for i in range(20)], name="y")
    G = bb.Relationship(matrix=np.eye(20), ids=y.index, scaling="user")
    prior = {"sigma2_g": bb.Prior("HalfNormal", sigma=[1.0, 2.0]), "sigma2_e": bb.Prior("HalfNormal", sigma=1.0)}
    with pytest.raises(bb.InputError, match=r"parameter sigma must be one number"):
        bb.GBLUP(y, G, prior=prior).build()
