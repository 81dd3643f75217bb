"""``method="quadrature"`` against exact oracles: the grid oracle of test_recovery.py, a dense brute-force grid, and
the PyMC model's own density; its adaptive bounds; seeded draws; refusals, outputs, save/load and the CLI.

The dense oracle (:func:`_dense_posterior`) shares nothing with the code under test: it works on the records (Z, the
weights and the covariates as given, no eigendecomposition, no rotation, no within-individual statistics), with
``V = sigma2_k Z K Z' + sigma2_e diag(1/w)`` factorised by Cholesky, priors from scipy.stats, and a midpoint grid in
``(h2, log sigma2_p)`` over the whole of (0, 1) rather than the adaptive grid in logit h2.
"""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.datasets import wheat_path
from bayesblup.errors import InputError
from bayesblup.inference.gls import log_marginal_likelihood
from bayesblup.inference.prior_density import log_density
from bayesblup.inference.quadrature import _Density, fixed_prior, quadrature
from bayesblup.testing import simulate_genotypes

_recovery = importlib.import_module("models.test_recovery")  # the grid oracle (tests/ is on the path)


def _data(n: int, m: int, h2: float, seed: int, *, mu: float = 2.0, sigma2_p: float = 1.5, scale: float = 1.0):
    """Genotypes, G, W and a trait with heritability h2 (as test_recovery._simulate), y scaled by ``scale``."""
    rng = np.random.default_rng(seed)
    geno, _ = simulate_genotypes(n, m, allele_freq=rng.uniform(0.1, 0.9, m), seed=rng)
    W = bb.genotype_matrix(geno, scaling="standardized")
    G = bb.genomic_relationship(geno, scaling="standardized")
    g = W.values @ rng.normal(0.0, np.sqrt(h2 * sigma2_p / m), m)
    y = mu + g + rng.normal(0.0, np.sqrt((1 - h2) * sigma2_p), n)
    return pd.Series(scale * y, index=geno.ids, name="sim"), G, W, rng


def _covariates(ids, rng) -> pd.DataFrame:
    return pd.DataFrame({"age": rng.normal(30, 5, ids.size), "site": rng.choice(["a", "b", "c"], ids.size)}, index=ids)


def _quiet(fn, *args, **kwargs):
    """Build or fit without the rank warning of a centred G (recorded in the fit; not what these tests check)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.RankDeficiencyWarning)
        return fn(*args, **kwargs)


# --- the dense brute-force oracle ------------------------------------------------------------------------------


def _scipy_logpdf(prior: bb.Prior, x: np.ndarray) -> np.ndarray:
    """scipy.stats' log density of the priors these tests use."""
    p = prior.parameters
    dist = {
        "Beta": lambda: st.beta(p["alpha"], p["beta"]),
        "LogNormal": lambda: st.lognorm(s=p["sigma"], scale=np.exp(p["mu"])),
        "InverseGamma": lambda: st.invgamma(p["alpha"], scale=p["beta"]),
        "HalfNormal": lambda: st.halfnorm(scale=p["sigma"]),
        "Gamma": lambda: st.gamma(p["alpha"], scale=1 / p["beta"]),
    }[prior.distribution]()
    return dist.logpdf(x)


