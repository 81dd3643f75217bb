"""Model comparison by LOO: the ``log_likelihood``, ``observed_data`` and ``posterior_predictive`` groups.

Exact (1e-8 relative): ``log p(y_i | y_-i, theta)`` on every marginal path equals the conditional normal of a dense
oracle (V over the records formed and inverted); for n = 2 it is the bivariate normal's conditional, and its sum is
not the joint logp while the chain rule's is; the latent forms' ``log p(y_i | g, theta)`` equals scipy's normal and
probit densities, and PyMC's own pointwise log-likelihood of the latent model at the same draws.
Structural: the groups' names, dims and coordinates, the default and its size rule, refusals, save and load,
``az.plot_ppc_dist``, the command line.
Recovery: PSIS-LOO against exact leave-one-out refits, and ``az.compare`` ranking the true kernel first.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import xarray as xr

import bayesblup as bb
from bayesblup.errors import InputError
from bayesblup.inference import pointwise
from bayesblup.results import loo
from bayesblup.testing import simulate_genotypes, simulate_records

D = 60  # draws of theta per oracle check: more than the range finder's rank, so its truncation is exercised


@pytest.fixture(scope="module")
def data():
    """40 individuals (m = 120 markers, G full rank), records 1-4 each with weights, sex and age; 20% without."""
    p = np.random.default_rng(5).uniform(0.2, 0.8, size=120)
    geno, _ = simulate_genotypes(40, 120, allele_freq=p, seed=6)
    G = bb.genomic_relationship(geno, scaling="standardized-hwe", allele_freq=p)
    W = bb.genotype_matrix(geno, scaling="standardized-hwe", allele_freq=p)
    sim = simulate_records(
        W.values, geno.ids, h2=0.4, pe_share=0.2, records=(1, 4), weights=(1, 3), sex_effect=0.8, age_slope=0.1,
        unphenotyped=0.2, seed=11,
    )  # fmt: skip
    return geno, G, W, sim.table


def _oracle(model, post) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` (D, N) from V over the records, formed and inverted densely, draw by draw."""
    rec = model.records
    n, N = model.n, model.n_records
    Z = np.zeros((N, n))
    Z[np.arange(N), rec.record_index] = 1.0
    flat = {name: np.asarray(post[name].values).reshape(post.sizes["chain"] * post.sizes["draw"], -1) for name in post}
    out = []
    for d in range(flat["mu"].shape[0]):
        A = sum(flat[k.variance_name][d, 0] * k.matrix() for k in model.kernels)
        if model.permanent_environment:
            A = A + flat["sigma2_pe"][d, 0] * np.eye(n)
        V = Z @ A @ Z.T + np.diag(flat["sigma2_e"][d, 0] / rec.record_weights)
        P = np.linalg.inv(V)
        r = rec.y - flat["mu"][d, 0] - (0.0 if rec.X is None else rec.X @ flat["beta"][d])
        Pr, Pii = P @ r, np.diag(P)
        out.append(st.norm.logpdf(rec.y, rec.y - Pr / Pii, 1.0 / np.sqrt(Pii)))
    return np.array(out)


def _posterior(model, seed: int) -> xr.Dataset:
    """Draws of theta, one chain of D, named as the posterior names them (variances spread over a decade)."""
    rng = np.random.default_rng(seed)
    shape = (1, D)
    out = {"mu": (("chain", "draw"), rng.normal(10.0, 0.3, shape)), "sigma2_e": (("chain", "draw"),
           rng.uniform(0.2, 0.8, shape))}  # fmt: skip
    for k in model.kernels:
        out[k.variance_name] = (("chain", "draw"), rng.uniform(0.05, 0.8, shape) * (1.0 if k.markers is None else
                                                                                   1.0 / k.n_markers))  # fmt: skip
    if model.permanent_environment:
        out["sigma2_pe"] = (("chain", "draw"), rng.uniform(0.05, 0.4, shape))
    if model.records.X is not None:
        out["beta"] = (("chain", "draw", "covariate"), rng.normal(0.0, 0.5, (*shape, model.records.n_covariates)))
    return xr.Dataset(out, coords={"chain": [0], "draw": np.arange(D)})


def _one_each(table: pd.DataFrame) -> pd.DataFrame:
    return table[~table.index.duplicated()]


