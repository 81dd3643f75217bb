"""Several traits with several kernels (marker sets) against dense oracles (tests/oracles_multitrait.py).

The marginal form integrates the background kernel (largest rank) out in its eigenbasis and keeps the other
kernels' effects explicit (bayesblup.models.multitrait.explicit_effects). Exact, 1e-8 relative (the same numbers
through a different order of floating-point operations):

- its log-likelihood, at any point of the model, is the dense multivariate normal of the completed records less
  the explicit kernels' genetic values, with the background's covariance ``Sigma_bg ⊗ K_bg + Sigma_e ⊗ I``; with
  the missing records integrated out, that of the observed records alone;
- the latent form's is the records' density given every kernel's g;
- the genetic values: given a draw, the integrated kernel's part is Henderson's solution for the records less the
  explicit parts, and the total adds them; over draws, the laws of total expectation and variance.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from oracles_multitrait import dense_logp, henderson, vec

import bayesblup as bb
from bayesblup.inference.missing import MissingLayout, draw_missing
from bayesblup.inference.posterior import multitrait_moments
from bayesblup.testing import simulate_genotypes, simulate_multitrait

SIGMA_G = np.array([[0.6, 0.3], [0.3, 0.5]])
SIGMA_E = np.array([[0.5, 0.1], [0.1, 0.7]])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(16)
    geno, _ = simulate_genotypes(50, 80, allele_freq=rng.uniform(0.1, 0.9, 80), seed=rng)
    sets = {"feature": list(geno.markers[:20])}  # the other 60 markers: "rest", the background
    G_sets = bb.relationships_by_set(geno, sets)
    W_sets = bb.genotype_matrices_by_set(geno, sets)
    Y = simulate_multitrait(bb.genomic_relationship(geno), Sigma_g=SIGMA_G, Sigma_e=SIGMA_E, mu=[1.0, -2.0],
                            missing=0.2, seed=3)  # fmt: skip
    Y.iloc[:3] = np.nan  # three genotyped individuals with no record at all
    return G_sets, W_sets, Y


def _model(kind: str, data, **options):
    G_sets, W_sets, Y = data
    return bb.MultiGBLUP(Y, G_sets, **options) if kind == "gblup" else bb.MultiMBLUP(Y, W_sets, **options)


def _evaluate(model, names: list[str], seed: int) -> dict:
    """The model's own tensors (parameters, potentials) at a random point of its value variables."""
    pm_model = model.model
    mp = model.multitrait_parameters
    tensors = [mp[name] if name in mp else pm_model[name] for name in names]
    f = pm_model.compile_fn(pm_model.replace_rvs_by_values(tensors), inputs=pm_model.value_vars,
                            on_unused_input="ignore")  # fmt: skip
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0.0, 0.4, np.shape(v)) for k, v in pm_model.initial_point().items()}
    return {name: np.asarray(value) for name, value in zip(names, f(point), strict=True)}


def _completed(model, y_missing) -> np.ndarray:
    Y = model.records.Y.copy()
    Y[np.isnan(Y)] = y_missing  # the model's order of the unknowns: numpy's nonzero order, row by row
    return Y


@pytest.mark.exact
@pytest.mark.parametrize("kind", ["gblup", "mblup"])
def test_likelihood_is_the_dense_mvn_given_the_explicit_kernels(data, kind):
    model = _model(kind, data)
    assert model.path == "explicit" and model.background == "rest"
    names = ["y_rotated", "mu", "Sigma_k", "Sigma_e", "offset", "y_missing"]
    for seed in (1, 2):
        v = _evaluate(model, names, seed)
        K = model.kernel("rest").matrix()  # the background's K (G, or W W') over the individuals with a record
        Y = _completed(model, v["y_missing"])
        joint = dense_logp(Y - v["offset"], K, v["mu"], v["Sigma_k"], v["Sigma_e"])
        assert float(v["y_rotated"]) == pytest.approx(joint, rel=1e-8)
        # integrated over the missing records: log p(y_obs) = log p(y_obs, y_mis) - log p(y_mis | y_obs)
        miss = np.isnan(model.records.Y)
        n = model.n
        cov = np.kron(v["Sigma_k"], K) + np.kron(v["Sigma_e"], np.eye(n))
        m = vec(np.outer(np.ones(n), v["mu"]) + v["offset"])
        o, u = ~vec(miss), vec(miss)
        solve = np.linalg.solve(cov[np.ix_(o, o)], np.column_stack([vec(Y)[o] - m[o], cov[np.ix_(o, u)]]))
        conditional = st.multivariate_normal(
            m[u] + cov[np.ix_(u, o)] @ solve[:, 0], cov[np.ix_(u, u)] - cov[np.ix_(u, o)] @ solve[:, 1:]
        ).logpdf(vec(Y)[u])
        observed = dense_logp(model.records.Y - v["offset"], K, v["mu"], v["Sigma_k"], v["Sigma_e"])
        assert float(v["y_rotated"]) - conditional == pytest.approx(observed, rel=1e-8)