def _dense_posterior(model, n_h2: int = 1000, n_t: int = 1000, half: float = 2.5) -> dict:
    """Posterior means, sds, 5% / 95% quantiles (h2, sigma2_e, mu) and E[g | y] by brute force on the records.

    For each h2 (midpoint over (0, 1)), ``V = sigma2_p [h2 Z G Z' + (1 - h2) D]`` (D = diag(1/w)); mu and beta are
    integrated out in closed form under the model's Normal priors (GLS with the prior precision). The density in
    ``(h2, t = log sigma2_p)`` is the likelihood times ``p(h2) p(sigma2_p) sigma2_p`` (h2 parameterisation) or
    ``p(sigma2_k) p(sigma2_e) sigma2_p^2 / c`` (variance parameterisation: the Jacobian of ``(sigma2_k, sigma2_e)
    -> (h2, sigma2_p)`` is ``sigma2_p / c``, times ``sigma2_p`` for t). Quantiles by linear interpolation of the
    cumulative sums: error O(h^2), measured 2e-5 of an sd at 1000 x 1000 points (means and sds: below 1e-7).
    """
    rec = model.records
    c = float(model.factor)
    _, priors = model.priors
    K = model.relationship_matrix  # G-BLUP here: c = 1
    Z = np.zeros((rec.n_records, model.n))
    Z[np.arange(rec.n_records), rec.record_index] = 1.0
    ZKZ = Z @ K @ Z.T
    D = np.diag(1.0 / rec.record_weights)
    X1 = np.ones((rec.n_records, 1)) if rec.X is None else np.hstack([np.ones((rec.n_records, 1)), rec.X])
    prior_mean = np.r_[priors["mu"].parameters["mu"], np.zeros(X1.shape[1] - 1)]
    prior_prec = np.r_[1 / priors["mu"].parameters["sigma"] ** 2, 1 / model.beta_prior_scale**2 if rec.X is not None
                       else []]  # fmt: skip
    y = rec.y
    N = y.size
    h2 = (np.arange(n_h2) + 0.5) / n_h2
    t = np.log(np.var(model.y, ddof=1)) + np.linspace(-half, half, n_t)
    sp = np.exp(t)
    log_post = np.empty((n_h2, n_t))
    theta_mean = np.empty((n_h2, n_t, X1.shape[1]))
    theta_var0 = np.empty((n_h2, n_t))
    gv = []
    for i, h in enumerate(h2):
        V0 = h * ZKZ + (1 - h) * D
        L = np.linalg.cholesky(V0)
        Vinv = np.linalg.inv(V0)
        logdet = 2 * np.log(np.diag(L)).sum()
        XX, Xy, yy = X1.T @ Vinv @ X1, X1.T @ Vinv @ y, y @ Vinv @ y
        A = XX[None] / sp[:, None, None] + np.diag(prior_prec)[None]
        b = Xy[None] / sp[:, None] + prior_prec * prior_mean
        if A.shape[1] == 1:  # mu alone: scalars (fast)
            m, logdet_A, A_inv = b / A[:, 0], np.log(A[:, 0, 0]), 1 / A
        else:
            m, logdet_A, A_inv = np.linalg.solve(A, b[..., None])[..., 0], np.linalg.slogdet(A)[1], np.linalg.inv(A)
        log_ml = (-0.5 * N * np.log(2 * np.pi * sp) - 0.5 * logdet - 0.5 * yy / sp + 0.5 * (b * m).sum(1)
                  - 0.5 * logdet_A - 0.5 * (prior_prec * prior_mean**2).sum())  # fmt: skip
        if "h2" in priors:
            log_prior = _scipy_logpdf(priors["h2"], h) + _scipy_logpdf(priors["sigma2_p"], sp) + t
        else:
            s_k, s_e = h * sp / c, (1 - h) * sp
            name = model.kernels[0].variance_name
            log_prior = _scipy_logpdf(priors[name], s_k) + _scipy_logpdf(priors["sigma2_e"], s_e) + 2 * t - np.log(c)
        log_post[i] = log_ml + log_prior
        theta_mean[i] = m
        theta_var0[i] = A_inv[:, 0, 0]
        # E[g | y, theta] over the phenotyped individuals = h K Z' V0^-1 (y - X1 theta), linear in theta
        P = h * K @ Z.T @ Vinv
        gv.append((P @ y, P @ X1))
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    assert w[:, [0, -1]].sum() < 1e-10, "widen the oracle's range of log sigma2_p"
    mass_h2 = w.sum(1)
    g_mean = sum(mass_h2[i] * gv[i][0] - gv[i][1] @ (w[i] @ theta_mean[i]) for i in range(n_h2))

    def quantiles_1d(nodes, mass, levels=(0.05, 0.95)):
        edges = np.concatenate([[nodes[0] - (nodes[1] - nodes[0]) / 2], (nodes[1:] + nodes[:-1]) / 2,
                                [nodes[-1] + (nodes[-1] - nodes[-2]) / 2]])  # fmt: skip
        return np.interp(levels, np.concatenate([[0], np.cumsum(mass)]), edges)

    def moments(values):
        mean = float((w * values).sum())
        return mean, math.sqrt(float((w * values**2).sum()) - mean**2)

    se = (1 - h2)[:, None] * sp[None, :]
    out = {"g_mean": g_mean}
    out["h2"] = moments(np.broadcast_to(h2[:, None], w.shape)) + tuple(quantiles_1d(h2, mass_h2))
    out["sigma2_e"] = moments(se) + tuple(_scale_quantiles(w, np.log(1 - h2), t))
    mu_m, mu_v = theta_mean[..., 0], theta_var0
    mu_mean = float((w * mu_m).sum())
    out["mu"] = (mu_mean, math.sqrt(float((w * (mu_v + mu_m**2)).sum()) - mu_mean**2))
    return out


