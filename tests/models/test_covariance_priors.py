"""Priors on covariance matrices (bayesblup.models.covariance): LKJ, the inverse Wishart, BGLR's defaults.

Exact: the inverse Wishart's log density through its Bartlett variables is scipy's ``invwishart.logpdf``
plus the log-Jacobian of the map to ``vech(Sigma)`` (1e-7 absolute: PyTensor constant-folds ``gammaln`` to
about 1e-8); BGLR's ``(df0, S0)`` against the formulas of ``docs/multitrait-priors.md``, with R's pairwise
covariance checked against pandas' (an independent implementation), 1e-12 relative.

Recovery: seeded prior draws against exact marginals (one-sample KS) and against scipy's
``invwishart.rvs`` (two-sample KS). Every KS test rejects at p < 1e-3, its false-alarm rate when the
distributions agree; there are 35 of them below, so a correct implementation fails one with probability
below 3.5% for a random seed; these fixed seeds pass, with the same draws every run. Means
against ``scale / (df - t - 1)`` within 4.5 exact standard errors (false alarm 7e-6 per entry).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.stats as st
from pytensor.gradient import jacobian

from bayesblup.errors import InputError
from bayesblup.models.covariance import (
    bglr_multitrait_priors,
    bglr_rkhs_msx,
    inverse_wishart,
    lkj_covariance,
)

ALPHA = 1e-3  # each KS test's false-alarm rate
N_DRAWS = 4000


def scale_matrix(t: int) -> np.ndarray:
    """A non-diagonal SPD scale with unequal variances (BGLR-like: correlated traits)."""
    full = np.array(
        [
            [2.0, 0.5, 0.3, 0.0],
            [0.5, 1.0, 0.2, 0.1],
            [0.3, 0.2, 1.5, -0.4],
            [0.0, 0.1, -0.4, 1.0],
        ]
    )
    return full[:t, :t] * 5.0  # BGLR's S0 = mode (df0 + t + 1): a few times the data's covariance


CASES = [(2, 3), (2, 5), (4, 5), (4, 7)]  # (t, df): df = t + 1 (BGLR's genetic default, no mean) and t + 3
_draws: dict = {}


def iw_draws(t: int, df: float, scale: np.ndarray, seed: int) -> np.ndarray:
    key = (t, df, scale.tobytes(), seed)
    if key not in _draws:
        with pm.Model():
            sigma = inverse_wishart("Sigma", df, scale)
        _draws[key] = pm.draw(sigma, draws=N_DRAWS, random_seed=seed)
    return _draws[key]


def at_point(model: pm.Model, outputs: list, point: dict) -> list:
    """The values of ``outputs`` at a point of the (transformed) value variables."""
    graphs = model.replace_rvs_by_values(outputs)
    f = pytensor.function(model.value_vars, graphs, on_unused_input="ignore")
    return f(**point)


def corr(draws: np.ndarray, i: int, j: int) -> np.ndarray:
    return draws[:, i, j] / np.sqrt(draws[:, i, i] * draws[:, j, j])


# --- the inverse Wishart ------------------------------------------------------------------------


@pytest.mark.exact
@pytest.mark.parametrize(("t", "df"), [(2, 3), (4, 7)])
def test_inverse_wishart_log_density_is_scipys_through_the_change_of_variables(t, df):
    """log p(u) = log IW(Sigma(u)) + log |d vech(Sigma) / du| over the unconstrained Bartlett variables u."""
    scale = scale_matrix(t)
    with pm.Model() as model:
        inverse_wishart("Sigma", df, scale)
    sigma = model.replace_rvs_by_values([model["Sigma"]])[0]
    vech = sigma[np.tril_indices(t)]
    values = model.value_vars
    assert [v.name for v in values] == ["Sigma_bartlett_chi2_log__", "Sigma_bartlett_z"]
    jac = pt.concatenate([jacobian(vech, v).reshape((vech.shape[0], -1)) for v in values], axis=1)
    f = pytensor.function(values, [sigma, pt.linalg.slogdet(jac)[1], model.logp()])
    rng = np.random.default_rng(11)
    for _ in range(4):
        point = [rng.normal(size=v.type.shape) for v in values]
        value, log_jac, logp = f(*point)
        np.testing.assert_allclose(value, value.T, rtol=0, atol=1e-12 * np.abs(value).max())
        expected = st.invwishart(df, scale).logpdf(value) + log_jac
        np.testing.assert_allclose(logp, expected, rtol=0, atol=1e-7)


@pytest.mark.recovery
@pytest.mark.parametrize(("t", "df"), CASES)
def test_inverse_wishart_draws_match_scipy(t, df):
    """Diagonals against their exact InverseGamma((df - t + 1)/2, s_ii/2) marginals; a diagonal and the
    correlations against scipy's draws (two-sample KS); at df = t + 1 the mean does not exist, so the
    distributions (medians, quantiles) are what is compared."""
    scale = scale_matrix(t)
    draws = iw_draws(t, df, scale, seed=1)
    ref = st.invwishart(df, scale).rvs(N_DRAWS, random_state=2)
    assert draws.shape == (N_DRAWS, t, t)
    for i in range(t):
        exact = st.invgamma((df - t + 1) / 2, scale=scale[i, i] / 2)
        assert st.kstest(draws[:, i, i], exact.cdf).pvalue > ALPHA, i
    assert st.ks_2samp(draws[:, 0, 0], ref[:, 0, 0]).pvalue > ALPHA
    for i, j in {(0, 1), (0, t - 1), (t - 2, t - 1)}:
        assert st.ks_2samp(corr(draws, i, j), corr(ref, i, j)).pvalue > ALPHA, (i, j)
    # medians of the diagonal within 10% of the exact ones (4 sd: the sample median's sd is 2.3% at df = t + 1)
    medians = np.median(draws[:, np.arange(t), np.arange(t)], axis=0)
    exact_medians = st.invgamma((df - t + 1) / 2, scale=np.diag(scale) / 2).median()
    np.testing.assert_allclose(medians, exact_medians, rtol=0.1)


@pytest.mark.recovery
@pytest.mark.parametrize("t", [2, 4])
@pytest.mark.parametrize("offset", [1, 3])
def test_inverse_wishart_correlations_under_an_identity_scale_have_their_exact_marginal(t, offset):
    """Under IW(df, I) each correlation r has density proportional to (1 - r^2)^((df - t - 1)/2), so
    (r + 1)/2 ~ Beta((df - t + 1)/2, (df - t + 1)/2): uniform at df = t + 1 (Barnard, McCulloch and Meng
    2000, Statistica Sinica 10, 1281). A diagonal scale gives the same correlations."""
    df = t + offset
    draws = iw_draws(t, df, np.diag(np.arange(1.0, t + 1)), seed=3)
    a = (df - t + 1) / 2
    for i, j in {(0, 1), (0, t - 1)}:
        assert st.kstest((corr(draws, i, j) + 1) / 2, st.beta(a, a).cdf).pvalue > ALPHA, (i, j)


@pytest.mark.recovery
@pytest.mark.parametrize("t", [2, 4])
def test_inverse_wishart_mean_is_scale_over_df_minus_t_minus_1(t):
    """At df = t + 6 the variance exists: Var(Sigma_ij) = ((d + 1) s_ij^2 + (d - 1) s_ii s_jj) / (d (d - 1)^2
    (d - 3)) with d = df - t; the sample mean of N draws is within 4.5 of its standard errors. (At df = t + 3
    the mean exists but the variance does not: no honest tolerance, so the KS tests above stand for it.)"""
    df = t + 6
    scale = scale_matrix(t)
    draws = iw_draws(t, df, scale, seed=4)
    d = df - t
    mean = scale / (d - 1)
    var = ((d + 1) * scale**2 + (d - 1) * np.outer(np.diag(scale), np.diag(scale))) / (d * (d - 1) ** 2 * (d - 3))
    z = (draws.mean(axis=0) - mean) / np.sqrt(var / N_DRAWS)
    assert np.all(np.abs(z) < 4.5), z
    # scipy's own draws agree with the same formula (a check of the formula, not of the code)
    ref = st.invwishart(df, scale).rvs(N_DRAWS, random_state=5)
    assert np.all(np.abs((ref.mean(axis=0) - mean) / np.sqrt(var / N_DRAWS)) < 4.5)


@pytest.mark.recovery
def test_inverse_wishart_samples_with_nuts():
    """BGLR's genetic default (t = 4, df = t + 1: heavy tails, no mean) is easy for NUTS on the Bartlett
    variables: no divergence, R-hat under 1.01, and the chi-squares' and normals' means within 4 Monte Carlo
    standard errors of df - i + 1 and 0."""
    t, df = 4, 5.0
    with pm.Model():
        inverse_wishart("Sigma", df, scale_matrix(t))
        idata = pm.sample(
            1000, tune=1000, chains=2, cores=1, random_seed=7, progressbar=False, compute_convergence_checks=False
        )
    import arviz as az

    assert int(idata.sample_stats.diverging.sum()) == 0
    summary = az.summary(idata, var_names=["Sigma_bartlett_chi2", "Sigma_bartlett_z"])
    assert summary["r_hat"].max() < 1.01
    expected = np.concatenate([df - np.arange(t), np.zeros(t * (t - 1) // 2)])
    assert np.all(np.abs(summary["mean"].to_numpy() - expected) < 4 * summary["mcse_mean"].to_numpy()), summary


@pytest.mark.structural
def test_inverse_wishart_names_dims_and_errors():
    with pm.Model(coords={"trait": list("abc"), "trait_bis": list("abc")}) as model:
        sigma = inverse_wishart("Sigma_e", 4.0, np.eye(3), dims=("trait", "trait_bis"))
    assert {v.name for v in model.free_RVs} == {"Sigma_e_bartlett_chi2", "Sigma_e_bartlett_z"}
    assert [v.name for v in model.deterministics] == ["Sigma_e"]
    assert model.named_vars_to_dims["Sigma_e"] == ("trait", "trait_bis")
    assert sigma.type.shape == (3, 3)
    assert model["Sigma_e_bartlett_z"].type.shape == (3,)
    with pm.Model():
        with pytest.raises(InputError, match="df > t - 1 = 2"):
            inverse_wishart("S", 2.0, np.eye(3))
        with pytest.raises(InputError, match="symmetric positive definite"):
            inverse_wishart("S", 5.0, np.array([[1.0, 2.0], [2.0, 1.0]]))
        with pytest.raises(InputError, match="square"):
            inverse_wishart("S", 5.0, np.ones((2, 3)))
        with pytest.raises(InputError, match="at least 2 traits"):
            inverse_wishart("S", 5.0, np.eye(1))


@pytest.mark.exact
def test_inverse_wishart_takes_a_tensor_scale():
    """A scale given as a graph (e.g. pm.Data) builds the same Sigma from the same Bartlett variables."""
    scale = scale_matrix(3)
    with pm.Model() as m1:
        inverse_wishart("S", 6.0, scale)
    with pm.Model() as m2:
        inverse_wishart("S", 6.0, pm.Data("S0", scale))
    point = {"S_bartlett_chi2_log__": np.array([0.3, -0.2, 1.1]), "S_bartlett_z": np.array([0.5, -1.0, 0.2])}
    s1, s2 = (at_point(m, [m["S"]], point)[0] for m in (m1, m2))
    assert s2.shape == (3, 3)
    np.testing.assert_allclose(s1, s2, rtol=1e-12)
    np.testing.assert_allclose(m1.compile_logp()(point), m2.compile_logp()(point), rtol=1e-12)


# --- LKJ ----------------------------------------------------------------------------------------


@pytest.mark.structural
def test_lkj_covariance_names_dims_and_errors():
    with pm.Model(coords={"trait": list("abcd"), "trait_bis": list("abcd")}) as model:
        sd = pm.HalfNormal("sd_g", 1.0, dims="trait")
        sigma = lkj_covariance("Sigma_g", sd, eta=2.0, dims=("trait", "trait_bis"))
    assert {v.name for v in model.free_RVs} == {"sd_g", "Sigma_g_corr_chol"}
    assert {v.name for v in model.deterministics} == {"Sigma_g", "Sigma_g_corr"}
    assert model.named_vars_to_dims["Sigma_g_corr"] == ("trait", "trait_bis")
    assert sigma.type.shape == (4, 4)
    with pm.Model():
        with pytest.raises(InputError, match="eta"):
            lkj_covariance("S", np.ones(3), eta=0.0)
        with pytest.raises(InputError, match="vector"):
            lkj_covariance("S", np.eye(3))
        with pytest.raises(InputError, match="at least 2 traits"):
            lkj_covariance("S", np.ones(1))


@pytest.mark.exact
def test_lkj_covariance_is_diag_sd_R_diag_sd():
    with pm.Model() as model:
        sd = pm.HalfNormal("sd", 1.0, shape=3)
        lkj_covariance("S", sd)
    rng = np.random.default_rng(2)
    point = {v.name: rng.normal(size=v.type.shape) for v in model.value_vars}
    sigma, R, s = at_point(model, [model["S"], model["S_corr"], model["sd"]], point)
    np.testing.assert_allclose(np.diag(R), 1.0, rtol=1e-12)
    assert np.all(np.linalg.eigvalsh(R) > 0)
    np.testing.assert_allclose(sigma, np.diag(s) @ R @ np.diag(s), rtol=1e-12)
    np.testing.assert_allclose(np.diag(sigma), s**2, rtol=1e-12)


@pytest.mark.recovery
@pytest.mark.parametrize(("t", "eta"), [(2, 1.0), (4, 1.0), (4, 3.0)])
def test_lkj_correlations_have_their_exact_marginal(t, eta):
    """Under LKJ(eta) in dimension t, (r + 1)/2 ~ Beta(eta - 1 + t/2, eta - 1 + t/2) (Lewandowski,
    Kurowicka and Joe 2009): KS at p < 1e-3 on two pairs."""
    with pm.Model() as model:
        lkj_covariance("S", np.full(t, 2.0), eta=eta)
    draws = pm.draw(model["S_corr"], draws=N_DRAWS, random_seed=6)
    a = eta - 1 + t / 2
    for i, j in {(0, 1), (0, t - 1)}:
        assert st.kstest((draws[:, i, j] + 1) / 2, st.beta(a, a).cdf).pvalue > ALPHA, (i, j)


# --- BGLR's defaults ----------------------------------------------------------------------------


def r_pairwise_cov(Y: np.ndarray) -> np.ndarray:
    """R's cov(Y, use = "pairwise.complete.obs"), NA -> 0, through pandas (independent of the package)."""
    return pd.DataFrame(Y).cov(min_periods=2).fillna(0.0).to_numpy()


