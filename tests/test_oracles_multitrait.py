"""Self-tests of the multi-trait oracles (tests/oracles_multitrait.py) and of ``testing.simulate_multitrait``.

The oracles are checked against formulas built another way (element by element, in another vec ordering,
through scipy's multivariate normal, per-trait single-trait equations, the marker model) and against
``bayesblup.reml`` for one trait. vec is trait-major throughout: ``vec(Y)[k n + i] = Y[i, k]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oracles_multitrait import (
    dense_logp,
    henderson,
    marker_effects,
    observed,
    reml,
    restricted_loglik,
    unvec,
    vec,
)
from scipy import stats
from scipy.linalg import null_space

import bayesblup as bb
from bayesblup.testing import MultitraitTruth, simulate_genotypes, simulate_multitrait

SIGMA_G = np.array([[1.0, 0.6, -0.3], [0.6, 2.0, 0.4], [-0.3, 0.4, 0.8]])
SIGMA_E = np.array([[1.5, 0.5, 0.2], [0.5, 1.0, -0.3], [0.2, -0.3, 2.0]])


def _relationship(n: int, m: int, seed: int) -> bb.Relationship:
    """G = WW'/m (standardised, so centred: rank n - 1 when m >= n, m - 1 or so otherwise)."""
    calls, _ = simulate_genotypes(n, m, allele_freq=np.full(m, 0.5), seed=seed)
    return bb.genomic_relationship(bb.quality_control(calls)[0])


def _pd(n: int, seed: int, ridge: float = 0.1) -> np.ndarray:
    """A positive definite relationship matrix (G blended with I, as in G-BLUP practice)."""
    return (1 - ridge) * _relationship(n, 3 * n, seed).matrix + ridge * np.eye(n)


def _records(n: int, t: int, seed: int, share: float = 0.25, empty: int = 1) -> np.ndarray:
    """Y with a share of NaN per trait and ``empty`` individuals (the last ones) with no record at all."""
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(n, t)) + np.arange(t)
    Y[rng.random((n, t)) < share] = np.nan
    Y[n - empty :] = np.nan
    return Y


# ------------------------------------------------------------------------------------------- conventions


@pytest.mark.exact
def test_vec_is_trait_major_and_matches_the_kronecker_order():
    rng = np.random.default_rng(0)
    n, t = 5, 3
    Y, G = rng.normal(size=(n, t)), _pd(n, 1)
    v = vec(Y)
    K = np.kron(SIGMA_G, G)
    for i in range(n):
        for k in range(t):
            assert v[k * n + i] == Y[i, k]
            for j in range(n):
                for m in range(t):
                    assert K[k * n + i, m * n + j] == SIGMA_G[k, m] * G[i, j]
    np.testing.assert_array_equal(unvec(v, n, t), Y)


# -------------------------------------------------------------------------------------------- dense_logp


def _hand_built(Y, G, mu, Sg, Se, X, B):
    """Mean and covariance of the observed entries, element by element, in INDIVIDUAL-major order."""
    n, t = Y.shape
    cells = [(i, k) for i in range(n) for k in range(t) if not np.isnan(Y[i, k])]
    y = np.array([Y[i, k] for i, k in cells])
    mean = np.array([mu[k] + X[i] @ B[:, k] for i, k in cells])
    V = np.array([[Sg[k, m] * G[i, j] + Se[k, m] * (i == j) for j, m in cells] for i, k in cells])
    return y, mean, V