def _scale_quantiles(w, g, t, levels=(0.05, 0.95)):
    """Quantiles of exp(t + g_i) from a grid's weights: per row the distribution function in t, interpolated."""
    h = t[1] - t[0]
    cum = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w, axis=1)], axis=1)
    edges = np.concatenate([t - h / 2, [t[-1] + h / 2]])

    def cdf(q):
        return sum(np.interp(math.log(q) - g[i], edges, cum[i]) for i in range(w.shape[0]))

    out = []
    for level in levels:
        lo, hi = math.exp(t[0] + g.min() - 1), math.exp(t[-1] + g.max() + 1)
        for _ in range(80):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if cdf(mid) < level else (lo, mid)
        out.append(math.sqrt(lo * hi))
    return out


# --- exact ---------------------------------------------------------------------------------------------------


@pytest.mark.exact
def test_default_prior__matches_the_grid_oracle_of_test_recovery():
    """h2's and mu's means and sds and E[g | y] equal test_recovery's quadrature oracle within 1e-5.

    The oracle (400 h2 x 600 log sigma2_p midpoints, prior="default") states an error of ~1e-6 in the means; the
    quadrature's own estimate is below 1e-6 of an sd. Measured: 1.5e-7 (means), 5.7e-7 (sds), 1.0e-6 (E[g | y]).
    """
    y, G, _, _ = _data(80, 150, 0.5, seed=101)
    model = _quiet(bb.GBLUP, y, G)
    exact = _recovery._exact_posterior(model)
    fit = _quiet(model.fit, method="quadrature", seed=1)
    table = fit.summary()
    for name in ("h2", "mu"):
        assert table.loc[name, "mean"] == pytest.approx(exact[f"{name}_mean"], abs=1e-5)
        assert table.loc[name, "sd"] == pytest.approx(exact[f"{name}_sd"], abs=1e-5)
    np.testing.assert_allclose(fit.genetic_values["mean"].to_numpy(), exact["g_mean"], atol=1e-5, rtol=0)
    assert fit.settings["quadrature"]["converged"] and fit.settings["quadrature"]["error_estimate"] < 1e-6


CASES = {
    "bglr, fixed effects": dict(prior="bglr", covariates=True),
    "default, weights": dict(prior="default", weights=True),
    "dict of variances, fixed effects and weights": dict(
        prior={"sigma2_g": bb.Prior("HalfNormal", sigma=1.5), "sigma2_e": bb.Prior("Gamma", alpha=2.0, beta=1.0)},
        covariates=True,
        weights=True,
    ),
    "dict with h2, repeated records": dict(prior={"h2": bb.Prior("Beta", alpha=2.0, beta=3.0)}, repeated=True),
}


def _case_model(prior, covariates=False, weights=False, repeated=False, seed=7):
    y, G, _, rng = _data(45, 120, 0.5, seed=seed)
    options = {"prior": prior}
    if repeated:  # a second record for a third of the individuals
        again = y.iloc[::3] + rng.normal(0, 0.8, y.iloc[::3].size)
        y = pd.concat([y, again])
        options["repeated"] = True
    if covariates:
        X = _covariates(y.index.unique(), rng)
        options["fixed"] = X.loc[y.index] if repeated else X
    if weights:
        options["weights"] = pd.Series(rng.uniform(0.5, 3.0, y.size), index=y.index)
    return _model(bb.GBLUP, y, G, **options)


def _model(cls, *args, **kwargs):
    """A model with its eigendecomposition done (quietly: a centred G warns of its lost rank)."""
    model = _quiet(cls, *args, **kwargs)
    _quiet(lambda: model.spectral_data)
    return model


