"""Several marker sets: the set mapping, W_k and G_k, both exact paths of the marginal form against the
dense MVN, the latent form, the conditional genetic values, M-BLUP = G-BLUP set by set, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from oracles import exact_relationship

import bayesblup as bb
from bayesblup.analyses.equivalence import check_equivalence
from bayesblup.cli.main import main
from bayesblup.inference.posterior import set_moments
from bayesblup.testing import simulate_genotypes, simulate_records


def _genotypes(n=40, m=120, seed=5):
    p = np.random.default_rng(seed).uniform(0.2, 0.8, size=m)
    geno, _ = simulate_genotypes(n, m, allele_freq=p, seed=seed + 1)
    return geno


def _marker_names(geno):
    """A feature set of 8 markers (fewer than n / 2 = 20): the Woodbury path, with the rest as background."""
    return {"feature": list(geno.markers[::15])}


def _kernels(geno, scaling="standardized"):
    sets = _marker_names(geno)
    return (
        bb.relationships_by_set(geno, sets, scaling=scaling),
        bb.genotype_matrices_by_set(geno, sets, scaling=scaling),
    )


# --- the set mapping ---------------------------------------------------------------------------


@pytest.mark.structural
def test_marker_sets_from_names_indices_csv_and_series(tmp_path):
    markers = ["a", "b", "c", "d", "e"]
    by_name = bb.marker_sets({"f": ["a", "c"]}, markers)
    by_index = bb.marker_sets({"f": [0, 2]}, markers)
    path = tmp_path / "sets.csv"
    pd.DataFrame({"marker": ["a", "c", "e"], "set": ["f", "f", "g"]}).to_csv(path, index=False)
    from_csv = bb.marker_sets(path, markers)
    series = bb.marker_sets(pd.Series({"a": "f", "c": "f"}), markers, rest="background")
    assert {k: v.tolist() for k, v in by_name.columns.items()} == {"f": [0, 2], "rest": [1, 3, 4]}
    assert {k: v.tolist() for k, v in by_index.columns.items()} == {"f": [0, 2], "rest": [1, 3, 4]}
    assert {k: v.tolist() for k, v in from_csv.columns.items()} == {"f": [0, 2], "g": [4], "rest": [1, 3]}
    assert series.names == ["f", "background"]
    assert by_name.sizes == {"f": 2, "rest": 3}


@pytest.mark.structural
def test_marker_sets_without_rest_leave_markers_out():
    s = bb.marker_sets({"f": ["a"], "g": ["b", "c"]}, ["a", "b", "c", "d"], rest=None)
    assert s.names == ["f", "g"] and s.unused.tolist() == ["d"]


@pytest.mark.structural
def test_markers_dropped_by_qc_are_reported_not_refused():
    s = bb.marker_sets({"f": ["a", "gone"]}, ["a", "b"], dropped=["gone"])
    assert s.dropped.tolist() == ["gone"] and s.columns["f"].tolist() == [0]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"f": ["a", "zz", "yy"]}, r"2 markers are not in the genotypes: zz, yy"),
        ({"f": ["a", "b"], "g": ["b"]}, r"in both 'f' and 'g': b"),
        ({"f": ["zz"]}, r"not in the genotypes"),
        ({"f": [9]}, r"column 9, outside 0..3"),
        ({"bad name": ["a"]}, r"set name 'bad name'"),
        ({"rest": ["a"]}, r"already called 'rest'"),
        ({"f": ["a", "b", "c", "d"]}, r"1 set\(s\) \(f\); several marker sets need at least two"),
        ([("f", "a")], r"sets must be a CSV path"),
    ],
)
@pytest.mark.structural
def test_bad_marker_sets_are_refused_with_what_and_where(sets, message):
    with pytest.raises(bb.InputError, match=message):
        bb.marker_sets(sets, ["a", "b", "c", "d"])


@pytest.mark.structural
def test_bad_marker_sets_file(tmp_path):
    path = tmp_path / "sets.csv"
    path.write_text("snp,group\na,f\n")
    with pytest.raises(bb.InputError, match=r"needs columns 'marker' and 'set'.*lacks marker, set"):
        bb.read_marker_sets(path)
    path.write_text("marker,set\na,f\nb,\na,g\n")
    with pytest.raises(bb.InputError, match=r"1 rows have no set \(lines 3\)"):
        bb.read_marker_sets(path)
    path.write_text("marker,set\na,f\na,g\n")
    with pytest.raises(bb.InputError, match=r"1 markers are in more than one row: a"):
        bb.read_marker_sets(path)


# --- W_k and G_k ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scaling", ["standardized", "standardized-hwe", "centered"])
@pytest.mark.exact
def test_set_kernels_equal_the_exact_oracle_on_each_subset(scaling):
    """G_k is the textbook G of the set's markers alone (rational arithmetic), and W_k W_k' / c_k = G_k."""
    geno = _genotypes(n=12, m=30)
    sets = {"f": list(geno.markers[[1, 4, 9, 20]])}
    G = bb.relationships_by_set(geno, sets, scaling=scaling)
    W = bb.genotype_matrices_by_set(geno, sets, scaling=scaling)
    columns = bb.marker_sets(sets, geno.markers).columns
    for name, cols in columns.items():
        # Under standardized-hwe / centered the oracle's p is the subset's own sample p: the same per marker.
        expected = exact_relationship(geno.calls[:, cols].astype(float), scaling=scaling, k=2)
        np.testing.assert_allclose(G[name].matrix, expected, rtol=0, atol=1e-12)
        Wk = W[name]
        np.testing.assert_allclose(Wk.values @ Wk.values.T / Wk.scaling.denominator, expected, atol=1e-12)
        assert G[name].n_markers == cols.size


@pytest.mark.parametrize("scaling", ["standardized", "centered"])
@pytest.mark.exact
def test_set_kernels_add_up_to_the_whole_g(scaling):
    """sum_k c_k G_k = c G: the sets partition the markers, so their cross-products add up."""
    geno = _genotypes()
    G = bb.genomic_relationship(geno, scaling=scaling)
    parts = bb.relationships_by_set(geno, _marker_names(geno), scaling=scaling)
    total = sum(R.denominator * R.matrix for R in parts.values()) / G.denominator
    np.testing.assert_allclose(total, G.matrix, atol=1e-12)


# --- the exact paths against the dense MVN -------------------------------------------------------

RECORD_CASES = ("single", "weighted-repeated", "pe-diagonal", "pe-augmented")


def _table(geno, case, seed=11):
    W = bb.genotype_matrix(geno, scaling="standardized").values
    single = case == "single"
    sim = simulate_records(
        W, geno.ids, h2=0.4, pe_share=0.2, records=1 if single else (1, 4), weights=None if single else (1, 3),
        sex_effect=0.8, age_slope=0.1, unphenotyped=0.2, seed=seed,
    )  # fmt: skip
    table = sim.table
    if case == "pe-diagonal":
        counts = table.groupby(level=0, sort=False)["w"].transform("size")
        table = table.assign(w=3.0 / counts)
    return table


def _multi(name, table, kernels, case, **kwargs):
    G, W = kernels
    Model, arg = (bb.MultiGBLUP, G) if name == "gblup" else (bb.MultiMBLUP, W)
    if case == "single":
        return Model(table["y"], arg, fixed=table[["sex", "age"]], **kwargs)
    return Model(
        table["y"], arg, fixed=table[["sex", "age"]], weights=table["w"], repeated=True,
        permanent_environment=case.startswith("pe"), **kwargs,
    )  # fmt: skip


def _incidence(model):
    Z = np.zeros((model.n_records, model.n))
    Z[np.arange(model.n_records), model.records.record_index] = 1.0
    return Z


def _likelihood(pm_model):
    return pm_model.compile_fn(pm_model.logp(vars=pm_model.potentials), on_unused_input="ignore")


# Woodbury needs one noise level for every individual mean, so it does not take "pe-augmented" (refused below).
PATH_CASES = [("woodbury", c) for c in RECORD_CASES if c != "pe-augmented"] + [("dense", c) for c in RECORD_CASES]


@pytest.mark.parametrize(("path", "case"), PATH_CASES)
@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_marginal_logp_equals_dense_mvn(name, path, case):
    """log N(y; X beta, Z (sum_k s_k K_k + s_pe I) Z' + s_e D) of the records, to 1e-9 relative, on each path.

    K_k = G_k (G-BLUP) or W_k W_k' (M-BLUP); X has sex and a per-record age; Z has 1-4 records per
    individual, 20% of the individuals have none; D = diag(1/w). Exact up to rounding.
    """
    geno = _genotypes()
    kernels = _kernels(geno)
    table = _table(geno, case)
    model = _multi(name, table, kernels, case, prior="bglr", path=path)
    assert model.path == path and model.background == "rest"
    pm_model = model.model
    logp = _likelihood(pm_model)
    rec = model.records
    weights = np.ones(model.n_records) if rec.weights is None else rec.weights
    X1 = np.hstack([np.ones((model.n_records, 1)), rec.X])
    Z = _incidence(model)
    G, _ = kernels
    p_rows = G["rest"].index(model.ids)
    K = {
        k: G[k].matrix[np.ix_(p_rows, p_rows)] if name == "gblup" else model.W[k][: model.n] @ model.W[k][: model.n].T
        for k in model.set_names
    }
    rng = np.random.default_rng(3)
    for mu, s_f, s_r, spe, se in [(9.0, 0.2, 0.5, 0.3, 0.4), (11.0, 0.01, 1.4, 0.05, 0.9)]:
        beta = rng.normal(0, 0.5, size=rec.n_covariates)
        s = {"feature": s_f, "rest": s_r}
        if name == "mblup":
            s = {k: v / model.set_factor(k) for k, v in s.items()}
        V = Z @ sum(s[k] * K[k] for k in K) @ Z.T + se * np.diag(1.0 / weights)
        if model.permanent_environment:
            V = V + spe * Z @ Z.T
        expected = st.multivariate_normal(X1 @ np.concatenate([[mu], beta]), V).logpdf(rec.y)
        point = {"mu": mu, "beta": beta, "sigma2_e_log__": np.log(se), "sigma2_pe_log__": np.log(spe)}
        point |= {f"{model.variance_name(k)}_log__": np.log(v) for k, v in s.items()}
        point = {k: v for k, v in point.items() if k in {v.name for v in pm_model.value_vars}}
        assert float(logp(point)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("path", "case"), [("woodbury", "pe-diagonal"), ("dense", "pe-augmented")])
@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_hand_written_gradients_match_finite_differences(name, path, case):
    """Both paths compute their gradient by hand; central differences of the log-likelihood (step 1e-5,
    truncation error ~1e-10) agree to 1e-6 relative in every direction of the unconstrained space."""
    geno = _genotypes()
    model = _multi(name, _table(geno, case), _kernels(geno), case, prior="bglr", path=path)
    _check_gradient(model.model)


def _three_sets(geno):
    """Two small sets (8 and 6 markers) beside the rest: R = 14 <= n/2, the Woodbury path with two blocks."""
    sets = {"feature": list(geno.markers[::15]), "second": list(geno.markers[1::20])}
    return bb.relationships_by_set(geno, sets), bb.genotype_matrices_by_set(geno, sets)


@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_three_sets_woodbury_logp_equals_dense_mvn_and_gradient(name):
    """With two small sets the Woodbury path factors the R x R capacitance matrix per gradient (one small set
    takes the interpolated surface instead): its logp equals the dense MVN to 1e-9 relative, and its
    gradient central differences (as above)."""
    geno = _genotypes()
    G, W = _three_sets(geno)
    table = _table(geno, "single")
    model = _multi(name, table, (G, W), "single", prior="bglr")
    assert model.path == "woodbury" and model.background == "rest" and model.kernels_data.blocks == [8, 6]
    pm_model = model.model
    logp = _likelihood(pm_model)
    rec = model.records
    X1 = np.hstack([np.ones((model.n_records, 1)), rec.X])
    rows = G["rest"].index(model.ids)
    s = {"feature": 0.2, "second": 0.05, "rest": 0.5}
    K = {k: G[k].matrix[np.ix_(rows, rows)] for k in s}
    mu, se, beta = 10.0, 0.4, np.array([0.5, -0.1])
    V = sum(s[k] * K[k] for k in s) + se * np.eye(model.n)
    expected = st.multivariate_normal(X1 @ np.concatenate([[mu], beta]), V)
    point = {"mu": mu, "beta": beta, "sigma2_e_log__": np.log(se)}
    for k, v in s.items():
        point[f"{model.variance_name(k)}_log__"] = np.log(v if name == "gblup" else v / model.set_factor(k))
    assert float(logp(point)) == pytest.approx(expected.logpdf(rec.y), rel=1e-9)
    _check_gradient(pm_model)


@pytest.mark.exact
def test_surface_interpolant_equals_the_direct_computation():
    """The one-small-set likelihood reads f = log det(I + tau M(rho)) and Phi = tau P'(I + tau M)^-1 P from a
    tensor Chebyshev interpolant (degree 31 per square of side 2 in t = log rho and s = log tau).

    Against the direct eigendecomposition at 60 random points in |t|, |s| < 20 (variance ratios from
    2e-9 to 5e8): errors enter the log-likelihood as absolute errors in f and in c'(B - Phi)c, so f's
    family is measured against max(1, |f|, |f_t|, |f_s|) and Phi's against the size of B = Z'Dt^-1 Z
    (Phi <= B). Values to 1e-11 (the interpolant converges like 3.1^-32, ~1e-16, plus rounding in
    its 1024-term sums), derivatives to 1e-8 (differentiating a degree-31 interpolant amplifies the
    error by up to its degree squared, ~1e3). Beyond |t|, |s| = 30 it is computed directly.
    """
    from bayesblup.linalg.woodbury import Resolvent, Surface

    rng = np.random.default_rng(2)
    n, R = 120, 15
    lam = np.sort(rng.gamma(0.5, 2.0, size=n))
    lam[:4] = 0.0  # a rank-deficient background
    A = rng.normal(size=(n, R))
    A[:, -1] = A[:, 0]  # a rank-deficient set, as a centred W_k: M has a zero eigenvalue
    Z = np.column_stack([rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)])
    surface = Surface(Resolvent(lam, A), lam, A, Z)
    for t, s in rng.uniform(-20, 20, size=(60, 2)):
        got, want = surface(t, s), surface.exact(t, s)
        B = Z.T @ (Z / (1.0 + np.exp(t) * lam)[:, None])
        scales = [max(1.0, *(abs(v) for v in want[:3]))] * 3 + [
            max(np.abs(B).max(), *(np.abs(v).max() for v in want[3:]))
        ] * 3
        for k, (a, b) in enumerate(zip(got, want, strict=True)):
            error = np.max(np.abs(np.asarray(a) - np.asarray(b)))
            assert error <= (1e-11 if k in (0, 3) else 1e-8) * scales[k], (t, s, k, error)
    assert len(surface.squares) <= 60  # built only where visited
    outside = surface(-30.5, 31.0)
    np.testing.assert_array_equal(outside[3], surface.exact(-30.5, 31.0)[3])


def _check_gradient(pm_model):
    """The model's gradient against central differences of its logp, direction by direction."""
    logp, dlogp = pm_model.compile_logp(), pm_model.compile_dlogp()  # the whole posterior: priors, Jacobians
    rng = np.random.default_rng(8)
    point = {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in pm_model.initial_point().items()}
    point["mu"] = point["mu"] + 0.5
    grad = dlogp(point)
    flat = np.concatenate([np.atleast_1d(point[v.name]) for v in pm_model.value_vars])
    sizes = [np.size(point[v.name]) for v in pm_model.value_vars]

    def total(x):
        parts = np.split(x, np.cumsum(sizes)[:-1])
        p = {v.name: part.reshape(np.shape(point[v.name])) for v, part in zip(pm_model.value_vars, parts, strict=True)}
        return float(logp(p))

    h = 1e-5
    for j in range(flat.size):
        e = np.zeros_like(flat)
        e[j] = h
        numeric = (total(flat + e) - total(flat - e)) / (2 * h)
        assert grad[j] == pytest.approx(numeric, rel=1e-6, abs=1e-6), j


@pytest.mark.structural
def test_woodbury_refuses_unequal_noise():
    geno = _genotypes()
    model = _multi("gblup", _table(geno, "pe-augmented"), _kernels(geno), "pe-augmented", path="woodbury")
    with pytest.raises(bb.InputError, match=r"path='woodbury' needs the residual variance .* use path='dense'"):
        model.model  # noqa: B018


@pytest.mark.structural
def test_auto_path_choice():
    """Woodbury for a small set beside a large one (R <= n/2), dense for two large sets or unequal noise."""
    geno = _genotypes()
    table = _table(geno, "single")
    assert _multi("gblup", table, _kernels(geno), "single").path == "woodbury"
    halves = {"first": list(geno.markers[:60])}
    big = (bb.relationships_by_set(geno, halves), bb.genotype_matrices_by_set(geno, halves))
    assert _multi("gblup", table, big, "single").path == "dense"
    assert _multi("mblup", table, big, "single").path == "dense"
    augmented = _table(geno, "pe-augmented")
    assert _multi("mblup", augmented, _kernels(geno), "pe-augmented").path == "dense"


@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_latent_form_record_likelihood(name):
    """Latent form: y_j ~ N(mu + x_j beta + sum_k g_k,i(j) + p_i(j), sigma2_e / w_j), and g = sum_k g_k (1e-10)."""
    geno = _genotypes()
    model = _multi(name, _table(geno, "pe-augmented"), _kernels(geno), "pe-augmented", form="latent", prior="bglr")
    pm_model = model.model
    rng = np.random.default_rng(4)
    point = pm_model.initial_point()
    point = {k: rng.normal(size=np.shape(v)) if k.startswith("z") or k == "beta" else v for k, v in point.items()}
    point["sigma2_e_log__"] = np.log(0.7)
    wanted = [pm_model["g"], pm_model["g_feature"], pm_model["g_rest"], pm_model["pe"], pm_model["mu"]]
    fn = pm_model.compile_fn(
        [pm_model.logp(vars=[pm_model["y"]]), *pm_model.replace_rvs_by_values(wanted)], on_unused_input="ignore"
    )
    logp, g, g_f, g_r, pe, mu = fn(point)
    np.testing.assert_allclose(g, g_f + g_r, atol=1e-12)
    rec = model.records
    idx = rec.record_index
    mean = mu + rec.X @ point["beta"] + g[: model.n][idx] + pe[idx]
    assert float(logp) == pytest.approx(st.norm(mean, np.sqrt(0.7 / rec.weights)).logpdf(rec.y).sum(), rel=1e-10)


@pytest.mark.parametrize("path", ["woodbury", "dense"])
@pytest.mark.exact
def test_conditional_genetic_values_per_set_equal_the_dense_conditional(path):
    """At one theta, set_moments' mean of g_k (every individual) is the dense Gaussian conditional exactly
    (1e-8), and its variance within 5%: it comes from 20,000 exact Matheron draws, whose variance has
    relative sd sqrt(2/20000) = 1%, so 5% is 5 sd, for each of 2 x 40 individuals (false alarm < 1e-4)."""
    geno = _genotypes()
    case = "weighted-repeated"
    model = _multi("gblup", _table(geno, case), _kernels(geno), case, path=path)
    G, _ = _kernels(geno)
    rec = model.records
    every = G["rest"].index(model.individuals)
    p = np.arange(model.n)
    s = {"feature": 0.3, "rest": 0.6}
    mu, se, beta = 10.0, 0.5, np.array([0.7, 0.05])
    Z = _incidence(model)
    V = Z @ sum(s[k] * G[k].matrix[np.ix_(every[p], every[p])] for k in s) @ Z.T + se * np.diag(1 / rec.weights)
    resid = rec.y - mu - rec.X @ beta
    Vinv_r = np.linalg.solve(V, resid)
    moments, total, _ = set_moments(
        model.posterior_data, np.array([mu]), {k: np.array([v]) for k, v in s.items()}, np.array([se]),
        beta=beta[None, :], seed=1, min_samples=20_000,
    )  # fmt: skip
    cross_total = 0
    for k in s:
        cross = s[k] * G[k].matrix[np.ix_(every, every[p])] @ Z.T  # Cov(g_k, y)
        cross_total = cross_total + cross
        np.testing.assert_allclose(moments[k].mean, cross @ Vinv_r, atol=1e-8)
        var = s[k] * np.diag(G[k].matrix)[every] - np.einsum("ij,ji->i", cross, np.linalg.solve(V, cross.T))
        np.testing.assert_allclose(moments[k].sd ** 2, var, rtol=0.05)
    np.testing.assert_allclose(total.mean, cross_total @ Vinv_r, atol=1e-8)


# --- M-BLUP = G-BLUP, set by set -----------------------------------------------------------------


@pytest.mark.exact
def test_mblup_and_gblup_marginal_logp_agree_set_by_set():
    """With G_k = W_k W_k'/c_k and sigma2_g_k = c_k sigma2_b_k the two models' log-likelihoods agree (1e-9)."""
    geno = _genotypes()
    table = _table(geno, "weighted-repeated")
    kernels = _kernels(geno)
    g = _multi("gblup", table, kernels, "weighted-repeated", prior="bglr")
    m = _multi("mblup", table, kernels, "weighted-repeated", prior="bglr")
    base = {"mu": 10.0, "beta": np.array([0.5, 0.1]), "sigma2_e_log__": np.log(0.6)}
    s = {"feature": 0.25, "rest": 0.5}
    pg = base | {f"sigma2_g_{k}_log__": np.log(v) for k, v in s.items()}
    pm_ = base | {f"sigma2_b_{k}_log__": np.log(v / m.set_factor(k)) for k, v in s.items()}
    assert float(_likelihood(g.model)(pg)) == pytest.approx(float(_likelihood(m.model)(pm_)), rel=1e-9)


@pytest.mark.slow  # a full fit of 10+ s: the slow tier keeps the default tier under 4 minutes
@pytest.mark.recovery
def test_mblup_and_gblup_posteriors_agree_set_by_set_on_wheat(wheat):
    """NUTS on wheat y1, feature = the first 100 markers, prior="default" (the same prior on h2, the
    total variance and the sets' shares in both models). Each set's genetic variance (sigma2_g_<set>
    vs sigma2_g_equiv_<set>), h2_<set> and the genetic values agree within 4 MC standard errors of the
    difference (the chance of a false alarm per quantity is below 1e-4)."""
    geno, _ = bb.quality_control(wheat.genotypes)
    sets = {"first100": list(geno.markers[:100])}
    y = wheat.phenotypes["y1"]
    fits = [
        Model(y, arg, prior="default").fit(chains=2, draws=500, tune=500, seed=7)
        for Model, arg in (
            (bb.MultiMBLUP, bb.genotype_matrices_by_set(geno, sets)),
            (bb.MultiGBLUP, bb.relationships_by_set(geno, sets)),
        )
    ]
    m_table, g_table = (f.summary() for f in fits)
    pairs = [(f"sigma2_g_equiv_{k}", f"sigma2_g_{k}") for k in ("first100", "rest")]
    pairs += [(f"h2_{k}", f"h2_{k}") for k in ("first100", "rest")] + [("h2", "h2")]
    for m_name, g_name in pairs:
        a, b = m_table.loc[m_name], g_table.loc[g_name]
        assert abs(a["mean"] - b["mean"]) < 4 * np.hypot(a["mcse_mean"], b["mcse_mean"]), (m_name, a, b)
    gm, gg = (f.genetic_values.set_index("id") for f in fits)
    assert np.corrcoef(gm["mean_first100"], gg["mean_first100"])[0, 1] > 0.999
    assert np.corrcoef(gm["mean"], gg["mean"])[0, 1] > 0.999
    assert fits[0].marker_effects["set"].value_counts().to_dict() == {"rest": 1179, "first100": 100}
    report = check_equivalence(*fits)  # the same comparison, as a user runs it
    assert report.holds and report.premise_error < 1e-10, str(report)
    assert "sigma2_g_first100 vs c*sigma2_b_first100" in str(report)


@pytest.mark.structural
def test_check_equivalence_per_set_names_a_scaling_mismatch():
    """MAP fits of MultiMBLUP (centered W*) and MultiGBLUP (standardized G): the premise fails per set and
    the report says why; with matching scalings it holds, each set with its own factor c_k = m_k."""
    geno = _genotypes()
    table = _table(geno, "single")
    sets = _marker_names(geno)
    fits = {}
    for scaling in ("standardized", "centered"):
        W = bb.genotype_matrices_by_set(geno, sets, scaling=scaling)
        fits[scaling] = bb.MultiMBLUP(table["y"], W).fit(method="map", seed=1)
    g_fit = bb.MultiGBLUP(table["y"], bb.relationships_by_set(geno, sets)).fit(method="map", seed=1)
    good = check_equivalence(fits["standardized"], g_fit)
    assert good.holds and good.factors == {"feature": 8.0, "rest": 112.0}
    bad = check_equivalence(fits["centered"], g_fit)
    assert not bad.holds and "set 'feature' is not proportional" in bad.reasons[0] and "centered" in bad.reasons[0]
    with pytest.raises(bb.InputError, match="several marker sets"):
        check_equivalence(bb.MBLUP(table["y"], bb.genotype_matrix(geno)).fit(method="map"), g_fit)


# --- structure, priors, results ------------------------------------------------------------------


@pytest.mark.parametrize("form", ["marginal", "latent"])
@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.structural
def test_model_structure_and_outputs(mock_pymc_sample, name, form):
    geno = _genotypes()
    model = _multi(name, _table(geno, "single"), _kernels(geno), "single", form=form)
    pm_model = model.model
    assert list(pm_model.coords["kernel"]) == ["feature", "rest"]
    assert pm_model.named_vars_to_dims["set_share"] == ("kernel",)
    if form == "marginal":
        assert [p.name for p in pm_model.potentials] == ["y_marginal"]
        with pytest.warns(UserWarning, match="Potentials"):
            fit = model.fit(chains=1, draws=10, tune=0, seed=1)
    else:
        fit = model.fit(chains=1, draws=10, tune=0, seed=1)
    prefix = "sigma2_g" if name == "gblup" else "sigma2_b"
    expected = ["h2", "h2_feature", "h2_rest", f"{prefix}_feature", f"{prefix}_rest"]
    assert list(fit.summary().index[:5]) == expected
    assert {"enrichment_feature", "enrichment_rest", "sigma2_e", "mu"} <= set(fit.summary().index)
    if name == "mblup":
        assert {"sigma2_g_equiv_feature", "sigma2_g_equiv_rest"} <= set(fit.summary().index)
        assert fit.marker_effects["set"].value_counts().to_dict() == {"rest": 112, "feature": 8}
    gv = fit.genetic_values
    assert len(gv) == geno.n_individuals
    assert {"mean", "sd", "mean_feature", "sd_feature", "mean_rest", "sd_rest", "reliability"} <= set(gv.columns)
    summary = fit.to_dict()
    assert summary["path"] == ("woodbury" if form == "marginal" else "latent")
    assert summary["sets"]["feature"]["n_markers"] == 8
    assert set(summary["enrichment"]) == {"feature", "rest"}
    draws = fit.datatree["posterior"]
    np.testing.assert_allclose(draws["h2"], draws["h2_feature"] + draws["h2_rest"], rtol=1e-12)


@pytest.mark.exact
def test_bglr_prior_splits_r2_equally_over_the_sets():
    """BGLR with K random terms: S0_k = var(y) (R2/K) (df0 + 2) / MSx_k for each set."""
    geno = _genotypes()
    model = _multi("mblup", _table(geno, "single"), _kernels(geno), "single", prior="bglr")
    _, priors = model.priors
    vy = float(np.var(model.y, ddof=1))
    for k in model.set_names:
        W = model.W[k][: model.n]
        msx = float(W.var(axis=0).sum())
        assert priors[f"sigma2_b_{k}"].parameters["beta"] == pytest.approx(vy * 0.25 * 7 / msx / 2, rel=1e-12)
    assert priors["sigma2_e"].parameters["beta"] == pytest.approx(vy * 0.5 * 7 / 2, rel=1e-12)
    pe = _multi("gblup", _table(geno, "pe-diagonal"), _kernels(geno), "pe-diagonal", prior="bglr")
    _, priors = pe.priors
    # Three random terms (two sets and the permanent environment): R2/3 each.
    vy = float(np.var(pe.y, ddof=1))
    assert priors["sigma2_g_feature"].parameters["beta"] == pytest.approx(
        vy * (0.5 / 3) * 7 / pe.set_msx("feature") / 2, rel=1e-12
    )


@pytest.mark.structural
def test_custom_prior_needs_every_set():
    geno = _genotypes()
    prior = {"sigma2_e": bb.Prior("HalfNormal")}
    model = _multi("gblup", _table(geno, "single"), _kernels(geno), "single", prior=prior)
    with pytest.raises(bb.InputError, match=r"give a Prior for \['sigma2_g_feature', 'sigma2_g_rest'\]"):
        model.priors  # noqa: B018


@pytest.mark.structural
def test_sets_need_the_same_individuals():
    geno = _genotypes()
    G, _ = _kernels(geno)
    other = bb.relationships_by_set(geno.select(individuals=np.arange(30)), _marker_names(geno))
    with pytest.raises(bb.InputError, match=r"set 'rest' has other individuals"):
        bb.MultiGBLUP(_table(geno, "single")["y"], {"feature": G["feature"], "rest": other["rest"]})


@pytest.mark.structural
def test_fit_cli_with_sets(tmp_path):
    geno = _genotypes(n=60)
    table = _table(geno, "single")[["y"]].rename_axis("id").reset_index()
    calls = pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers)
    calls.to_csv(tmp_path / "geno.csv")
    table.to_csv(tmp_path / "pheno.csv", index=False)
    pd.DataFrame({"marker": geno.markers[::15], "set": "feature"}).to_csv(tmp_path / "sets.csv", index=False)
    for model in ("gblup", "mblup"):
        out = tmp_path / f"out_{model}"
        args = ["fit", "--genotypes", str(tmp_path / "geno.csv"), "--phenotypes", str(tmp_path / "pheno.csv")]
        args += ["--trait", "y", "--model", model, "--sets", str(tmp_path / "sets.csv"), "--out", str(out)]
        assert main([*args, "--chains", "2", "--draws", "200", "--tune", "200", "--seed", "1"]) == 0
        summary = json.loads((out / "summary.json").read_text())
        names = set(summary["parameters"])
        assert {"h2", "h2_feature", "h2_rest"} <= names
        if model == "gblup":
            assert {"sigma2_g_feature", "sigma2_g_rest"} <= names
        else:
            assert {"sigma2_b_feature", "sigma2_b_rest", "sigma2_g_equiv_feature", "sigma2_g_equiv_rest"} <= names
            assert (out / "marker_effects.csv").exists()
        assert summary["path"] == "woodbury" and summary["sets"]["feature"]["n_markers"] == 8
        gv = pd.read_csv(out / "genetic_values.csv")
        assert {"mean_feature", "sd_feature", "mean_rest", "sd_rest"} <= set(gv.columns)