@pytest.mark.exact
def test_dense_logp_two_traits_with_missing_entries_is_scipy_mvn_of_a_hand_built_covariance():
    """Rounding: both sides factor the same (permuted) 40-odd x 40-odd matrix; rtol 1e-11."""
    n, t = 24, 2
    rng = np.random.default_rng(3)
    G, Y = _pd(n, 2), _records(n, t, seed=4)
    X, B = rng.normal(size=(n, 2)), rng.normal(size=(2, t))
    mu, Sg, Se = np.array([1.0, -2.0]), SIGMA_G[:2, :2], SIGMA_E[:2, :2]
    y, mean, V = _hand_built(Y, G, mu, Sg, Se, X, B)
    assert 0 < y.size < n * t
    expected = stats.multivariate_normal(mean, V).logpdf(y)
    assert dense_logp(Y, G, mu, Sg, Se, X, B) == pytest.approx(expected, rel=1e-11)
    y0, mean0, V0 = _hand_built(Y, G, mu, Sg, Se, X, 0 * B)  # without fixed effects
    assert dense_logp(Y, G, mu, Sg, Se) == pytest.approx(stats.multivariate_normal(mean0, V0).logpdf(y0), rel=1e-11)


@pytest.mark.exact
def test_dense_logp_one_trait_is_the_single_trait_mvn():
    n = 30
    G = _relationship(n, 50, seed=5).matrix  # singular: V = s2g G + s2e I is still positive definite
    y = _records(n, 1, seed=6)[:, 0]
    o = ~np.isnan(y)
    V = 0.7 * G[np.ix_(o, o)] + 1.3 * np.eye(o.sum())
    expected = stats.multivariate_normal(np.full(o.sum(), 2.0), V).logpdf(y[o])
    assert dense_logp(y, G, 2.0, 0.7, 1.3) == pytest.approx(expected, rel=1e-12)
    assert dense_logp(y[:, None], G, [2.0], [[0.7]], [[1.3]]) == pytest.approx(expected, rel=1e-12)
    assert dense_logp(np.full((n, 2), np.nan), G, [0, 0], SIGMA_G[:2, :2], SIGMA_E[:2, :2]) == 0.0


# --------------------------------------------------------------------------------------------- Henderson


def _setting(n=22, t=3, n_new=4, seed=7):
    """Y with missing entries and two unrecorded individuals; G positive definite over old + new."""
    rng = np.random.default_rng(seed)
    G_all = _pd(n + n_new, seed)
    Y = _records(n, t, seed=seed + 1, empty=2)
    X, B = rng.normal(size=(n, 2)), rng.normal(size=(2, t))
    return G_all, Y, X, B, np.array([0.5, 1.0, -1.0])[:t]


@pytest.mark.exact
def test_henderson_gls_and_mme_routes_agree():
    """Kriging (V^-1 on the N observed entries) against the MME (coefficient matrix on all n t): two
    different linear systems; with cond(G) ~ 10 they agree to ~1e-15 (checked: 1e-10 of each quantity's scale)."""
    n, t = 22, 3
    G_all, Y, X, B, mu = _setting(n, t)
    G, G_cross, G_new_diag = G_all[:n, :n], G_all[n:, :n], np.diag(G_all)[n:]
    args = (Y, G, mu, SIGMA_G, SIGMA_E, X, B, G_cross, G_new_diag)
    gls, mme = henderson(*args, method="gls"), henderson(*args, method="mme")
    assert gls.mean.shape == gls.var.shape == (n, t) and gls.new_mean.shape == gls.new_var.shape == (4, t)
    assert gls.cov.shape == (n * t, n * t)
    for a, b in zip(gls, mme, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(a).max())
    assert np.all(gls.var > 0) and np.all(gls.var < np.diag(SIGMA_G) * np.diag(G)[:, None])  # records inform
    # the unrecorded individuals still move: through G and Sigma_g
    assert np.all(np.abs(gls.mean[-2:]) > 1e-3)