CASES = {
    # name: (builder(geno, G, W, table), expected path)
    "gblup": (lambda g, G, W, t: bb.GBLUP(_one_each(t)["y"], G), "spectral"),
    "mblup dense": (lambda g, G, W, t: bb.MBLUP(_one_each(t)["y"], W, path="dense"), "spectral"),
    "repeated, weights, fixed": (
        lambda g, G, W, t: bb.GBLUP(t["y"], G, fixed=t[["sex", "age"]], weights=t["w"], repeated=True), "spectral"),
    "permanent environment, equal totals": (
        lambda g, G, W, t: bb.GBLUP(t["y"], G, fixed=t[["sex"]], weights=3.0 / t.groupby(level=0, sort=False)["w"]
                                    .transform("size"), permanent_environment=True), "spectral"),
    "permanent environment, unequal totals": (
        lambda g, G, W, t: bb.GBLUP(t["y"], G, weights=t["w"], permanent_environment=True), "spectral"),
    "low-rank": (
        lambda g, G, W, t: bb.MBLUP(t["y"], bb.genotype_matrix(_few_markers(g)), weights=t["w"], repeated=True),
        "low-rank"),
    "two kernels, woodbury": (
        lambda g, G, W, t: bb.MultiGBLUP(t["y"], bb.relationships_by_set(g, {"a": list(g.markers[:10])}),
                                         fixed=t[["age"]], weights=t["w"], repeated=True), "woodbury"),
    "three kernels, woodbury": (
        lambda g, G, W, t: bb.MultiGBLUP(_one_each(t)["y"], bb.relationships_by_set(
            g, {"a": list(g.markers[:10]), "b": list(g.markers[10:16])})), "woodbury"),
    "two kernels, woodbury, permanent environment": (
        lambda g, G, W, t: bb.MultiMBLUP(t["y"], bb.genotype_matrices_by_set(g, {"a": list(g.markers[:10])}),
                                         weights=3.0 / t.groupby(level=0, sort=False)["w"].transform("size"),
                                         permanent_environment=True), "woodbury"),
    "two kernels, dense": (
        lambda g, G, W, t: bb.MultiGBLUP(t["y"], bb.relationships_by_set(g, {"a": list(g.markers[:10])}),
                                         weights=t["w"], permanent_environment=True), "dense"),
}  # fmt: skip


def _few_markers(geno):
    """The first 15 markers' genotypes (fewer markers than individuals: the low-rank path)."""
    from bayesblup.genotypes.calls import Genotypes

    return Genotypes(calls=geno.calls[:, :15], ids=geno.ids, markers=geno.markers[:15], coding=geno.coding,
                     source="first 15 markers")  # fmt: skip


@pytest.mark.exact
@pytest.mark.parametrize("case", list(CASES))
def test_conditional_density_equals_the_dense_oracle(data, case):
    """Every marginal path gives the dense conditional normal of each record given all others, to 1e-8."""
    build, path = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.DataWarning)
        model = build(*data)
    assert model.path == path
    post = _posterior(model, seed=len(case))
    got = loo._pointwise(model, post)
    want = _oracle(model, post)
    assert got.shape == (D, model.n_records)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * np.abs(want).max())


@pytest.mark.exact
def test_two_records__the_conditional_is_the_bivariate_normals_and_the_sum_is_not_the_joint():
    """n = 2: log p(y_1 | y_2, theta) is the bivariate normal's conditional; the chain rule, not the sum, is logp."""
    from bayesblup.models.data import SpectralData

    G = np.array([[1.0, 0.6], [0.6, 1.2]])
    y = pd.Series([1.3, -0.4], index=["a", "b"])
    rec = bb.Records(y=y.to_numpy(), ids=np.array(["a", "b"]), trait="y", n_missing=0, unphenotyped=())
    spectral = SpectralData.build(rec, bb.eigendecompose(G), c=1.0, scale=None, pe_path="none")
    mu, sg, se = 0.2, 0.7, 0.5
    got = pointwise.spectral_conditional(spectral, rec, np.array([mu]), np.array([sg]), np.array([se]))[0]
    V = sg * G + se * np.eye(2)
    for i, j in ((0, 1), (1, 0)):
        mean = mu + V[i, j] / V[j, j] * (y.iloc[j] - mu)
        var = V[i, i] - V[i, j] ** 2 / V[j, j]
        assert got[i] == pytest.approx(st.norm.logpdf(y.iloc[i], mean, np.sqrt(var)), rel=1e-12)
    joint = st.multivariate_normal.logpdf(y.to_numpy(), np.full(2, mu), V)
    chain_rule = st.norm.logpdf(y.iloc[1], mu, np.sqrt(V[1, 1])) + got[0]  # log p(y_2) + log p(y_1 | y_2)
    assert chain_rule == pytest.approx(joint, rel=1e-12)
    assert abs(got.sum() - joint) > 0.01  # the pointwise terms are not a factorisation of the joint density


