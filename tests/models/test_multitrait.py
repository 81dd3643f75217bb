"""Several traits in one model (bayesblup.models.multitrait) against the dense oracles of tests/oracles_multitrait.py.

Exact (1e-8 relative: the same numbers through a different order of floating-point operations):

- the rotated log-likelihood of the completed records equals the dense multivariate normal of vec(Y),
  and with the missing records integrated out (``log p(y_obs) = log p(y_obs, y_mis) - log p(y_mis |
  y_obs)``) it is the dense density of the observed records alone: sampling the missing records is exact;
- E[g | Y, theta] and its variances, for phenotyped and unphenotyped individuals, equal Henderson's
  multi-trait solution; M-BLUP's marker effects equal the dense marker-model solution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from oracles_multitrait import dense_logp, henderson, marker_effects, vec

import bayesblup as bb
from bayesblup.inference.posterior import multitrait_moments, posterior_moments
from bayesblup.testing import simulate_genotypes, simulate_multitrait

SIGMA_G = np.array([[0.6, 0.35], [0.35, 0.5]])
SIGMA_E = np.array([[0.5, 0.1], [0.1, 0.7]])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(15)
    geno, _ = simulate_genotypes(50, 80, allele_freq=rng.uniform(0.1, 0.9, 80), seed=rng)
    G = bb.genomic_relationship(geno)
    W = bb.genotype_matrix(geno)
    Y = simulate_multitrait(G, Sigma_g=SIGMA_G, Sigma_e=SIGMA_E, mu=[1.0, -2.0], missing=0.2, seed=3)
    Y.iloc[:3] = np.nan  # three genotyped individuals with no record at all
    return G, W, Y


def _point(model, mu, y_missing) -> dict:
    """A point of the model's value variables (priors irrelevant: only the likelihood term is compiled)."""
    data = model.multitrait_data
    sd = np.array([np.nanstd(model.records.Y[:, j], ddof=1) for j in range(data.n_traits)])
    z = (y_missing - data.fill[data.missing_traits]) / sd[data.missing_traits]
    point = model.model.initial_point()
    point["mu"] = np.asarray(mu, dtype=float)
    if "z_missing" in point:
        point["z_missing"] = z
    return point


def _likelihood(model, Sigma_k, Sigma_e):
    """The ``y_rotated`` potential as a function of the point, with the covariances given (not sampled)."""
    import pytensor

    from bayesblup.models.multitrait import batched_mvn_logp

    pm_model = model.model
    # Rebuild the likelihood term with fixed covariances: replace the sampled ones through a small graph.
    data = model.multitrait_data
    inputs = [pm_model.rvs_to_values[pm_model["mu"]]]
    mu = inputs[0]
    R = data.Y - data.one[:, None] * mu[None, :]
    if data.missing_rows.size:
        z = pm_model.rvs_to_values[pm_model["z_missing"]]
        inputs.append(z)
        sd = np.array([np.nanstd(model.records.Y[:, j], ddof=1) for j in range(data.n_traits)])
        y_mis = data.fill[data.missing_traits] + sd[data.missing_traits] * z
        from bayesblup.models.ops import missing_shift

        rows = np.unique(data.missing_rows)  # the model's Op, as multitrait.likelihood builds it
        R = R + missing_shift(
            data.vectors[rows], np.searchsorted(rows, data.missing_rows), data.missing_traits, data.n_traits,
            y_mis - data.fill[data.missing_traits],
        )  # fmt: skip
    logp = batched_mvn_logp(data.lam, Sigma_k, Sigma_e, R)
    f = pytensor.function(inputs, logp)

    def at(point):
        return float(f(*[point[v.name] for v in inputs]))

    return at