@pytest.mark.exact
def test_henderson_new_individuals_are_unrecorded_individuals_of_a_larger_G():
    """Predicting from G_cross equals adding the new individuals to G with no records; the old ones keep
    their posterior (an unrecorded individual carries no information). Rounding: atol 1e-10 of the scale."""
    n, t = 22, 3
    G_all, Y, X, B, mu = _setting(n, t)
    small = henderson(Y, G_all[:n, :n], mu, SIGMA_G, SIGMA_E, X, B, G_all[n:, :n], np.diag(G_all)[n:])
    Y_all = np.vstack([Y, np.full((4, t), np.nan)])
    X_all = np.vstack([X, np.zeros((4, 2))])
    big = henderson(Y_all, G_all, mu, SIGMA_G, SIGMA_E, X_all, B)
    for method in ("gls", "mme"):
        big = henderson(Y_all, G_all, mu, SIGMA_G, SIGMA_E, X_all, B, method=method)
        scale = np.abs(small.mean).max()
        np.testing.assert_allclose(big.mean[n:], small.new_mean, rtol=0, atol=1e-10 * scale)
        np.testing.assert_allclose(big.var[n:], small.new_var, rtol=0, atol=1e-10)
        np.testing.assert_allclose(big.mean[:n], small.mean, rtol=0, atol=1e-10 * scale)
        np.testing.assert_allclose(big.var[:n], small.var, rtol=0, atol=1e-10)


@pytest.mark.exact
def test_henderson_with_diagonal_covariances_is_single_trait_henderson_per_trait():
    """Sigma_g, Sigma_e diagonal: the traits decouple, and each is the textbook single-trait MME
    ``(Z'Z + lambda G^-1) g = Z'(y - mu - X b)``, ``Var = sigma2_e (Z'Z + lambda G^-1)^-1``, lambda = s2e/s2g."""
    n, t = 22, 3
    G_all, Y, X, B, mu = _setting(n, t)
    G = G_all[:n, :n]
    s2g, s2e = np.array([1.0, 2.0, 0.5]), np.array([1.5, 0.7, 3.0])
    post = henderson(Y, G, mu, np.diag(s2g), np.diag(s2e), X, B)
    G_inv = np.linalg.inv(G)
    for k in range(t):
        o = ~np.isnan(Y[:, k])
        Z = np.eye(n)[o]
        C = Z.T @ Z + s2e[k] / s2g[k] * G_inv
        g_hat = np.linalg.solve(C, Z.T @ (Y[o, k] - mu[k] - X[o] @ B[:, k]))
        np.testing.assert_allclose(post.mean[:, k], g_hat, rtol=0, atol=1e-10 * np.abs(g_hat).max())
        np.testing.assert_allclose(post.var[:, k], s2e[k] * np.diag(np.linalg.inv(C)), rtol=1e-9)
        other = [j for j in range(t) if j != k]
        block = post.cov[k * n : (k + 1) * n][:, np.r_[tuple(slice(j * n, (j + 1) * n) for j in other)]]
        np.testing.assert_allclose(block, 0.0, atol=1e-12)  # no posterior covariance across traits


@pytest.mark.exact
def test_henderson_mme_refuses_a_singular_G():
    G = _relationship(10, 30, seed=9).matrix  # centred: singular
    Y = _records(10, 2, seed=1, empty=0)
    with pytest.raises(ValueError, match="positive definite G"):
        henderson(Y, G, [0, 0], SIGMA_G[:2, :2], SIGMA_E[:2, :2], method="mme")
    assert np.isfinite(henderson(Y, G, [0, 0], SIGMA_G[:2, :2], SIGMA_E[:2, :2]).var).all()


# ---------------------------------------------------------------------------------------- marker effects