@pytest.mark.exact
def test_latent_likelihood_is_the_records_density_given_every_kernels_g(data):
    model = _model("gblup", data, form="latent")
    v = _evaluate(model, ["y", "mu", "Sigma_e", "g", "g_feature", "g_rest"], 3)
    np.testing.assert_allclose(v["g"], v["g_feature"] + v["g_rest"], rtol=1e-12)
    n = model.n
    zero = np.zeros((n, n))
    expected = dense_logp(model.records.Y - v["g"][:n], zero, v["mu"], np.zeros((2, 2)), v["Sigma_e"])
    assert float(v["y"]) == pytest.approx(expected, rel=1e-8)


def _henderson_given(model, Y, mu, S_bg, S_e, offset):
    """Henderson's solution for the background kernel's g given the records less the explicit parts."""
    bg = model.kernel(model.background)
    K_all = bg.factor_all() @ bg.factor_all().T  # K over every individual, records first
    n = model.n
    unrecorded = np.full((K_all.shape[0] - n, 2), np.nan)
    return henderson(np.vstack([Y - offset[:n], unrecorded]), K_all, mu, S_bg, S_e)


@pytest.mark.exact
def test_genetic_values_given_explicit_kernels_equal_henderson_plus_them(data):
    """One draw: the total is Henderson's g_bg given Y - g_explicit, plus g_explicit; its variance is g_bg's.
    Two draws: the laws of total expectation and variance over them (divisor D, as the package's)."""
    model = _model("gblup", data)
    n, t = model.n, 2
    N = model.individuals.size
    rng = np.random.default_rng(5)
    draws = []
    for _ in range(2):
        offset = rng.normal(0.0, 0.4, (N, t))
        y_mis = rng.normal(0.0, 1.0, model.multitrait_data.missing_rows.size)
        mu = rng.normal(0.0, 1.0, t)
        draws.append((mu, y_mis, offset))
    bg = model.kernel(model.background)
    targets = bg.targets()
    oracles = [_henderson_given(model, _completed(model, y), mu, SIGMA_G, SIGMA_E, o) for mu, y, o in draws]

    def moments(chosen):
        mu = np.array([draws[i][0] for i in chosen])
        missing = np.array([draws[i][1] for i in chosen])
        explicit = np.array([draws[i][2] for i in chosen])
        D = len(chosen)
        return multitrait_moments(
            model.multitrait_data, mu, np.repeat(SIGMA_G[None], D, 0), np.repeat(SIGMA_E[None], D, 0),
            missing=missing, targets=targets, offsets={"g": explicit[:, :n], "unphenotyped": explicit[:, n:]},
        )  # fmt: skip

    g, extra = moments([0])
    for j in range(t):
        total = np.concatenate([g[j].mean, extra["unphenotyped"][j].mean])
        np.testing.assert_allclose(total, oracles[0].mean[:, j] + draws[0][2][:, j], rtol=1e-8, atol=1e-10)
        own = np.concatenate([extra["integrated"][j].mean, extra["unphenotyped_integrated"][j].mean])
        np.testing.assert_allclose(own, oracles[0].mean[:, j], rtol=1e-8, atol=1e-10)
        var = np.concatenate([g[j].sd, extra["unphenotyped"][j].sd]) ** 2
        np.testing.assert_allclose(var, oracles[0].var[:, j], rtol=1e-8, atol=1e-10)
    g, extra = moments([0, 1])
    for j in range(t):
        means = np.array([oracles[d].mean[:, j] + draws[d][2][:, j] for d in range(2)])
        variance = np.mean([oracles[d].var[:, j] for d in range(2)], axis=0) + means.var(axis=0)
        total = np.concatenate([g[j].mean, extra["unphenotyped"][j].mean])
        np.testing.assert_allclose(total, means.mean(axis=0), rtol=1e-8, atol=1e-10)
        sd = np.concatenate([g[j].sd, extra["unphenotyped"][j].sd])
        np.testing.assert_allclose(sd**2, variance, rtol=1e-8, atol=1e-10)