@pytest.mark.exact
def test_bglr_priors_on_wheat_are_the_reference_readmes(wheat, wheat_G):
    """The reference README of the multi-trait BGLR runs (``bglr_wheat_multitrait*``, BGLR 1.1.5, four traits,
    one RKHS term on G; not yet in tests/data/reference): genetic df0 = t + 1 = 5,
    S0 = (R2/nLT) Sy/MSx (df0 + t + 1); residual df0 = 5, S0 = (1 - R2) Sy (df0 + t + 1). MSx is
    tr(G)/n = (n - 1)/n for this centred G, not its mean non-zero eigenvalue 1 (single-trait BGLR's)."""
    Y = wheat.phenotypes[["y1", "y2", "y4", "y5"]].to_numpy()
    n, t = Y.shape
    G = wheat_G.matrix
    msx = bglr_rkhs_msx(G)
    np.testing.assert_allclose(msx, (n - 1) / n, rtol=1e-12)
    np.testing.assert_allclose(msx, np.trace(G) / n - G.sum() / n**2, rtol=1e-12)
    priors = bglr_multitrait_priors(Y, msx)
    Sy = np.cov(Y, rowvar=False, ddof=1)
    df0_g, S0_g = priors["genetic"]
    df0_e, S0_e = priors["residual"]
    assert (df0_g, df0_e) == (5.0, 5.0)
    np.testing.assert_allclose(S0_g, 0.5 * Sy / msx * 10, rtol=1e-12)
    np.testing.assert_allclose(S0_e, 0.5 * Sy * 10, rtol=1e-12)
    np.testing.assert_allclose(np.diag(S0_e), 5.0, rtol=1e-12)  # wheat's traits are standardised
    # the prior modes are (R2/nLT) Sy/MSx and (1 - R2) Sy
    np.testing.assert_allclose(S0_g / (df0_g + t + 1), 0.5 * Sy / msx, rtol=1e-12)
    np.testing.assert_allclose(S0_e / (df0_e + t + 1), 0.5 * Sy, rtol=1e-12)
    assert bglr_multitrait_priors(Y, msx, as_sampled=True)["genetic"][0] == 9.0  # df0 + t, BGLR's Gibbs update