@pytest.mark.parametrize("m", [15, 40], ids=["m<n", "m>n"])
@pytest.mark.exact
def test_marker_effects_through_g_equal_henderson_on_WWt_over_c(m):
    """``W E[b]`` and ``(I ⊗ W) Cov[b] (I ⊗ W')`` equal Henderson's mean and covariance of g on G = WW'/c with
    Sigma_g = c Sigma_b (G singular in both cases: centred W); the SNP-BLUP MME and the GLS form of b agree.
    Rounding: atol 1e-10 of the scale."""
    n, t, c = 25, 2, 17.3
    rng = np.random.default_rng(m)
    W = rng.normal(size=(n, m))
    W -= W.mean(axis=0)
    G = W @ W.T / c
    Y = _records(n, t, seed=m + 1, empty=2)
    mu, Sb, Se = np.array([1.0, 3.0]), SIGMA_G[:2, :2] / c, SIGMA_E[:2, :2]
    mme = marker_effects(Y, W, c, mu, Sb, Se)
    gls = marker_effects(Y, W, c, mu, Sb, Se, method="gls")
    assert mme.mean.shape == mme.var.shape == (m, t) and mme.cov.shape == (m * t, m * t)
    for a, b in zip(mme, gls, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(a).max())
    post = henderson(Y, G, mu, c * Sb, Se)
    np.testing.assert_allclose(mme.Sigma_g, SIGMA_G[:2, :2], rtol=1e-15)
    IW = np.kron(np.eye(t), W)
    np.testing.assert_allclose(W @ mme.mean, post.mean, rtol=0, atol=1e-10 * np.abs(post.mean).max())
    np.testing.assert_allclose(mme.g_mean, post.mean, rtol=0, atol=1e-10 * np.abs(post.mean).max())
    np.testing.assert_allclose(IW @ mme.cov @ IW.T, post.cov, rtol=0, atol=1e-10 * np.abs(post.cov).max())
    np.testing.assert_allclose(mme.g_var, post.var, rtol=0, atol=1e-10 * post.var.max())


# -------------------------------------------------------------------------------------------------- REML


@pytest.mark.exact
def test_restricted_loglik_is_the_density_of_orthonormal_error_contrasts():
    """l_R (Harville's form with log det D'D) = log N(K'y | 0, K'VK), K an orthonormal basis of D's
    complement: a different formula for the same number (rtol 1e-11)."""
    n, t = 20, 2
    rng = np.random.default_rng(11)
    G, Y, X = _pd(n, 12), _records(n, t, seed=13), rng.normal(size=(n, 1))
    o = observed(Y)
    D = np.kron(np.eye(t), np.column_stack([np.ones(n), X]))[o]
    K = null_space(D.T)
    V = (np.kron(SIGMA_G[:2, :2], G) + np.kron(SIGMA_E[:2, :2], np.eye(n)))[np.ix_(o, o)]
    expected = stats.multivariate_normal(np.zeros(K.shape[1]), K.T @ V @ K).logpdf(K.T @ vec(Y)[o])
    assert restricted_loglik(Y, G, SIGMA_G[:2, :2], SIGMA_E[:2, :2], X) == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize("fixed", [False, True], ids=["mu", "mu+covariate"])
@pytest.mark.exact
def test_reml_one_trait_equals_bayesblup_reml(fixed):
    """Two optimisers of one criterion (Brent on EMMA's profiled form, BFGS on Cholesky factors): the
    estimates agree to 1e-5 relative (both are converged to ~1e-8), the maximum to 1e-7."""
    G = _relationship(90, 40, seed=21)
    Y = simulate_multitrait(G, Sigma_g=[[2.0]], Sigma_e=[[1.0]], mu=[5.0], missing=0.1, seed=22)
    X = None
    if fixed:
        X = pd.DataFrame({"x": np.random.default_rng(23).normal(size=90)}, index=Y.index)
        Y = Y.add(0.8 * X["x"], axis=0)
    ref = bb.reml(Y["t1"], G, fixed=X)
    est = reml(Y.to_numpy(), G.matrix, None if X is None else X.to_numpy())
    assert est.success and 0.2 < ref.h2 < 0.9  # an interior maximum
    assert est.Sigma_g[0, 0] == pytest.approx(ref.sigma2_g, rel=1e-5)
    assert est.Sigma_e[0, 0] == pytest.approx(ref.sigma2_e, rel=1e-5)
    assert est.mu[0] == pytest.approx(ref.beta["mu"], rel=1e-5)
    if fixed:
        assert est.B[0, 0] == pytest.approx(ref.beta["x"], rel=1e-5)
    assert est.loglik == pytest.approx(ref.loglik, rel=0, abs=1e-7)  # the same criterion, constants included
    assert est.n_obs == ref.n