@pytest.mark.recovery
def test_a_gibbs_draw_given_explicit_kernels_keeps_the_exact_conditional(data):
    """The missing records' exact conditional given theta, y_obs and the explicit kernels' g: a Gibbs draw started
    in it stays in it. N = 3000 pairs; means within 4.5 Monte Carlo sd (~19 coordinates: a false alarm below 2e-4),
    variances within 15% (a sample variance of 3000 normals has sd 2.6%), lag-one correlation below 0.95."""
    model = _model("gblup", data)
    n = model.n
    rng = np.random.default_rng(8)
    offset = rng.normal(0.0, 0.5, (n, 2))
    mu = np.array([1.1, -1.9])
    K = model.kernel(model.background).matrix()
    miss = np.isnan(model.records.Y)
    cov = np.kron(SIGMA_G, K) + np.kron(SIGMA_E, np.eye(n))
    m = vec(np.outer(np.ones(n), mu) + offset)
    o, u = ~vec(miss), vec(miss)
    y = vec(np.where(miss, 0.0, model.records.Y))
    mean = m[u] + cov[np.ix_(u, o)] @ np.linalg.solve(cov[np.ix_(o, o)], y[o] - m[o])
    covariance = cov[np.ix_(u, u)] - cov[np.ix_(u, o)] @ np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, u)])
    rows, traits = np.nonzero(miss)  # vec order is trait by trait; the model's is row by row
    position = {(r, j): i for i, (j, r) in enumerate(zip(*np.nonzero(miss.T), strict=True))}
    order = np.array([position[(r, j)] for r, j in zip(rows, traits, strict=True)])
    mean, covariance = mean[order], covariance[np.ix_(order, order)]
    data_ = model.multitrait_data
    layout = MissingLayout(data_)
    rotated = data_.vectors.T @ offset
    N = 3000
    start = rng.multivariate_normal(mean, covariance, size=N)
    after = np.array(
        [draw_missing(layout, mu, None, SIGMA_G, SIGMA_E, y0, rng, offset=offset, offset_rotated=rotated)[0]
         for y0 in start]
    )  # fmt: skip
    z = (after.mean(axis=0) - mean) / np.sqrt(np.diag(covariance) / N)
    assert np.max(np.abs(z)) < 4.5
    np.testing.assert_allclose(after.var(axis=0, ddof=1), np.diag(covariance), rtol=0.15)
    assert max(np.corrcoef(start[:, i], after[:, i])[0, 1] for i in range(mean.size)) < 0.95


@pytest.mark.exact
def test_bglr_priors_one_inverse_wishart_per_kernel_with_r2_split(data):
    from bayesblup.models.covariance import bglr_multitrait_priors, bglr_rkhs_msx

    model = _model("gblup", data, prior="bglr")
    label, priors = model.priors
    assert label == "bglr"
    for k in model.kernels:
        msx = bglr_rkhs_msx(k.relationship_matrix())
        expected = bglr_multitrait_priors(model.records.Y, msx, n_terms=2, as_sampled=True)["genetic"]
        df, S0 = priors["Sigma_k"][k.variance_name]
        assert df == expected[0]
        np.testing.assert_allclose(S0, expected[1], rtol=1e-12)