@pytest.mark.exact
@pytest.mark.parametrize("case", list(CASES))
def test_moments_quantiles_and_genetic_values__match_the_dense_oracle(case):
    """Means and sds of h2, sigma2_e and mu and E[g | y] within 1e-6 of an sd; 5% / 95% quantiles within 1e-4.

    Both rules are spectrally accurate for the means and sds (measured: differences below 1e-7 of an sd; E[g | y]
    below 2e-7 of the smallest sd of g); the oracle's quantiles interpolate its cumulative sums, an O(h^2) error
    measured at up to 2e-5 of an sd (halving with twice the points), while the quadrature's are exact to 1e-10.
    """
    model = _case_model(**CASES[case])
    exact = _dense_posterior(model)
    fit = _quiet(model.fit, method="quadrature", seed=3, draws=200)
    table = fit.summary()
    for name, keys in (("h2", ("mean", "sd", "q05", "q95")), ("sigma2_e", ("mean", "sd", "q05", "q95")),
                       ("mu", ("mean", "sd"))):  # fmt: skip
        sd = exact[name][1]
        for k, key in enumerate(keys):
            tol = (1e-6 if key in ("mean", "sd") else 1e-4) * sd
            assert abs(table.loc[name, key] - exact[name][k]) < tol, (case, name, key, table.loc[name, key],
                                                                      exact[name][k])  # fmt: skip
    sd_g = fit.genetic_values["sd"].to_numpy()[: model.n]
    assert np.abs(fit.genetic_values["mean"].to_numpy()[: model.n] - exact["g_mean"]).max() < 1e-6 * sd_g.min()


@pytest.mark.exact
@pytest.mark.parametrize("distribution", [
    bb.Prior("Beta", alpha=2.0, beta=3.0), bb.Prior("Uniform", lower=0.5, upper=4.0),
    bb.Prior("LogNormal", mu=0.3, sigma=1.2), bb.Prior("InverseGamma", alpha=2.5, beta=1.75),
    bb.Prior("Gamma", alpha=0.5, beta=2.0), bb.Prior("HalfNormal", sigma=1.5), bb.Prior("HalfCauchy", beta=0.7),
    bb.Prior("Exponential", lam=1.3), bb.Prior("HalfStudentT", nu=3.0, sigma=2.0),
    bb.Prior("Gamma", mu=1.0, sigma=0.5),  # another parameterisation: evaluated through PyMC itself
], ids=lambda p: f"{p.distribution}{sorted(p.parameters)}")  # fmt: skip
def test_prior_densities__equal_pymc_logp(distribution):
    """Every prior density the quadrature evaluates in NumPy equals ``pm.logp`` to 1e-7, -inf outside its support.

    Not to the last digit: PyTensor computes some normalising constants with float32 precision (measured: Beta's
    ``betaln`` at (2, 3) off by 2.4e-8 where SciPy gives log(1/12) to the last digit; HalfCauchy's and HalfStudentT's
    constants by 1.9e-9). A constant offset leaves the posterior unchanged; a wrong density misses by far more.
    """
    import pymc as pm

    x = np.array([1e-6, 0.05, 0.3, 0.5, 0.9, 1.7, 3.9, 12.0, -0.5])
    if distribution.distribution == "Beta":
        x = np.array([1e-6, 0.05, 0.3, 0.5, 0.9, 1 - 1e-9, -0.5, 1.5])
    params = {k: np.float64(v) for k, v in distribution.parameters.items()}  # Python floats would be float32 constants
    expected = pm.logp(getattr(pm, distribution.distribution).dist(**params), x).eval()
    got = log_density(distribution, x)
    finite = np.isfinite(expected)
    assert np.array_equal(finite, np.isfinite(got)), (expected, got)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-7, atol=1e-7)


def _pymc_integrated(model, values: dict) -> float:
    """log of the integral over mu and beta of the PyMC model's density at the given variance values.

    The density is Gaussian in (mu, beta), so with its gradient g and Hessian H (constant) at any point theta0 the
    integral is exact: ``logp(theta0) + g'(-H)^-1 g / 2 + p/2 log(2 pi) - log|-H| / 2``. H by central differences of
    PyMC's gradient (exact for a quadratic, up to rounding).
    """
    pm_model = model.model
    fixed = [pm_model[name] for name in ("mu", "beta") if name in pm_model.named_vars]
    logp, dlogp = pm_model.compile_logp(), pm_model.compile_dlogp(vars=fixed)
    q = 0 if model.records.X is None else model.records.n_covariates

    def point(theta):
        out = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()} | {"mu": np.asarray(theta[0])}
        return out | ({"beta": np.asarray(theta[1:])} if q else {})

    p = 1 + q
    theta0 = np.zeros(p)
    g = dlogp(point(theta0))
    H = np.empty((p, p))
    for j in range(p):
        e = np.eye(p)[j]
        H[:, j] = (dlogp(point(theta0 + e)) - dlogp(point(theta0 - e))) / 2
    H = (H + H.T) / 2
    return float(logp(point(theta0)) + 0.5 * g @ np.linalg.solve(-H, g) + 0.5 * p * np.log(2 * np.pi)
                 - 0.5 * np.linalg.slogdet(-H)[1])  # fmt: skip