def _two_trait_data():
    G = _relationship(70, 35, seed=31)
    Sg, Se = np.array([[1.0, 0.5], [0.5, 1.5]]), np.array([[1.0, -0.3], [-0.3, 0.8]])
    Y = simulate_multitrait(G, Sigma_g=Sg, Sigma_e=Se, mu=[1.0, 2.0], missing=0.2, seed=32)
    X = np.random.default_rng(33).normal(size=(70, 1))
    return G.matrix, Y.to_numpy() + X @ [[0.5, -0.5]], X


@pytest.mark.exact
def test_reml_score_is_the_gradient_of_the_restricted_loglik():
    """The analytic score in the Cholesky parameters against central differences (h = 1e-5; error ~ h^2)."""
    from oracles_multitrait import _Restricted

    G, Y, X = _two_trait_data()
    f = _Restricted(Y, G, X)
    theta = f.pack(np.array([[1.2, 0.3], [0.3, 0.9]]), np.array([[0.8, 0.1], [0.1, 1.1]]))
    _, grad = f.objective(theta)
    h = 1e-5
    numeric = [(f.objective(theta + h * e)[0] - f.objective(theta - h * e)[0]) / (2 * h) for e in np.eye(theta.size)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.exact
def test_reml_two_traits_is_a_maximum():
    """Every perturbation of (Sigma_g, Sigma_e) at the estimates lowers l_R: along each of the 6 vech
    coordinates (+-0.02) and 20 random symmetric directions (norm 0.02). At a maximum the drop is second
    order, h^2 I / 2: 5e-4 to 5e-3 here, far above rounding (1e-12); a score of 0.03 would flip one side."""
    G, Y, X = _two_trait_data()
    est = reml(Y, G, X)
    assert est.success
    top = restricted_loglik(Y, G, est.Sigma_g, est.Sigma_e, X)
    assert top == pytest.approx(est.loglik, rel=1e-13)
    rng = np.random.default_rng(34)
    directions = [np.eye(6)[i] for i in range(6)] + list(rng.normal(size=(20, 6)))
    for d in directions:
        d = 0.02 * d / np.linalg.norm(d)
        for s in (1, -1):
            dg = np.array([[d[0], d[1]], [d[1], d[2]]])
            de = np.array([[d[3], d[4]], [d[4], d[5]]])
            assert restricted_loglik(Y, G, est.Sigma_g + s * dg, est.Sigma_e + s * de, X) < top
    # and the GLS fixed effects are those of the estimates: the mean that maximises the full likelihood
    assert est.mu.shape == (2,) and est.B.shape == (1, 2)


@pytest.mark.recovery
def test_reml_two_traits_recovers_the_truth_at_n200():
    """n = 200, t = 2, 10% missing, G of 100 markers. REML is consistent but at n = 200 its sampling error
    is large (SE of a Sigma_g entry ~ 0.2-0.3): "near the truth" means the Wald statistic of the six
    entries, with REML's expected information at the estimates, under chi2_6's 0.999 quantile (22.5), and
    each entry within 4 asymptotic SE. Seeded, so deterministic; the seed was not tuned."""
    Sg, Se = np.array([[1.0, 0.5], [0.5, 2.0]]), np.array([[1.0, 0.4], [0.4, 1.0]])
    G = _relationship(200, 100, seed=41)
    Y = simulate_multitrait(G, Sigma_g=Sg, Sigma_e=Se, mu=[10.0, -5.0], missing=0.1, seed=42)
    est = reml(Y.to_numpy(), G.matrix)
    assert est.success
    vech = [(0, 0), (1, 0), (1, 1)]
    diff = np.array([est.Sigma_g[i] - Sg[i] for i in vech] + [est.Sigma_e[i] - Se[i] for i in vech])
    cov = np.linalg.inv(est.fisher)
    se = np.sqrt(np.diag(cov))
    wald = diff @ est.fisher @ diff
    assert wald < stats.chi2.ppf(0.999, 6), (diff, se, wald)
    assert np.all(np.abs(diff) < 4 * se), (diff, se)
    assert np.all(se < 0.5)  # the data are informative enough for the check to mean something
    # mu: GLS, within 4 of its SE sqrt(diag (D' V^-1 D)^-1) at the estimates
    o = observed(Y.to_numpy())
    D = np.kron(np.eye(2), np.ones((200, 1)))[o]
    V = (np.kron(est.Sigma_g, G.matrix) + np.kron(est.Sigma_e, np.eye(200)))[np.ix_(o, o)]
    se_mu = np.sqrt(np.diag(np.linalg.inv(D.T @ np.linalg.solve(V, D))))
    assert np.all(np.abs(est.mu - [10.0, -5.0]) < 4 * se_mu), (est.mu, se_mu)


# ------------------------------------------------------------------------------------------------ simulator


def _whiten(G: np.ndarray, A: np.ndarray, rtol=1e-9):
    """U_+' A / sqrt(lambda_+) (rows iid N(0, Sigma) when vec A ~ N(0, Sigma ⊗ G)) and U_0' A (zero then)."""
    lam, U = np.linalg.eigh(G)
    keep = lam > rtol * lam.max()
    return (U[:, keep].T @ A) / np.sqrt(lam[keep])[:, None], U[:, ~keep].T @ A


def _check_cov(S_hat, S, n_rows, label):
    """Each entry within 4 Monte Carlo SE: Var of a Wishart entry / n_rows = (S_kk S_ll + S_kl^2) / n_rows."""
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / n_rows)
    assert np.all(np.abs(S_hat - S) < 4 * se), (label, S_hat, S, se)