@pytest.mark.exact
@pytest.mark.parametrize("kind", ["gblup", "mblup"])
def test_likelihood_is_the_dense_mvn_with_missing_records_integrated_exactly(data, kind):
    G, W, Y = data
    model = bb.GBLUP(Y, G) if kind == "gblup" else bb.MBLUP(Y, W)
    c = model.factor
    p = G.index(model.ids)
    Gp = G.matrix[np.ix_(p, p)]
    Yp = model.records.Y
    miss = np.isnan(Yp)
    rng = np.random.default_rng(4)
    logp = _likelihood(model, SIGMA_G / c, SIGMA_E)
    mu = np.array([0.8, -1.7])
    y_mis = rng.normal(0.0, 1.0, miss.sum()) + np.nanmean(Yp, axis=0)[np.nonzero(miss)[1]]
    # the model's order of the unknowns is numpy's nonzero order of the missing cells: row by row
    completed = Yp.copy()
    completed[miss] = y_mis
    joint = logp(_point(model, mu, y_mis))
    assert joint == pytest.approx(dense_logp(completed, Gp, mu, SIGMA_G, SIGMA_E), rel=1e-8)
    # log p(y_obs) = log p(y_obs, y_mis) - log p(y_mis | y_obs): the dense conditional of the missing cells.
    cov = np.kron(SIGMA_G, Gp) + np.kron(SIGMA_E, np.eye(model.n))
    m = np.kron(mu, np.ones(model.n))
    o, u = ~vec(miss), vec(miss)
    cond_mean = m[u] + cov[np.ix_(u, o)] @ np.linalg.solve(cov[np.ix_(o, o)], vec(completed)[o] - m[o])
    cond_cov = cov[np.ix_(u, u)] - cov[np.ix_(u, o)] @ np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, u)])
    conditional = st.multivariate_normal(cond_mean, cond_cov).logpdf(vec(completed)[u])
    assert joint - conditional == pytest.approx(dense_logp(Yp, Gp, mu, SIGMA_G, SIGMA_E), rel=1e-8)


def _single_draw(model, mu, y_mis):
    c = model.factor
    return dict(
        mu=np.asarray(mu)[None, :],
        Sigma_k=(SIGMA_G / c)[None],
        Sigma_e=SIGMA_E[None],
        missing=None if y_mis is None else y_mis[None, :],
    )