@pytest.mark.exact
def test_bglr_priors_with_missing_records_use_rs_pairwise_covariance():
    rng = np.random.default_rng(8)
    n, t = 60, 3
    Y = rng.multivariate_normal([1.0, -2.0, 0.5], [[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]], size=n)
    Y[rng.random((n, t)) < 0.2] = np.nan
    priors = bglr_multitrait_priors(Y, msx=0.8, r2=0.3, n_terms=2)
    Sy = r_pairwise_cov(Y)
    df0_g, S0_g = priors["genetic"]
    df0_e, S0_e = priors["residual"]
    assert (df0_g, df0_e) == (4.0, 5.0)  # t + 1 and 5 whatever t
    np.testing.assert_allclose(S0_g, (0.3 / 2) * Sy / 0.8 * (4 + 3 + 1), rtol=1e-12)
    np.testing.assert_allclose(S0_e, 0.7 * Sy * (5 + 3 + 1), rtol=1e-12)
    # by hand: the (0, 1) entry from the rows with both, their own means, divisor n_01 - 1
    both = ~np.isnan(Y[:, 0]) & ~np.isnan(Y[:, 1])
    np.testing.assert_allclose(Sy[0, 1], np.cov(Y[both, 0], Y[both, 1])[0, 1], rtol=1e-12)
    # a pair observed together fewer than twice: R's NA, which BGLR sets to 0
    Y2 = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, 3.0], [4.0, 5.0], [np.nan, 1.0]])
    S0 = bglr_multitrait_priors(Y2, msx=1.0)["residual"][1]
    np.testing.assert_allclose(S0, 0.5 * 8 * np.diag([np.var([1, 2, 4], ddof=1), np.var([3, 5, 1], ddof=1)]))