@pytest.mark.recovery
def test_simulate_multitrait_from_a_relationship_has_covariances_sigma_g_and_sigma_e():
    """300 replicates on n = 40 (G of rank 39): 11,700 whitened rows of g and 12,000 of E. Tolerance: 4 Monte
    Carlo SE per entry (SE^2 = (S_kk S_ll + S_kl^2) / rows, the Wishart variance); g x E cross-covariance
    within 4 sqrt(Sg_kk Se_ll / rows). g lies in G's column space exactly."""
    G = _relationship(40, 80, seed=51)
    Sg, Se = SIGMA_G, SIGMA_E
    rng = np.random.default_rng(52)
    Sg_hat, Se_hat, cross, rows_g, rows_e = 0, 0, 0, 0, 0
    for _ in range(300):
        truth = simulate_multitrait(G, Sigma_g=Sg, Sigma_e=Se, mu=[1, 2, 3], seed=rng).attrs["truth"]
        zg, null = _whiten(G.matrix, truth.genetic_values.to_numpy())
        ze = _whiten(G.matrix, truth.residuals.to_numpy())[0]
        assert np.abs(null).max() < 1e-10
        Sg_hat, Se_hat, cross = (
            Sg_hat + zg.T @ zg,
            Se_hat + truth.residuals.to_numpy().T @ truth.residuals.to_numpy(),
            cross + zg.T @ ze,
        )
        rows_g, rows_e = rows_g + zg.shape[0], rows_e + 40
    _check_cov(Sg_hat / rows_g, Sg, rows_g, "Sigma_g")
    _check_cov(Se_hat / rows_e, Se, rows_e, "Sigma_e")
    assert np.all(np.abs(cross / rows_g) < 4 * np.sqrt(np.outer(np.diag(Sg), np.diag(Se)) / rows_g))