@pytest.mark.structural
def test_names_tables_and_refusals(data):
    G_sets, _, Y = data
    model = _model("mblup", data)
    names = model.parameter_names
    for expected in ("h2_t1", "h2_feature_t1", "h2_rest_t2", "r_g_t1_t2", "r_g_feature_t1_t2", "r_e_t1_t2",
                     "sigma2_g_rest_t1", "sigma2_b_feature_t2", "sigma2_g_equiv_feature_t1", "mu_t2"):  # fmt: skip
        assert expected in names
    assert len(names) == len(set(names))
    fit = model.fit(chains=1, draws=30, tune=30, seed=1)
    summary = fit.summary()
    # the totals are the kernels' sums, draw by draw
    post = fit.datatree.posterior
    total = post["sigma2_g_t1"].values
    np.testing.assert_allclose(total, post["sigma2_g_feature_t1"].values + post["sigma2_g_rest_t1"].values)
    assert summary.loc["h2_t1", "mean"] == pytest.approx(
        summary.loc["h2_feature_t1", "mean"] + summary.loc["h2_rest_t1", "mean"], rel=1e-10
    )
    gv = fit.genetic_values
    assert list(gv.columns) == ["id", "trait", "mean", "sd", "pev", "reliability", "phenotyped",
                                "mean_feature", "sd_feature", "mean_rest", "sd_rest"]  # fmt: skip
    assert len(gv) == 2 * model.individuals.size
    me = fit.marker_effects
    assert set(me["set"]) == {"feature", "rest"} and len(me) == 2 * 80
    with pytest.raises(bb.InputError, match="method='map' is not available"):
        model.fit(method="map")
    with pytest.raises(bb.InputError, match="path='dense' is the single-trait"):
        bb.MultiGBLUP(Y, G_sets, path="dense")
    clash = Y.rename(columns={"t1": "a_t2"})
    with pytest.raises(bb.InputError, match="rename a set or a trait"):
        bb.BLUPModel(clash, {"x": G_sets["feature"], "x_a": G_sets["rest"]})


@pytest.mark.structural
def test_cli_several_traits_with_marker_sets_writes_per_set_columns_and_loads_back(tmp_path):
    """``bayesblup fit --trait t1 t2 --sets``: per-set, per-trait parameters and enrichment, genetic values with each
    set's columns, the sets' roles (background integrated, the other explicit), and ``load_fit`` reads it back."""
    import json

    import pandas as pd

    from bayesblup.cli.main import main

    rng = np.random.default_rng(16)  # the fixture's genotypes again, as calls in a CSV
    geno, _ = simulate_genotypes(50, 80, allele_freq=rng.uniform(0.1, 0.9, 80), seed=rng)
    Y = simulate_multitrait(bb.genomic_relationship(geno), Sigma_g=SIGMA_G, Sigma_e=SIGMA_E, mu=[1.0, -2.0],
                            missing=0.2, seed=3)  # fmt: skip
    geno_csv, pheno_csv, sets_csv = tmp_path / "geno.csv", tmp_path / "pheno.csv", tmp_path / "sets.csv"
    pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers).to_csv(geno_csv)
    Y.rename_axis("id").to_csv(pheno_csv)
    pd.DataFrame({"marker": geno.markers[:20], "set": "feature"}).to_csv(sets_csv, index=False)
    out = tmp_path / "fit"
    code = main(
        ["fit", "--genotypes", str(geno_csv), "--phenotypes", str(pheno_csv), "--trait", "t1", "t2", "--model",
         "mblup", "--sets", str(sets_csv), "--chains", "1", "--draws", "30", "--tune", "30", "--seed", "1",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"h2_feature_t1", "r_g_rest_t1_t2", "sigma2_b_feature_t2", "enrichment_feature_t1"} <= set(
        summary["parameters"]
    )
    assert summary["sets"]["rest"]["role"] == "background" and summary["sets"]["feature"]["role"] == "explicit"
    assert set(summary["enrichment"]) == {"feature_t1", "feature_t2", "rest_t1", "rest_t2"}
    gv = pd.read_csv(out / "genetic_values.csv")
    assert {"mean_feature", "sd_rest"} <= set(gv.columns)
    loaded = bb.load_fit(out)
    assert loaded.enrichment().loc["feature_t2", "trait"] == "t2"


@pytest.mark.exact
@pytest.mark.parametrize("rank", [3, 60])
def test_between_draw_variances_with_and_without_a_narrow_basis(rank):
    """``Var[M R x]`` over the draws, as the package combines them (``_moments``): through the range finder's basis
    when the draws span few directions (rank 3), directly when they span many (rank 60 of 80: several traits with
    missing records); either way the direct formula to 1e-10."""
    from bayesblup.inference.posterior import _between_basis, _moments

    rng = np.random.default_rng(rank)
    n, D = 80, 200
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, D)) + rng.normal(size=(n, 1))
    M, right = rng.normal(size=(30, n)), rng.normal(size=(n, n))
    within = rng.uniform(0.1, 1.0, 30)
    assert (_between_basis(x)[1] is None) == (rank == 60)
    T = M @ right @ x
    moments = _moments(M, x, within, right=right)
    np.testing.assert_allclose(moments.mean, T.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(moments.sd**2, within + T.var(axis=1), rtol=1e-10)