@pytest.mark.exact
@pytest.mark.parametrize("case", list(CASES))
def test_log_posterior__equals_the_pymc_model_with_mu_and_beta_integrated(case):
    """The quadrature's log density of (logit h2, log sigma2_p) equals PyMC's compile_logp integrated over mu, beta.

    At three points in PyMC's own coordinates: (logit h2, log sigma2_p) for the h2 parameterisation, (log
    sigma2_k, log sigma2_e) for the variances', which map to the quadrature's (x, z) with Jacobian 1. Equal to
    1e-8 (absolute, on log densities of order -100: rounding of sums over n terms and of the differenced gradient).
    """
    model = _case_model(**CASES[case])
    density = _Density(model)
    c = float(model.factor)
    for x, z in ((-0.4, 0.1), (0.7, -0.3), (1.5, 0.6)):
        mine = float(density.points(np.array([x]), np.array([z]))[0])
        if density.h2_style:
            values = {"h2_logodds__": x, "sigma2_p_log__": z}
        else:
            h2 = 1 / (1 + math.exp(-x))
            values = {"sigma2_g_log__": z + math.log(h2 / c), "sigma2_e_log__": z + math.log(1 - h2)}
        assert mine == pytest.approx(_pymc_integrated(model, values), abs=1e-8), (case, x, z)


@pytest.mark.exact
def test_log_marginal_likelihood__equals_the_dense_gaussian():
    """``log_marginal_likelihood`` (the function a low-rank path extends) equals the dense multivariate normal with
    mu ~ N(m, s^2) integrated out, ``N(y; m 1, V + s^2 11')``, to 1e-9 (weights and repeated records included)."""
    model = _case_model(prior="bglr", weights=True, repeated=True)
    rec = model.records
    Z = np.zeros((rec.n_records, model.n))
    Z[np.arange(rec.n_records), rec.record_index] = 1.0
    prior = fixed_prior(model)
    m, s2 = prior.mean[0], 1 / prior.precision[0]
    for sigma2_k, sigma2_e in ((0.3, 0.9), (1.7, 0.2)):
        V = sigma2_k * Z @ model.relationship_matrix @ Z.T + sigma2_e * np.diag(1 / rec.record_weights) + s2
        expected = st.multivariate_normal(np.full(rec.n_records, m), V).logpdf(rec.y)
        got = log_marginal_likelihood(model.spectral_data, sigma2_k, sigma2_e, prior)[0]
        assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.exact
@pytest.mark.parametrize(("h2", "seed"), [(0.0, 11), (0.97, 12)])
def test_adaptive_bounds__follow_a_posterior_near_h2_0_and_1(h2, seed):
    """With h2 near 0 or 1 the grid extends along logit h2 until the edge is empty, and the result matches the
    dense oracle (midpoint over all of (0, 1): no bounds to choose) within 1e-5 of an sd for means and sds, 1e-4 for
    quantiles; no limit is reached and the error estimate is met. The oracle's density does not vanish at h2 = 0 or
    1, so its midpoint rule is O(h^2) there: measured differences up to 2e-6 of an sd in the means and sds, 4e-5 in
    the quantiles of sigma2_e (its interpolation; the quadrature's own error estimate is below 1e-6)."""
    y, G, _, _ = _data(60, 100, h2, seed=seed)
    model = _model(bb.GBLUP, y, G)
    result = quadrature(model)
    exact = _dense_posterior(model, n_h2=2000, n_t=1500, half=3.5)
    assert result.converged and not result.at_limit and result.extensions >= 1
    for name in ("h2", "sigma2_e"):
        row, sd = result.table[name], exact[name][1]
        for k, key in enumerate(("mean", "sd", "q05", "q95")):
            tol = (1e-5 if key in ("mean", "sd") else 1e-4) * sd
            assert abs(row[key] - exact[name][k]) < tol, (name, key, row[key], exact[name][k])