@pytest.mark.recovery
def test_simulate_multitrait_from_a_genotype_matrix_draws_b_with_sigma_g_over_c():
    """g = W b exactly; 40 replicates of b on m = 500 markers: 20,000 rows, each entry of c b'b/rows
    within 4 Monte Carlo SE of Sigma_g (as above)."""
    calls, _ = simulate_genotypes(30, 500, allele_freq=np.full(500, 0.5), seed=61)
    W = bb.genotype_matrix(bb.quality_control(calls)[0], scaling="standardized")
    c = W.scaling.denominator
    rng = np.random.default_rng(62)
    S_hat, rows = 0, 0
    for _ in range(40):
        Y = simulate_multitrait(W, Sigma_g=SIGMA_G, Sigma_e=SIGMA_E, seed=rng)
        truth = Y.attrs["truth"]
        b = truth.marker_effects.to_numpy()
        assert list(truth.marker_effects.index) == list(W.markers)
        np.testing.assert_allclose(truth.genetic_values.to_numpy(), W.values @ b, rtol=1e-13, atol=1e-13)
        S_hat, rows = S_hat + c * b.T @ b, rows + b.shape[0]
    _check_cov(S_hat / rows, SIGMA_G, rows, "Sigma_g")


@pytest.mark.structural
def test_simulate_multitrait_table_missing_records_and_errors():
    G = _relationship(60, 80, seed=71)
    Sg, Se = SIGMA_G[:2, :2], SIGMA_E[:2, :2]
    Y = simulate_multitrait(G, Sigma_g=Sg, Sigma_e=Se, mu=[1.0, 2.0], missing=0.5, names=["yield", "height"], seed=1)
    assert list(Y.columns) == ["yield", "height"] and Y.index.name == "id"
    assert list(Y.index) == list(G.ids)
    assert Y.isna().sum().tolist() == [30, 30] and not Y.isna().all(axis=1).any()  # 0.5 = (t-1)/t: just fits
    truth = Y.attrs["truth"]
    assert isinstance(truth, MultitraitTruth) and truth.marker_effects is None
    back = truth.genetic_values + truth.residuals + truth.mu
    np.testing.assert_allclose(back.where(Y.notna()), Y, rtol=1e-15, equal_nan=True)
    same = simulate_multitrait(G, Sigma_g=Sg, Sigma_e=Se, mu=[1.0, 2.0], missing=0.5, names=["yield", "height"], seed=1)
    pd.testing.assert_frame_equal(Y, same)  # the seed fixes every bit
    assert pd.concat([Y.iloc[:10], Y.iloc[10:]]).shape == Y.shape  # attrs never break a concat
    empty = simulate_multitrait(G, Sigma_g=Sg, Sigma_e=Se, missing=0.5, allow_empty=True, seed=2)
    assert empty.isna().sum().tolist() == [30, 30] and empty.isna().all(axis=1).any()
    one = simulate_multitrait(G, Sigma_g=[[1.0]], Sigma_e=[[1.0]], seed=3)
    assert list(one.columns) == ["t1"] and one.notna().all().all()
    with pytest.raises(ValueError, match="without any record"):
        simulate_multitrait(G, Sigma_g=Sg, Sigma_e=Se, missing=0.6, seed=1)
    with pytest.raises(ValueError, match="positive semi-definite"):
        simulate_multitrait(G, Sigma_g=[[1.0, 2.0], [2.0, 1.0]], Sigma_e=Se, seed=1)
    with pytest.raises(ValueError, match="Sigma_e is"):
        simulate_multitrait(G, Sigma_g=Sg, Sigma_e=SIGMA_E, seed=1)
    with pytest.raises(TypeError, match="Relationship"):
        simulate_multitrait(G.matrix, Sigma_g=Sg, Sigma_e=Se, seed=1)