@pytest.mark.exact
def test_latent_densities_equal_scipys():
    """Gaussian records given g: scipy's normal logpdf; probit categories: scipy's logcdf and logsf, in the tails."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=7)
    rec = bb.Records(y=y, ids=np.array([f"i{k}" for k in range(7)]), trait="y", n_missing=0, unphenotyped=(),
                     weights=rng.uniform(0.5, 2, 7))  # fmt: skip
    eta, s2e = rng.normal(size=(3, 7)), rng.uniform(0.3, 1, 3)
    want = st.norm.logpdf(y[None, :], eta, np.sqrt(s2e[:, None] / rec.weights[None, :]))
    np.testing.assert_allclose(pointwise.latent_gaussian_log_density(rec, eta, s2e), want, rtol=1e-12)
    # binary: P(y = 1) = Phi(eta), P(y = 0) = Phi(-eta); liabilities far in either tail
    eta = np.array([[-40.0, -5.0, 0.3, 5.0, 40.0, 2.0]])
    codes = np.array([1, 1, 0, 0, 0, 1])
    want = np.where(codes == 1, st.norm.logcdf(eta), st.norm.logsf(eta))
    np.testing.assert_allclose(pointwise.threshold_log_density(codes, eta, np.zeros((1, 1))), want, rtol=1e-10)
    # ordinal, three categories: Phi(tau_k - eta) - Phi(tau_{k-1} - eta)
    tau = np.array([[-0.5, 0.8]])
    eta = np.array([[-30.0, 0.1, 30.0, 0.1, 2.0, -3.0, 9.0, -30.0, -30.0]])
    codes = np.array([0, 1, 1, 2, 1, 1, 2, 1, 2])
    bounds = np.array([-np.inf, -0.5, 0.8, np.inf])
    lo, hi = bounds[codes] - eta, bounds[codes + 1] - eta
    with np.errstate(divide="ignore"):  # the upper tail's differences round to 0: replaced below
        want = np.log(st.norm.cdf(hi) - st.norm.cdf(lo))
    # exact where the difference is representable; in the far tails from scipy's logsf (both bounds above 0)
    far = lo > 5
    want[far] = st.norm.logsf(lo[far]) + np.log1p(-np.exp(st.norm.logsf(hi[far]) - st.norm.logsf(lo[far])))
    np.testing.assert_allclose(pointwise.threshold_log_density(codes, eta, tau), want, rtol=1e-10, atol=1e-14)


def _pymc_log_likelihood(model, datatree) -> np.ndarray:
    """PyMC's own pointwise log-likelihood of the latent model's observed ``y`` at the fit's draws: (D, N)."""
    import pymc as pm

    tree = xr.DataTree.from_dict({"posterior": datatree["posterior"].to_dataset()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyMC's notes on the Deterministics it does not need
        out = pm.compute_log_likelihood(tree, model=model.model, var_names=["y"], extend_inferencedata=False,
                                        progressbar=False)  # fmt: skip
    return np.asarray(out["y"].values).reshape(-1, model.n_records)


@pytest.mark.exact
def test_latent_form__log_likelihood_is_pymcs_pointwise_at_the_same_draws(data, mock_pymc_sample):
    """The latent Gaussian form: log p(y_i | g, theta) from the posterior's g, pe, beta, equal to PyMC's own.

    Repeated, weighted records with a permanent environment and fixed effects; the draws are PyMC's mock (prior
    draws), the comparison at the same draws.
    """
    _, G, _, table = data
    model = bb.GBLUP(table["y"], G, form="latent", fixed=table[["sex", "age"]], weights=table["w"],
                     permanent_environment=True)  # fmt: skip
    fit = model.fit(chains=2, draws=5, tune=0, seed=2)
    got = np.asarray(fit.datatree["log_likelihood"]["y"].values).reshape(-1, model.n_records)
    np.testing.assert_allclose(got, _pymc_log_likelihood(model, fit.datatree), rtol=1e-8)


@pytest.mark.exact
@pytest.mark.parametrize("family", ["binary", "ordinal"])
def test_threshold__log_likelihood_is_the_probit_probability_by_scipy(data, family):
    """log P(y_i = k | g, theta) of a binary or ordinal trait, from the posterior's g, mu or thresholds, and beta."""
    _, G, _, table = data
    y = _one_each(table)["y"]
    cut = y > y.median() if family == "binary" else np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    model = bb.GBLUP(pd.Series(np.asarray(cut, dtype=float), index=y.index), G, family=family,
                     fixed=_one_each(table)[["age"]])  # fmt: skip
    rng = np.random.default_rng(4)
    n_all, n = model.individuals.size, model.n
    g = rng.normal(0.0, 1.0, (1, D, n_all))
    beta = rng.normal(0.0, 0.1, (1, D, 1))
    post = {"g": (("chain", "draw", "individual"), g), "beta": (("chain", "draw", "covariate"), beta)}
    eta = g[0][:, :n] + beta[0] @ model.records.X.T
    codes = model.categories.codes
    if family == "binary":
        mu = rng.normal(0.0, 1.0, (1, D))
        post["mu"] = (("chain", "draw"), mu)
        eta = eta + mu[0][:, None]
        want = np.where(codes == 1, st.norm.logcdf(eta), st.norm.logsf(eta))
    else:
        tau = np.sort(rng.normal(0.0, 1.0, (1, D, 2)), axis=-1)
        post["thresholds"] = (("chain", "draw", "threshold"), tau)
        bounds = np.concatenate([np.full((D, 1), -np.inf), tau[0], np.full((D, 1), np.inf)], axis=1)
        lo, hi = bounds[:, codes] - eta, bounds[:, codes + 1] - eta
        # the difference of the two tail areas on the side where they are small: no cancellation
        want = np.log(np.where(lo > 0, st.norm.sf(lo) - st.norm.sf(hi), st.norm.cdf(hi) - st.norm.cdf(lo)))
    got = loo._pointwise(model, xr.Dataset(post))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    observed = loo.observed_dataset(model)  # the records as given, not the category codes
    np.testing.assert_array_equal(observed["y"].values, model.records.y)


# --- structure -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    """80 individuals, 60 markers, h2 0.6, one record each; G-BLUP."""
    geno, _ = simulate_genotypes(80, 60, seed=21)
    W = bb.genotype_matrix(geno)
    y = simulate_records(W.values, geno.ids, h2=0.6, seed=22).table["y"]
    return geno, bb.genomic_relationship(geno), y


@pytest.fixture(scope="module")
def quad_fit(small):
    _, G, y = small
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.RankDeficiencyWarning)
        return bb.GBLUP(y, G).fit(method="quadrature", chains=2, draws=250, seed=1)


@pytest.mark.structural
def test_groups__names_dims_and_coordinates(quad_fit, small):
    """A quadrature fit carries the groups: the trait's name, dims (chain, draw, record), the IDs as records."""
    _, _, y = small
    tree = quad_fit.datatree
    assert quad_fit.settings["log_likelihood"] is True and "log_likelihood_s" in quad_fit.timings
    ll = tree["log_likelihood"]
    assert list(ll.data_vars) == ["y"] and ll["y"].dims == ("chain", "draw", "record")
    assert ll.sizes == {"chain": 2, "draw": 250, "record": 80}
    assert ll["chain"].values.tolist() == tree["posterior"]["chain"].values.tolist()
    observed = tree["observed_data"]
    assert list(observed.data_vars) == ["y"] and observed["record"].values.tolist() == y.index.tolist()
    np.testing.assert_array_equal(observed["y"].values, y.to_numpy())
    assert ll["record"].values.tolist() == observed["record"].values.tolist()
    assert np.isfinite(ll["y"].values).all()


@pytest.mark.structural
def test_groups__nuts_fit_moves_the_rotated_records_to_constant_data(data):
    """PyMC's observed y_rotated (dim component) goes to constant_data; observed_data holds the records, id#k."""
    _, G, _, table = data
    fit = bb.GBLUP(table["y"], G, weights=table["w"], repeated=True).fit(chains=2, draws=20, tune=20, seed=1)
    tree = fit.datatree
    assert list(tree["observed_data"].data_vars) == ["y"]
    assert "y_rotated" in tree["constant_data"] and tree["constant_data"]["y_rotated"].dims == ("component",)
    labels = tree["observed_data"]["record"].values.tolist()
    first = table.index[0]
    assert labels[0] == f"{first}#1" and len(set(labels)) == len(labels) == len(table)
    assert tree["log_likelihood"]["record"].values.tolist() == labels


@pytest.mark.structural
def test_default__the_size_rule_leaves_it_out_and_says_how_to_add_it(small, monkeypatch):
    _, G, y = small
    monkeypatch.setattr(loo, "LOG_LIKELIHOOD_FLOPS", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.RankDeficiencyWarning)
        fit = bb.GBLUP(y, G).fit(method="quadrature", chains=1, draws=50, seed=1)
    assert "log_likelihood" not in fit.datatree.children and fit.settings["log_likelihood"] is False
    assert "compute_log_likelihood()" in fit.settings["log_likelihood_note"]
    assert "observed_data" in fit.datatree.children  # the records are there whatever the rule
    tree = fit.compute_log_likelihood()
    assert tree is fit.datatree and tree["log_likelihood"]["y"].shape == (1, 50, 80)
    assert fit.settings["log_likelihood"] is True and "log_likelihood_note" not in fit.settings
    off = bb.GBLUP(y, G).fit(method="quadrature", chains=1, draws=20, seed=1, log_likelihood=False)
    assert "log_likelihood" not in off.datatree.children and "log_likelihood_note" not in off.settings


@pytest.mark.structural
def test_refusals__map_several_traits_and_a_fit_read_back(small, tmp_path):
    _, G, y = small
    model = bb.GBLUP(y, G)
    with pytest.raises(InputError, match="needs posterior draws and method='map'"):
        model.fit(method="map", log_likelihood=True)
    assert model._model is None  # refused before the model was built or sampled
    fit = model.fit(method="map", seed=1)  # the default leaves it out, saying why
    assert "log_likelihood" not in fit.datatree.children and "method='map'" in fit.settings["log_likelihood_note"]
    with pytest.raises(InputError, match="posterior_predictive needs posterior draws"):
        fit.sample_posterior_predictive()
    Y = pd.DataFrame({"a": y, "b": y[::-1].to_numpy()}, index=y.index)
    with pytest.raises(InputError, match="not available for several traits yet"):
        bb.GBLUP(Y, G).fit(log_likelihood=True)
    quad = model.fit(method="quadrature", chains=1, draws=20, seed=1)
    quad.save(tmp_path / "fit")
    with pytest.raises(InputError, match="compute_log_likelihood needs the model"):
        bb.load_fit(tmp_path / "fit").compute_log_likelihood()


@pytest.mark.structural
def test_save_and_load_keep_the_groups(quad_fit, tmp_path):
    quad_fit.sample_posterior_predictive(seed=4)
    quad_fit.save(tmp_path / "fit")
    back = bb.load_fit(tmp_path / "fit")
    for group in ("log_likelihood", "observed_data", "posterior_predictive"):
        xr.testing.assert_identical(back.datatree[group].to_dataset(), quad_fit.datatree[group].to_dataset())
    assert back.settings["log_likelihood"] is True


@pytest.mark.structural
def test_posterior_predictive__plot_ppc_dist_draws_it(quad_fit):
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tree = quad_fit.sample_posterior_predictive(seed=5)
    pp = tree["posterior_predictive"]["y"]
    assert pp.dims == ("chain", "draw", "record") and pp.shape == (2, 250, 80)
    again = quad_fit.sample_posterior_predictive(seed=5)["posterior_predictive"]["y"]
    np.testing.assert_array_equal(pp.values, again.values)  # seeded
    pc = az.plot_ppc_dist(tree, num_samples=20)
    assert type(pc).__name__ == "PlotCollection"
    plt.close("all")


@pytest.mark.recovery
def test_posterior_predictive__the_marginal_draws_have_the_models_covariance(small):
    """y_rep ~ N(mu + X beta, V(theta)): at one fixed theta, the draws' covariance is V to Monte Carlo error.

    40,000 draws: the sd of a sample covariance entry is at most sqrt(2 V_ii V_jj / 40000), 0.7% in units of the
    diagonals; the tolerance, 0.05, is seven of those, ample for the largest of 3240 entries (about 4 sd).
    """
    _, G, y = small
    model = bb.GBLUP(y, G)
    fit = model.fit(method="quadrature", chains=1, draws=40_000, seed=3, log_likelihood=False)
    post = fit.datatree["posterior"]
    for name, value in {"mu": 1.0, "sigma2_g": 0.6, "sigma2_e": 0.4}.items():
        post[name].values[:] = value
    draws = fit.sample_posterior_predictive(seed=6)["posterior_predictive"]["y"].values.reshape(-1, 80)
    V = 0.6 * G.matrix + 0.4 * np.eye(80)
    scale = np.sqrt(np.outer(np.diag(V), np.diag(V)))
    assert np.abs(draws.mean(0) - 1.0).max() < 6 * np.sqrt(np.diag(V).max() / 40_000)
    assert np.abs((np.cov(draws.T) - V) / scale).max() < 0.05


# --- recovery --------------------------------------------------------------------------------------------------


@pytest.mark.recovery
def test_psis_loo_recovers_exact_leave_one_out(small):
    """PSIS-LOO's pointwise elpd equals exact LOO (the record left out, the model refitted) within MC error.

    Exact: ``log mean_d p(y_i | y_-i, theta_d)`` over 4000 independent quadrature draws of ``p(theta | y_-i)``.
    Both sides are Monte Carlo estimates of one number from 4000 independent draws (PSIS's weights are near
    uniform: leaving one record out moves theta little), each with an sd of about ``sd_d(log p) / sqrt(4000)``
    (delta method; 0.003 to 0.006 here); the tolerance is 6 sd of their difference.
    """
    import arviz as az

    _, G, y = small
    model = bb.GBLUP(y, G)
    fit = model.fit(method="quadrature", chains=4, draws=1000, seed=7)
    psis = az.loo(fit.datatree, pointwise=True).elpd_i.values
    for i in (0, 17, 55):
        left_out = y.copy()
        left_out.iloc[i] = np.nan
        refit = bb.GBLUP(left_out, G).fit(method="quadrature", chains=4, draws=1000, seed=8, log_likelihood=False)
        # the full model's conditional density at the refit's draws: record i given the others
        terms = loo._pointwise(model, refit.datatree["posterior"])[:, i]
        exact = np.logaddexp.reduce(terms) - np.log(terms.size)
        assert psis[i] == pytest.approx(exact, abs=6 * np.sqrt(2) * terms.std() / np.sqrt(terms.size))


@pytest.mark.recovery
def test_compare_ranks_the_true_kernel_first():
    """az.compare puts G-BLUP on the genotypes that made the records above G-BLUP on unrelated genotypes.

    150 individuals, h2 = 0.6 on 60 markers: G explains the genetic variance, an unrelated G none of it (its fit
    is close to an iid model). Measured at three seeds (31, 32, 33): elpd differences 50, 30 and 70 with dse 7.9,
    7.4 and 9.7, stacking weight 1.0 for the true model; the test (seed 31) asks for a difference of at least 3
    dse and a weight above 0.9.
    """
    import arviz as az

    geno, _ = simulate_genotypes(150, 60, seed=31)
    y = simulate_records(bb.genotype_matrix(geno).values, geno.ids, h2=0.6, seed=131).table["y"]
    G = bb.genomic_relationship(geno)
    other, _ = simulate_genotypes(150, 60, seed=231)
    unrelated = bb.Relationship(bb.genomic_relationship(other).matrix, G.ids, "user")
    true = bb.GBLUP(y, G).fit(method="quadrature", chains=2, draws=500, seed=1)
    wrong = bb.GBLUP(y, unrelated).fit(method="quadrature", chains=2, draws=500, seed=1)
    table = az.compare({"true": true.datatree, "wrong": wrong.datatree}, round_to=None)
    assert table.index[0] == "true"
    assert -table.loc["wrong", "elpd_diff"] > 3 * table.loc["wrong", "dse"]
    assert table.loc["true", "weight"] > 0.9