@pytest.mark.exact
def test_adaptive_bounds__follow_the_scale_of_the_data():
    """y times 1e3: the same h2 posterior (to 1e-6 of an sd), variances times 1e6 (to 1e-6 relative), and the
    grid's log sigma2_p bounds shifted by log 1e6 (the priors follow the data's scale: LogNormal(log var(y), 1))."""
    y, G, _, _ = _data(60, 100, 0.4, seed=13)
    small, large = (quadrature(_model(bb.GBLUP, scale * y, G)) for scale in (1.0, 1e3))
    for key in ("mean", "sd", "q05", "q95"):
        assert large.table["h2"][key] == pytest.approx(small.table["h2"][key], abs=1e-6 * small.table["h2"]["sd"])
        assert large.table["sigma2_e"][key] == pytest.approx(1e6 * small.table["sigma2_e"][key], rel=1e-6)
    shift = large.settings()["bounds"]["z"][0] - small.settings()["bounds"]["z"][0]
    assert shift == pytest.approx(math.log(1e6), abs=1e-6)


@pytest.mark.exact
def test_draws__seeded_bit_identical_and_from_the_posterior(wheat, wheat_G):
    """The same seed gives the same bits; another seed other draws. The draws' means sit within 4 Monte Carlo
    errors (sd / sqrt(4000): independent draws) of the exact means."""
    model = _quiet(bb.GBLUP, wheat.phenotypes["y1"], wheat_G, prior="bglr")
    a, b, c = (_quiet(model.fit, method="quadrature", seed=s) for s in (5, 5, 6))
    for name in ("h2", "sigma2_g", "sigma2_e", "mu"):
        x = a.datatree["posterior"][name].values
        assert np.array_equal(x, b.datatree["posterior"][name].values)
        assert not np.array_equal(x, c.datatree["posterior"][name].values)
        row = a.summary().loc[name]
        assert abs(x.mean() - row["mean"]) < 4 * row["sd"] / math.sqrt(x.size), name
    np.testing.assert_array_equal(a.genetic_values["sd"], b.genetic_values["sd"])


# --- structural ----------------------------------------------------------------------------------------------


def _refusals(wheat, wheat_G):
    y = wheat.phenotypes["y1"]

    def sets():
        geno, _ = bb.quality_control(wheat.genotypes)
        return bb.MultiGBLUP(y, bb.relationships_by_set(geno, {"a": geno.markers[:100]}))

    def extended():
        import pymc as pm

        model = bb.GBLUP(y, wheat_G)
        with model.model:
            pm.Normal("extra", 0.0, 1.0)
        return model

    repeated = pd.concat([y, y.iloc[:50] + 0.1])
    return {
        "several kernels": sets,
        "several traits": lambda: bb.GBLUP(wheat.phenotypes[["y1", "y2"]], wheat_G),
        "binary": lambda: bb.GBLUP((y > y.median()).astype(float), wheat_G, family="binary"),
        "latent": lambda: bb.GBLUP(y, wheat_G, form="latent"),
        "permanent environment": lambda: bb.GBLUP(repeated, wheat_G, permanent_environment=True),
        "extended": extended,
        "mu prior": lambda: bb.GBLUP(y, wheat_G, prior={"sigma2_g": bb.Prior("HalfNormal", sigma=1.0),
                                                        "sigma2_e": bb.Prior("HalfNormal", sigma=1.0),
                                                        "mu": bb.Prior("StudentT", nu=3.0, mu=0.0, sigma=1.0)}),
    }  # fmt: skip


@pytest.mark.structural
@pytest.mark.parametrize("what", ["several kernels", "several traits", "binary", "latent", "permanent environment",
                                  "extended", "mu prior"])  # fmt: skip
def test_refuses_what_it_cannot_integrate_in_one_line(what, wheat, wheat_G):
    model = _quiet(_refusals(wheat, wheat_G)[what])
    built = model._model is not None
    with pytest.raises(InputError, match="method='quadrature'") as info:
        model.fit(method="quadrature")
    assert "\n" not in str(info.value) and "nuts" in str(info.value)
    assert (model._model is not None) == built  # refused before any work: nothing built