@pytest.mark.exact
def test_bglr_rkhs_msx_drops_null_and_negative_directions():
    """MSx = sum(X^2)/n - sum(colMeans(X)^2) with X = Gamma Lambda^1/2 over the eigenvalues above 1e-10: for
    a non-centred PSD K it is tr(K)/n - 1'K1/n^2; a negative eigenvalue is dropped, as BGLR does."""
    rng = np.random.default_rng(9)
    Z = rng.normal(size=(10, 4)) + 1.0
    K = Z @ Z.T / 4
    n = 10
    np.testing.assert_allclose(bglr_rkhs_msx(K), np.trace(K) / n - K.sum() / n**2, rtol=1e-10)
    values, vectors = np.linalg.eigh(K)
    v = vectors[:, 0]
    K_neg = K - 0.5 * np.outer(v, v)  # one eigenvalue at -0.5 (K's smallest is ~0: rank 4)
    K_plus = K - values[0] * np.outer(v, v)
    np.testing.assert_allclose(bglr_rkhs_msx(K_neg), np.trace(K_plus) / n - K_plus.sum() / n**2, rtol=1e-10)


@pytest.mark.structural
def test_bglr_priors_refuse_bad_input():
    Y = np.ones((5, 2)) + np.arange(10).reshape(5, 2) ** 2
    with pytest.raises(InputError, match="n x t"):
        bglr_multitrait_priors(Y[:, 0], msx=1.0)
    with pytest.raises(InputError, match="t >= 2"):
        bglr_multitrait_priors(Y[:, :1], msx=1.0)
    with pytest.raises(InputError, match="msx"):
        bglr_multitrait_priors(Y, msx=0.0)
    with pytest.raises(InputError, match="r2"):
        bglr_multitrait_priors(Y, msx=1.0, r2=1.0)
    with pytest.raises(InputError, match="n_terms"):
        bglr_multitrait_priors(Y, msx=1.0, n_terms=0)
    with pytest.raises(InputError, match="infinite"):
        bglr_multitrait_priors(np.where(Y > 50, np.inf, Y), msx=1.0)
    with pytest.raises(InputError, match="square"):
        bglr_rkhs_msx(np.ones((2, 3)))