@pytest.mark.exact
def test_genetic_values_equal_multitrait_henderson(data):
    G, _, Y = data
    model = bb.GBLUP(Y, G)
    Yp = model.records.Y
    miss = np.isnan(Yp)
    mu = np.array([1.1, -2.1])
    y_mis = np.nanmean(Yp, axis=0)[np.nonzero(miss)[1]] + 0.3
    draw = _single_draw(model, mu, y_mis)
    g, extra = multitrait_moments(
        model.multitrait_data, draw.pop("mu"), draw.pop("Sigma_k"), draw.pop("Sigma_e"), **draw,
        targets=model.targets,
    )  # fmt: skip
    completed = Yp.copy()
    completed[miss] = y_mis
    every = np.concatenate([G.index(model.ids), G.index(model.records.unphenotyped)])
    unrecorded = np.full((len(model.records.unphenotyped), 2), np.nan)  # in G, without any record
    oracle = henderson(np.vstack([completed, unrecorded]), G.matrix[np.ix_(every, every)], mu, SIGMA_G, SIGMA_E)
    n = model.n
    for j in range(2):
        np.testing.assert_allclose(g[j].mean, oracle.mean[:n, j], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(g[j].sd ** 2, oracle.var[:n, j], rtol=1e-8, atol=1e-10)
        u = extra["unphenotyped"][j]
        np.testing.assert_allclose(u.mean, oracle.mean[n:, j], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(u.sd**2, oracle.var[n:, j], rtol=1e-8, atol=1e-10)


@pytest.mark.exact
def test_marker_effects_equal_the_dense_marker_model(data):
    _, W, Y = data
    model = bb.MBLUP(Y, W)
    c = model.factor
    Yp = model.records.Y
    miss = np.isnan(Yp)
    mu = np.array([0.9, -1.9])
    y_mis = np.nanmean(Yp, axis=0)[np.nonzero(miss)[1]] - 0.2
    draw = _single_draw(model, mu, y_mis)
    _, extra = multitrait_moments(
        model.multitrait_data, draw.pop("mu"), draw.pop("Sigma_k"), draw.pop("Sigma_e"), **draw,
        targets=model.targets,
    )  # fmt: skip
    completed = Yp.copy()
    completed[miss] = y_mis
    oracle = marker_effects(completed, model.W, c, mu, SIGMA_G / c, SIGMA_E)
    for j in range(2):
        np.testing.assert_allclose(extra["markers"][j].mean, oracle.mean[:, j], rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(extra["markers"][j].sd ** 2, oracle.var[:, j], rtol=1e-7, atol=1e-12)


@pytest.mark.recovery
def test_a_correlated_trait_predicts_a_missing_one():
    """Individuals with y2 but no y1: their y1 genetic values correlate better with the truth when y2 is in the
    model than from G alone (the single-trait model, where they have no record).

    At the true variances, no sampling: E[g | y_obs, theta] is linear in the missing records, so it is the
    conditional mean of g given the records completed by E[y_mis | y_obs, theta] (computed from the dense
    covariance here). With r_g = 0.9 and h2 = 0.5 the theory gives the two-trait accuracy for these
    individuals well above the single-trait one (about 0.8 against 0.5 for this G): the test asks for 0.1
    more in correlation, deterministic for this seed."""
    rng = np.random.default_rng(9)
    geno, _ = simulate_genotypes(300, 600, allele_freq=rng.uniform(0.05, 0.95, 600), seed=rng)
    G = bb.genomic_relationship(geno)
    S_g = np.array([[0.5, 0.45], [0.45, 0.5]])
    S_e = np.array([[0.5, 0.0], [0.0, 0.5]])
    Y = simulate_multitrait(G, Sigma_g=S_g, Sigma_e=S_e, mu=[0.0, 0.0], names=["y1", "y2"], seed=2)
    true_g1 = Y.attrs["truth"].genetic_values["y1"]
    true_g1.index = true_g1.index.astype(str)
    hidden = rng.choice(300, 90, replace=False)
    Y.iloc[hidden, 0] = np.nan  # y1 missing, y2 present
    mt = bb.GBLUP(Y, G)
    Yp = mt.records.Y
    p = G.index(mt.ids)
    cov = np.kron(S_g, G.matrix[np.ix_(p, p)]) + np.kron(S_e, np.eye(mt.n))
    o, u = ~vec(np.isnan(Yp)), vec(np.isnan(Yp))
    y_mis = cov[np.ix_(u, o)] @ np.linalg.solve(cov[np.ix_(o, o)], vec(Yp)[o])  # mu = 0
    g, _ = multitrait_moments(mt.multitrait_data, np.zeros((1, 2)), S_g[None], S_e[None], missing=y_mis[None, :])
    st_model = bb.GBLUP(Y["y1"], G)
    _, extra = posterior_moments(
        st_model.posterior_data, np.array([0.0]), np.array([0.5]), np.array([0.5]), targets=st_model.targets
    )
    hidden_ids = G.ids.astype(str)[hidden]
    mt_pred = pd.Series(g[0].mean, index=mt.ids.astype(str))[hidden_ids]
    unphenotyped = np.asarray(st_model.records.unphenotyped, dtype=str)
    st_pred = pd.Series(extra["unphenotyped"].mean, index=unphenotyped)[hidden_ids]
    r_mt = np.corrcoef(mt_pred, true_g1[hidden_ids])[0, 1]
    r_st = np.corrcoef(st_pred, true_g1[hidden_ids])[0, 1]
    assert r_mt > r_st + 0.1, (r_mt, r_st)


@pytest.mark.structural
def test_multitrait_fit_tables_and_names(data):
    G, _, Y = data
    model = bb.GBLUP(Y, G)
    assert model.traits == ("t1", "t2")
    assert model.parameter_names == [
        "h2_t1", "h2_t2", "r_g_t1_t2", "r_e_t1_t2", "sigma2_g_t1", "sigma2_g_t2", "sigma2_e_t1", "sigma2_e_t2",
        "mu_t1", "mu_t2",
    ]  # fmt: skip
    fit = model.fit(method="map", seed=1)
    gv = fit.genetic_values
    assert list(gv.columns) == ["id", "trait", "mean", "sd", "pev", "reliability", "phenotyped"]
    assert len(gv) == 2 * G.n_individuals and set(gv["trait"]) == {"t1", "t2"}
    summary = fit.to_dict()
    assert summary["trait"] == ["t1", "t2"] and "r_g_t1_t2" in summary["parameters"]
    with pytest.raises(bb.InputError, match="not available with several traits yet"):
        bb.GBLUP(Y, G, permanent_environment=True, repeated=True)


@pytest.mark.exact
def test_bglr_prior_uses_bglr_msx_and_the_df_its_sampler_uses(data):
    """BGLR Multitrait's MSx of G is ``tr(K+)/n - 1'K+1/n^2`` (covariance.bglr_rkhs_msx, recomputed here from
    the model's own eigendecomposition); its genetic inverse Wishart is sampled with df0 + t (docs)."""
    from bayesblup.models.covariance import bglr_multitrait_priors, bglr_rkhs_msx

    G, _, Y = data
    model = bb.GBLUP(Y, G, prior="bglr")
    p = G.index(model.ids)
    msx = bglr_rkhs_msx(G.matrix[np.ix_(p, p)])
    assert model._multitrait_msx(model.kernels[0]) == pytest.approx(msx, rel=1e-10)
    label, priors = model.priors
    expected = bglr_multitrait_priors(model.records.Y, msx, as_sampled=True)
    assert label == "bglr" and priors["Sigma_k"]["sigma2_g"][0] == expected["genetic"][0] == 2 * 2 + 1
    np.testing.assert_allclose(priors["Sigma_k"]["sigma2_g"][1], expected["genetic"][1], rtol=1e-10)
    np.testing.assert_allclose(priors["Sigma_e"][1], expected["residual"][1], rtol=1e-10)
    fit = model.fit(method="map", seed=1)  # the inverse Wishart priors build and optimise
    assert 0 < fit.summary().loc["h2_t1", "mean"] < 1


@pytest.mark.structural
def test_multitrait_cli_fit_writes_trait_rows_and_loads_back(tmp_path, data):
    """``bayesblup fit --trait t1 t2``: the out folder has per-trait parameters, one genetic-value row per
    individual and trait, and ``load_fit`` reads it back (MAP: the structure, quickly)."""
    import json

    from bayesblup.cli.main import main

    _, _, Y = data
    rng = np.random.default_rng(15)  # the fixture's genotypes again, as calls in a CSV
    geno, _ = simulate_genotypes(50, 80, allele_freq=rng.uniform(0.1, 0.9, 80), seed=rng)
    geno_csv = tmp_path / "geno.csv"
    pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers).to_csv(geno_csv)
    pheno_csv = tmp_path / "pheno.csv"
    Y.rename_axis("id").to_csv(pheno_csv)
    out = tmp_path / "fit"
    code = main(
        ["fit", "--genotypes", str(geno_csv), "--phenotypes", str(pheno_csv), "--trait", "t1", "t2",
         "--model", "gblup", "--method", "map", "--seed", "1", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trait"] == ["t1", "t2"]
    assert {"h2_t1", "h2_t2", "r_g_t1_t2", "r_e_t1_t2", "mu_t1"} <= set(summary["parameters"])
    gv = pd.read_csv(out / "genetic_values.csv")
    assert list(gv.columns) == ["id", "trait", "mean", "sd", "pev", "reliability", "phenotyped"]
    loaded = bb.load_fit(out)
    assert loaded.summary().loc["h2_t1", "mean"] == pytest.approx(summary["parameters"]["h2_t1"]["mean"], rel=1e-9)
    from bayesblup.cli.workflow import FitJob, run_fit

    job = FitJob(genotypes=str(geno_csv), phenotypes=str(pheno_csv), trait=["t1", "t2"], folds="t1")
    with pytest.raises(bb.InputError, match="--folds is not available with several traits yet"):
        run_fit(job, say=lambda _: None)


@pytest.mark.structural
def test_multitrait_fixed_effects_back_solve_and_refusals(data):
    G, W, Y = data
    rng = np.random.default_rng(2)
    fixed = pd.DataFrame({"age": rng.normal(size=len(Y)), "sex": rng.choice(["F", "M"], len(Y))}, index=Y.index)
    fit = bb.GBLUP(Y, G, fixed=fixed).fit(method="map", seed=1)
    rows = [name for name in fit.summary().index if name.startswith("beta[")]
    assert rows == ["beta[age, t1]", "beta[age, t2]", "beta[sex[M], t1]", "beta[sex[M], t2]"]
    rng = np.random.default_rng(15)  # the fixture's genotypes again
    geno, _ = simulate_genotypes(50, 80, allele_freq=rng.uniform(0.1, 0.9, 80), seed=rng)
    markers = fit.back_solve_markers(geno)
    assert list(markers.columns) == ["marker", "trait", "mean", "sd"] and len(markers) == 2 * W.values.shape[1]
    with pytest.raises(bb.InputError, match="reml takes one trait"):
        bb.reml(Y, G)
    with pytest.raises(bb.InputError, match="cross_validate takes one trait"):
        bb.cross_validate(lambda y: bb.GBLUP(y, G), Y, pd.Series(1, index=Y.index))
    with pytest.raises(bb.InputError, match="prior_sensitivity compares priors on one trait"):
        bb.prior_sensitivity(lambda prior: bb.GBLUP(Y, G, prior=prior), method="map")
    with pytest.raises(bb.InputError, match="weights are not available with several traits"):
        bb.GBLUP(Y, G, weights=pd.Series(1.0, index=Y.index))


@pytest.mark.structural
def test_a_dict_of_priors_sets_per_trait_priors_and_lkj_eta(data):
    """A dict as brms's sd and lkj priors: the h2 parameterisation or the variances, and LKJ(eta) correlations."""
    import pymc as pm

    G, W, Y = data
    model = bb.GBLUP(Y, G, prior={"h2": bb.Prior("Beta", alpha=2.0, beta=3.0), "R_g": bb.Prior("LKJCorr", eta=4.0)})
    m = model.model
    h2 = m["h2"]
    assert h2.owner.op.name == "beta" and m.named_vars_to_dims["h2"] == ("trait",)
    # log density of h2 = (0.3, 0.6) under Beta(2, 3) each; R_g's C-vine partial correlation under Beta(eta, eta)
    logp = m.compile_logp(vars=[h2, m["R_g_partial"], m["R_e_partial"]], jacobian=False)
    point = m.initial_point() | {
        "h2_logodds__": np.log([0.3 / 0.7, 0.6 / 0.4]),
        "R_g_partial_logodds__": np.array([0.0]),
    }
    point["R_e_partial_logodds__"] = np.array([0.0])
    expected = st.beta(2, 3).logpdf([0.3, 0.6]).sum() + st.beta(4, 4).logpdf(0.5) + st.beta(1, 1).logpdf(0.5)
    # 1e-6: PyTensor's log-beta function and SciPy's differ by about 5e-8 here
    assert float(logp(point)) == pytest.approx(expected, rel=1e-6)
    # the variances for M-BLUP: sigma2_b per trait, Sigma_g = c Sigma_b
    mb = bb.MBLUP(Y, W, prior={"sigma2_b": bb.Prior("HalfNormal", sigma=0.1), "sigma2_e": bb.Prior("HalfNormal")})
    assert {"sigma2_b", "sigma2_e"} <= set(mb.model.named_vars) and mb.model.named_vars_to_dims["sigma2_b"] == (
        "trait",
    )
    assert isinstance(mb.model["sigma2_b"].owner.op, type(pm.HalfNormal.dist(1.0).owner.op))
    for bad, says in [
        ({"h2": bb.Prior("Beta", alpha=2.0, beta=2.0), "sigma2_e": bb.Prior("HalfNormal")}, "not both"),
        ({"sigma2_g": bb.Prior("HalfNormal")}, "needs sigma2_e"),
        ({"R_g": bb.Prior("Beta", alpha=1.0, beta=1.0)}, "LKJCorr"),
        ({"mu": bb.Prior("Normal")}, "not mu"),
    ]:
        with pytest.raises(bb.InputError, match=says):
            _ = bb.GBLUP(Y, G, prior=bad).model


@pytest.mark.exact
def test_posterior_mode_under_flat_priors_is_the_dense_ml_and_near_the_dense_reml():
    """fit(method="map") with flat priors on the variances against two numpy oracles (n = 150, two traits).

    - The dense maximum likelihood (BFGS on ``oracles_multitrait.dense_logp`` over mu and the Cholesky factors):
      with ``HalfFlat`` variances and LKJ(1) (flat for one correlation), the posterior mode in the model's
      coordinates is the ML estimate; mu's Normal(mean, 10 sd) prior moves it by about 1e-4 of an sd. Agreement to
      2e-3 relative (measured: 2e-4; both optimisers stop at a gradient near 1e-5).
    - The dense REML (``oracles_multitrait.reml``): ML and REML differ by the degrees of freedom REML gives to the
      two means, a fraction of a standard error (measured here: at most 0.17 of the REML standard error, from the
      inverse expected information); every entry of Sigma_g and Sigma_e within 0.25 of it. A likelihood off by a
      factor (c, a transposed covariance) moves the mode by several standard errors.
    """
    from oracles_multitrait import reml
    from scipy.optimize import minimize

    rng = np.random.default_rng(21)
    geno, _ = simulate_genotypes(150, 400, allele_freq=rng.uniform(0.1, 0.9, 400), seed=rng)
    G = bb.genomic_relationship(geno)
    Y = simulate_multitrait(G, Sigma_g=SIGMA_G, Sigma_e=SIGMA_E, mu=[1.0, -2.0], seed=22)
    flat = {"sigma2_g": bb.Prior("HalfFlat"), "sigma2_e": bb.Prior("HalfFlat")}
    model = bb.GBLUP(Y, G, prior=flat)
    fit = model.fit(method="map")
    post = fit.datatree.posterior
    traits = list(model.traits)

    def covariance(kind):
        sd = np.sqrt([float(post[f"sigma2_{kind}_{t}"].values.ravel()[0]) for t in traits])
        r = float(post[f"r_{kind}_{traits[0]}_{traits[1]}"].values.ravel()[0])
        return np.outer(sd, sd) * np.array([[1.0, r], [r, 1.0]])

    S_g, S_e = covariance("g"), covariance("e")
    Gp = G.matrix[np.ix_(G.index(model.ids), G.index(model.ids))]
    Yp = model.records.Y

    def negative(theta):
        mu, a, b = theta[:2], theta[2:5], theta[5:]
        L_g = np.array([[np.exp(a[0]), 0.0], [a[1], np.exp(a[2])]])
        L_e = np.array([[np.exp(b[0]), 0.0], [b[1], np.exp(b[2])]])
        return -dense_logp(Yp, Gp, mu, L_g @ L_g.T, L_e @ L_e.T)

    def pack(S):
        L = np.linalg.cholesky(S)
        return [np.log(L[0, 0]), L[1, 0], np.log(L[1, 1])]

    start = np.concatenate([np.nanmean(Yp, axis=0), pack(np.cov(Yp.T) / 2), pack(np.cov(Yp.T) / 2)])
    ml = minimize(negative, start, method="BFGS", options={"gtol": 1e-7})
    a, b = ml.x[2:5], ml.x[5:]
    L_g = np.array([[np.exp(a[0]), 0.0], [a[1], np.exp(a[2])]])
    L_e = np.array([[np.exp(b[0]), 0.0], [b[1], np.exp(b[2])]])
    np.testing.assert_allclose(S_g, L_g @ L_g.T, rtol=2e-3, atol=2e-3 * SIGMA_G.max())
    np.testing.assert_allclose(S_e, L_e @ L_e.T, rtol=2e-3, atol=2e-3 * SIGMA_E.max())
    ref = reml(Yp, Gp)
    assert ref.success
    se = np.sqrt(np.diag(np.linalg.inv(ref.fisher)))  # vech(Sigma_g), then vech(Sigma_e): (0,0), (1,0), (1,1)
    ours = np.array([S_g[0, 0], S_g[1, 0], S_g[1, 1], S_e[0, 0], S_e[1, 0], S_e[1, 1]])
    theirs = np.array(
        [*(ref.Sigma_g[i, j] for i, j in ((0, 0), (1, 0), (1, 1)))]
        + [ref.Sigma_e[i, j] for i, j in ((0, 0), (1, 0), (1, 1))]
    )
    assert np.all(np.abs(ours - theirs) < 0.25 * se), (ours, theirs, se)


def _two_traits(Y, how: str) -> pd.DataFrame:
    Y = Y.copy()
    if how == "duplicate names":
        Y.columns = ["t1", "t1"]
    elif how == "text":
        Y["t2"] = Y["t2"].astype(object)
        Y.iloc[1, 1] = "x"
    elif how == "two records":
        Y.loc[Y.index[2:], "t2"] = np.nan
    elif how == "constant":
        Y["t2"] = 1.0
    elif how == "duplicate ids":
        Y = pd.concat([Y, Y.iloc[4:6]])
    elif how == "infinite":
        Y.iloc[4, 0] = np.inf
    elif how == "a copy in other units":
        Y["t2"] = 2.54 * Y["t1"] + 1.0
    return Y


@pytest.mark.structural
@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("duplicate names", "appear twice"),
        ("text", "non-numeric value 'x'"),
        ("two records", "at least 3"),
        ("constant", "is constant"),
        ("duplicate ids", "several rows"),
        ("infinite", "infinite value"),
        ("a copy in other units", "linear function of the other"),
    ],
)
def test_traits_that_cannot_be_fitted_are_refused_before_sampling(data, how, says):
    G, _, Y = data
    with pytest.raises(bb.InputError, match=says):
        bb.GBLUP(_two_traits(Y, how), G)


@pytest.mark.structural
def test_strongly_but_not_perfectly_correlated_traits_are_fitted(data):
    """r_p = 0.99 is a trait pair a breeder may well have (two close environments): built, not refused."""
    G, _, Y = data
    Y = Y.copy()
    rng = np.random.default_rng(2)
    Y["t2"] = Y["t1"] + rng.normal(0.0, 0.14 * np.nanstd(Y["t1"]), len(Y))
    shared = Y.dropna()
    assert 0.98 < np.corrcoef(shared["t1"], shared["t2"])[0, 1] < 0.9999
    assert bb.GBLUP(Y, G).model is not None


@pytest.mark.exact
def test_latent_form_integrates_missing_records_out_of_each_row_exactly(data):
    """Given g, each individual's observed traits are normal with Sigma_e's block of them: the potential equals
    the sum of those densities (scipy, row by row) at random points, to 1e-10."""
    G, _, Y = data
    model = bb.GBLUP(Y, G, form="latent")
    m = model.model
    assert "z_missing" not in m.named_vars  # nothing to sample for the missing records
    traits = list(model.traits)
    outs = [m["y"], m["g"], m["mu"]]
    outs += [m[f"sigma2_e_{t}"] for t in traits] + [m[f"r_e_{traits[0]}_{traits[1]}"]]
    f = m.compile_fn(m.replace_rvs_by_values(outs), inputs=m.value_vars, on_unused_input="ignore")
    rng = np.random.default_rng(9)
    point = m.initial_point()
    Yp = model.records.Y
    for _ in range(3):
        point = {k: v + rng.normal(0.0, 0.4, np.shape(v)) for k, v in point.items()}
        y, g, mu, s1, s2, r = f(point)
        S = np.array([[s1, r * np.sqrt(s1 * s2)], [r * np.sqrt(s1 * s2), s2]])
        expected = 0.0
        for i in range(model.n):
            o = ~np.isnan(Yp[i])
            expected += st.multivariate_normal(mu[o] + g[i, o], S[np.ix_(o, o)]).logpdf(Yp[i, o])
        assert float(y) == pytest.approx(expected, rel=1e-10)