@pytest.mark.structural
def test_fit__groups_summary_and_diagnostics(wheat, wheat_W):
    """M-BLUP by quadrature: NUTS's variable names and dims, a quadrature group, the summary's rows and columns,
    diagnostics without MCMC figures or warnings, exact marker-effect means (E[g] = W E[b])."""
    y = wheat.phenotypes["y1"]
    model = _quiet(bb.MBLUP, y, wheat_W, fixed=pd.DataFrame({"x": np.arange(599.0) % 7}, index=y.index))
    fit = _quiet(model.fit, method="quadrature", chains=2, draws=300, seed=1)
    post = fit.datatree["posterior"]
    assert set(post.data_vars) == {"mu", "h2", "sigma2_p", "sigma2_b", "sigma2_g_equiv", "sigma2_e", "beta"}
    assert dict(post.sizes) == {"chain": 2, "draw": 300, "covariate": 1}
    assert {"posterior", "quadrature", "genetic_values", "marker_effects"} <= set(fit.datatree.children)
    table = fit.summary()
    assert list(table.index) == ["h2", "sigma2_b", "sigma2_g_equiv", "sigma2_e", "mu", "beta[x]"]
    assert list(table.columns) == ["mean", "sd", "q05", "q95", "ess_bulk", "ess_tail", "r_hat", "mcse_mean"]
    assert table[["mean", "sd", "q05", "q95"]].notna().all().all() and table["r_hat"].isna().all()
    diag = fit.diagnostics()
    assert diag["warnings"] == [] and diag["divergences"] is None and diag["max_r_hat"] is None
    assert any(note.startswith("independent draws: quadrature") for note in diag["notes"])
    assert (fit.method, fit.sampler) == ("quadrature", "quadrature")
    assert {"quadrature_s", "quadrature_draws_s", "sampling_s", "genetic_values_s"} <= set(fit.timings)
    np.testing.assert_allclose(
        wheat_W.values @ fit.marker_effects["mean"].to_numpy(), fit.genetic_values["mean"].to_numpy(), atol=1e-10
    )


@pytest.mark.structural
def test_save_and_load__round_trip(tmp_path, wheat, wheat_G):
    model = _quiet(bb.GBLUP, wheat.phenotypes["y1"], wheat_G, prior="bglr")
    fit = _quiet(model.fit, method="quadrature", chains=2, draws=200, seed=2)
    fit.save(tmp_path / "fit")
    back = bb.load_fit(tmp_path / "fit")
    pd.testing.assert_frame_equal(back.summary(), fit.summary())
    assert back.diagnostics() == fit.diagnostics()
    assert back.method == "quadrature" and back.settings["quadrature"] == json.loads(json.dumps(fit.settings))[
        "quadrature"]  # fmt: skip
    np.testing.assert_allclose(back.genetic_values["mean"], fit.genetic_values["mean"], rtol=1e-9)


@pytest.mark.structural
def test_cli__fit_method_quadrature_end_to_end(tmp_path, capsys):
    out = tmp_path / "fit"
    args = [
        "fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv"), "--trait", "y1",
        "--model", "gblup", "--prior", "bglr", "--method", "quadrature", "--seed", "1", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == summary["sampler"] == "quadrature"
    assert summary["settings"]["quadrature"]["converged"]
    h2 = summary["parameters"]["h2"]
    assert h2["q05"] < h2["mean"] < h2["q95"] and h2["r_hat"] is None and h2["ess_bulk"] is None
    assert summary["diagnostics"]["warnings"] == [] and "quadrature_s" in summary["timings"]
    text = capsys.readouterr().out
    assert "exact" in text and "independent draws (quadrature)" in text and "h2 = " in text
    assert main(["summary", str(out)]) == 0
    assert "independent draws (quadrature)" in capsys.readouterr().out


@pytest.mark.exact
def test_targets__exact_means_agree_across_equivalent_models(wheat, wheat_W):
    """Under prior="default" G-BLUP on G = WW'/m and M-BLUP on W are one model with one posterior, so G-BLUP's
    back-solved marker effects (a target, ``fit.back_solve_markers``) and M-BLUP's marker effects have the same exact
    posterior means, and so do the genetic values: equal to 1e-9 of the largest (rounding of two eigendecompositions
    of the same matrix, scaled by c). Their sds come from each fit's draws (Monte Carlo error): within 5%."""
    y = wheat.phenotypes["y1"]
    geno, _ = bb.quality_control(wheat.genotypes)
    gblup = _quiet(bb.GBLUP, y, bb.genomic_relationship(geno, scaling="standardized"))
    mblup = _quiet(bb.MBLUP, y, wheat_W)
    fg, fm = (_quiet(m.fit, method="quadrature", seed=4) for m in (gblup, mblup))
    back = fg.back_solve_markers(geno)
    b = fm.marker_effects["mean"].to_numpy()
    np.testing.assert_allclose(back["mean"].to_numpy(), b, rtol=0, atol=1e-9 * np.abs(b).max())
    g = fm.genetic_values["mean"].to_numpy()
    np.testing.assert_allclose(fg.genetic_values["mean"].to_numpy(), g, rtol=0, atol=1e-9 * np.abs(g).max())
    np.testing.assert_allclose(back["sd"].to_numpy(), fm.marker_effects["sd"].to_numpy(), rtol=0.05)


@pytest.mark.structural
def test_plots__from_the_independent_draws(tmp_path, wheat, wheat_G):
    """write_plots on a quadrature fit: h2, genetic values, trace and rank; no energy (no Hamiltonian)."""
    pytest.importorskip("matplotlib")
    fit = _quiet(_quiet(bb.GBLUP, wheat.phenotypes["y1"], wheat_G).fit, method="quadrature", draws=200, seed=1)
    written = sorted(p.name for p in bb.plots.write_plots(fit, tmp_path))
    assert written == ["genetic_values.png", "h2.png", "rank.png", "trace.png"]


@pytest.mark.exact
@pytest.mark.parametrize("name", ["gblup", "mblup"])
def test_low_rank_path__equals_the_dense_route(name):
    """W with fewer markers than individuals (the low-rank path: r components plus the null space's Gram block in
    ``gls_statistics``) gives the dense route's quadrature: the summary to 1e-8 of each sd, the exact means of g (with
    unphenotyped individuals) and of marker effects to 1e-8 of the largest. Weighted repeated records and fixed
    effects included. The two routes reach the same numbers through another order of operations (float64 rounding,
    ~1e-12), and the adaptive grid is laid from a mode and curvature that agree to that rounding."""
    low_rank = importlib.import_module("models.test_low_rank")
    geno, W = low_rank._genotypes()
    table = low_rank._table(geno, W, "none")
    thin = low_rank._model(name, table, W, "none", prior="bglr")
    dense = low_rank._model(name, table, low_rank._dense_G(geno) if name == "gblup" else W, "none", prior="bglr",
                            path="dense")  # fmt: skip
    assert (thin.path, dense.path) == ("low-rank", "spectral")
    a, b = (_quiet(m.fit, method="quadrature", draws=100, seed=1) for m in (thin, dense))
    ta, tb = a.summary(), b.summary()
    for name_ in tb.index:
        for key in ("mean", "sd", "q05", "q95"):
            assert ta.loc[name_, key] == pytest.approx(tb.loc[name_, key], abs=1e-8 * tb.loc[name_, "sd"]), (name_, key)
    g = b.genetic_values["mean"].to_numpy()
    np.testing.assert_allclose(a.genetic_values["mean"].to_numpy(), g, rtol=0, atol=1e-8 * np.abs(g).max())
    if name == "mblup":
        m = b.marker_effects["mean"].to_numpy()
        np.testing.assert_allclose(a.marker_effects["mean"].to_numpy(), m, rtol=0, atol=1e-8 * np.abs(m).max())


@pytest.mark.structural
def test_a_prior_cutting_into_the_posterior__warns_the_tolerance_was_not_reached():
    """Uniform(0, 0.45) on h2 cuts the density inside the grid: the midpoint rule converges only as the spacing
    there, the grid stops at its size limit, and the fit says so in a warning (not a silent 'exact')."""
    model = _case_model(prior={"h2": bb.Prior("Uniform", lower=0.0, upper=0.45)})
    fit = _quiet(model.fit, method="quadrature", draws=100, seed=1)
    assert not fit.settings["quadrature"]["converged"] and fit.settings["quadrature"]["error_estimate"] > 1e-6
    assert any("did not reach its tolerance" in w for w in fit.diagnostics()["warnings"])
    assert fit.summary().loc["h2", "q95"] <= 0.45
