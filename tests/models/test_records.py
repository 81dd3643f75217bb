"""The general model y = X beta + Z g (+ Z p) + e, Var(e) = D sigma2_e: repeated records, weights,
permanent environment. Exact oracles (dense MVN logp, Henderson's equations), errors, recovery, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesblup as bb
from bayesblup.analyses.equivalence import check_equivalence
from bayesblup.cli.main import main
from bayesblup.inference.posterior import conditional_fixed_effects, conditional_genetic_values, posterior_moments
from bayesblup.testing import simulate_genotypes, simulate_records

# Records per individual and weights for each path of the marginal form (model.pe_path):
# - "none": 1-4 records with weights 1-3, no permanent environment (G rescaled by S);
# - "diagonal": a permanent environment, every individual's weights summing to 3;
# - "augmented": a permanent environment with unequal total weights (explicit residual excess).
PE_CASES = ("none", "diagonal", "augmented")


def _genotypes(n=40, m=120, seed=5):
    p = np.random.default_rng(seed).uniform(0.2, 0.8, size=m)
    geno, p = simulate_genotypes(n, m, allele_freq=p, seed=seed + 1)
    # standardized-hwe on the base frequencies: G is full rank (m > n), so G^-1 exists for Henderson.
    G = bb.genomic_relationship(geno, scaling="standardized-hwe", allele_freq=p)
    W = bb.genotype_matrix(geno, scaling="standardized-hwe", allele_freq=p)
    return geno, G, W


def _simulated(geno, W, case: str, *, seed=11, unphenotyped=0.2):
    """(record table, SimulatedRecords) for one case; in "diagonal" each individual's weights sum to 3."""
    sim = simulate_records(
        W.values, geno.ids, h2=0.4, pe_share=0.2, records=(1, 4), weights=(1, 3), sex_effect=0.8,
        age_slope=0.1, unphenotyped=unphenotyped, seed=seed,
    )  # fmt: skip
    table = sim.table
    if case == "diagonal":  # rewrite the weights of each individual to sum to 3
        counts = table.groupby(level=0, sort=False)["w"].transform("size")
        table = table.assign(w=3.0 / counts)
    return table, sim


def _records(geno, W, case: str, **kwargs) -> pd.DataFrame:
    return _simulated(geno, W, case, **kwargs)[0]


def _model(name, table, G, W, case, **kwargs):
    Model, kernel = (bb.GBLUP, G) if name == "gblup" else (bb.MBLUP, W)
    return Model(
        table["y"], kernel, fixed=table[["sex", "age"]], weights=table["w"], repeated=True,
        permanent_environment=case != "none", **kwargs,
    )  # fmt: skip


def _incidence(model) -> np.ndarray:
    """Z: records x phenotyped individuals (model order)."""
    Z = np.zeros((model.n_records, model.n))
    Z[np.arange(model.n_records), model.records.record_index] = 1.0
    return Z


def _likelihood(pm_model):
    """logp of the observed data and the potentials, as a function of a point."""
    terms = pm_model.observed_RVs + pm_model.potentials
    return pm_model.compile_fn(pm_model.logp(vars=terms), on_unused_input="ignore")


def _dense_means(model):
    """Weighted mean record per individual and its total weight, computed densely from the records."""
    rec = model.records
    Z = _incidence(model)
    W = Z.T @ rec.weights
    ybar = Z.T @ (rec.weights * rec.y) / W
    Xbar = Z.T @ (rec.weights[:, None] * np.hstack([np.ones((model.n_records, 1)), rec.X])) / W[:, None]
    return ybar, Xbar, W


@pytest.mark.parametrize("case", PE_CASES)
@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_marginal_logp_with_X_Z_D_equals_dense_mvn(name, case):
    """log N(y; mu 1 + X beta, Z (sigma2_k K + sigma2_pe I) Z' + sigma2_e D), to 1e-8 relative.

    K = G (G-BLUP) or WW' (M-BLUP). In the augmented path the model's density is conditional on the
    residual excess eps; there the Gaussian identity log p(y) = log p(y | eps) + log p(eps) -
    log p(eps | y), with p(eps | y) computed densely, checks it at a random eps. Exact up to rounding.
    """
    geno, G, W = _genotypes()
    table = _records(geno, W, case)
    model = _model(name, table, G, W, case, prior="bglr")
    assert model.pe_path == case
    pm_model = model.model
    logp = _likelihood(pm_model)
    rec = model.records
    X1 = np.hstack([np.ones((model.n_records, 1)), rec.X])
    Z = _incidence(model)
    p_rows = G.index(model.ids)
    K = G.matrix[np.ix_(p_rows, p_rows)] if name == "gblup" else model.W @ model.W.T
    D = np.diag(1.0 / rec.weights)
    ybar, Xbar, Wtot = _dense_means(model)
    rng = np.random.default_rng(3)
    for mu, sk, spe, se in [(9.0, 0.5, 0.3, 0.4), (11.0, 1.4, 0.05, 0.9)]:
        beta = rng.normal(0, 0.5, size=rec.n_covariates)
        fixed = np.concatenate([[mu], beta])
        sk_model = sk if name == "gblup" else sk / model.factor
        point = {"mu": mu, "beta": beta, f"{model.kernel_variance}_log__": np.log(sk_model)}
        point |= {"sigma2_e_log__": np.log(se), "sigma2_pe_log__": np.log(spe)}
        V = Z @ (sk_model * K) @ Z.T + se * D + (spe * Z @ Z.T if case != "none" else 0)
        expected = st.multivariate_normal(X1 @ fixed, V).logpdf(rec.y)
        if case == "augmented":
            delta = 1 / Wtot - 1 / Wtot.max()
            on = delta > 0
            eps = np.zeros(model.n)
            eps[on] = rng.normal(0, np.sqrt(se * delta[on]))
            point["z_excess"] = np.where(on, eps / np.sqrt(se * np.where(on, delta, 1)), 0.0)
            Vbar = sk_model * K + spe * np.eye(model.n) + se * np.diag(1 / Wtot)
            S_eps = se * np.diag(delta[on])
            gain = S_eps @ np.linalg.inv(Vbar)[on]
            cond_mean = gain @ (ybar - Xbar @ fixed)
            cond_cov = S_eps - gain[:, on] @ S_eps
            expected += st.multivariate_normal(cond_mean, cond_cov).logpdf(eps[on])
            expected -= st.multivariate_normal(np.zeros(on.sum()), S_eps).logpdf(eps[on])
        point = {k: v for k, v in point.items() if k in {v.name for v in pm_model.value_vars}}
        assert float(logp(point)) == pytest.approx(expected, rel=1e-8)


def _henderson(model, G, sg2, se2, spe2=None):
    """Dense solution of Henderson's mixed-model equations over every individual.

    Unknowns [mu, beta; g (phenotyped, then unphenotyped); p (if sigma2_pe)]; R = D sigma2_e.
    Returns (fixed, g, Var(g | y, theta, fixed)).
    """
    rec = model.records
    X1 = np.hstack([np.ones((model.n_records, 1)), rec.X])
    every = G.index(model.individuals)
    Zg = np.zeros((model.n_records, every.size))
    Zg[np.arange(model.n_records), rec.record_index] = 1.0  # phenotyped individuals come first
    Rinv = np.diag(rec.weights) / se2
    blocks = [X1, Zg]
    penalties = [np.zeros((X1.shape[1],) * 2), np.linalg.inv(G.matrix[np.ix_(every, every)]) / sg2]
    if spe2 is not None:
        blocks.append(_incidence(model))
        penalties.append(np.eye(model.n) / spe2)
    T = np.hstack(blocks)
    lhs = T.T @ Rinv @ T
    offset = 0
    for P in penalties:
        k = P.shape[0]
        lhs[offset : offset + k, offset : offset + k] += P
        offset += k
    solution = np.linalg.solve(lhs, T.T @ Rinv @ rec.y)
    q = X1.shape[1]
    # Conditional on the fixed effects (as g | y, theta, beta is): the inverse of the random block.
    pev = np.diag(np.linalg.inv(lhs[q:, q:]))[: every.size]
    return solution[:q], solution[q : q + every.size], pev


@pytest.mark.parametrize("case", PE_CASES)
@pytest.mark.exact
def test_conditional_fixed_effects_and_genetic_values_solve_henderson_mme(case):
    """With X (intercept, sex, a per-record age), Z (1-4 records, 20% unphenotyped) and D together, at
    fixed variance components: E[beta | y, theta] (GLS), E[g | y, theta] and Var[g | y, theta] of the
    phenotyped and the unphenotyped equal the dense Henderson solution, to 1e-8 relative.

    In the augmented path the package conditions on the residual excess eps. Everything is linear
    in eps, so plugging in E[eps | y, theta] (computed densely) must give Henderson's means, and
    adding Var over eps | y of the conditional mean, ``A Var(eps | y) A'`` with ``A = -sg2 G_.p
    V_eps^-1``, must give Henderson's variances.
    """
    geno, G, W = _genotypes()
    table = _records(geno, W, case)
    model = _model("gblup", table, G, W, case)
    assert model.records.unphenotyped and model.records.n_records > model.n
    sg2, se2, spe2 = 0.6, 0.5, 0.25
    fixed_hat, g_hat, pev = _henderson(model, G, sg2, se2, None if case == "none" else spe2)
    kw, extra_var = ({}, 0.0) if case == "none" else ({"sigma2_pe": spe2}, 0.0)
    if case == "augmented":
        ybar, Xbar, Wtot = _dense_means(model)
        every = G.index(model.individuals)
        p_rows = every[: model.n]
        Vbar = sg2 * G.matrix[np.ix_(p_rows, p_rows)] + spe2 * np.eye(model.n) + se2 * np.diag(1 / Wtot)
        S_eps = se2 * np.diag(1 / Wtot - 1 / Wtot.max())
        gain = S_eps @ np.linalg.inv(Vbar)
        kw["excess"] = gain @ (ybar - Xbar @ fixed_hat)
        cov_eps = S_eps - gain @ S_eps
        V_eps = Vbar - S_eps
        A = -sg2 * G.matrix[np.ix_(every, p_rows)] @ np.linalg.inv(V_eps)
        extra_var = np.einsum("ij,jk,ik->i", A, cov_eps, A)
    np.testing.assert_allclose(
        conditional_fixed_effects(model.posterior_data, sg2, se2, **kw), fixed_hat, rtol=1e-8, atol=1e-10
    )
    mean, var = conditional_genetic_values(model.posterior_data, fixed_hat[0], sg2, se2, fixed_hat[1:], **kw)
    np.testing.assert_allclose(mean, g_hat[: model.n], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        var + np.asarray(extra_var)[: model.n] if case == "augmented" else var, pev[: model.n], rtol=1e-8, atol=1e-10
    )
    # One draw: the posterior moments of the unphenotyped are their conditional moments.
    one = {"sigma2_pe": np.array([spe2])} if case != "none" else {}
    if case == "augmented":
        one["excess"] = kw["excess"][None, :]
    g, extra = posterior_moments(
        model.posterior_data, np.array([fixed_hat[0]]), np.array([sg2]), np.array([se2]), beta=fixed_hat[None, 1:],
        targets=model.targets, **one,
    )  # fmt: skip
    np.testing.assert_allclose(g.mean, g_hat[: model.n], rtol=1e-8, atol=1e-10)
    u_var = extra["unphenotyped"].sd ** 2 + (extra_var[model.n :] if case == "augmented" else 0.0)
    np.testing.assert_allclose(extra["unphenotyped"].mean, g_hat[model.n :], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(u_var, pev[model.n :], rtol=1e-8, atol=1e-10)


@pytest.mark.exact
def test_mblup_with_records_gives_gblup_conditional_values():
    """Same records, G = WW'/m: M-BLUP at sigma2_b = sigma2_g / m gives G-BLUP's g | y, theta (1e-8)."""
    geno, G, W = _genotypes()
    table = _records(geno, W, "diagonal")
    gb, mb = _model("gblup", table, G, W, "diagonal"), _model("mblup", table, G, W, "diagonal")
    beta = np.array([0.3, 0.1])
    a = conditional_genetic_values(gb.posterior_data, 10.0, 0.7, 0.4, beta, sigma2_pe=0.2)
    b = conditional_genetic_values(mb.posterior_data, 10.0, 0.7 / mb.factor, 0.4, beta, sigma2_pe=0.2)
    for x, z in zip(a, b, strict=True):
        np.testing.assert_allclose(x, z, rtol=1e-8, atol=1e-10)


@pytest.mark.exact
def test_one_record_each_with_unit_weights_is_the_plain_model():
    """Weights of 1 on one record each: same eigendecomposition path as no weights at all (S = I up to 1e-12)."""
    geno, G, _W = _genotypes()
    y = pd.Series(np.random.default_rng(1).normal(size=geno.n_individuals), index=geno.ids, name="t")
    plain = bb.GBLUP(y, G, prior="bglr")
    weighted = bb.GBLUP(y, G, prior="bglr", weights=pd.Series(1.0, index=geno.ids))
    assert plain.scale is None and weighted.scale is not None
    point = {"mu": 0.1, "sigma2_g_log__": np.log(0.5), "sigma2_e_log__": np.log(0.7)}
    assert float(_likelihood(weighted.model)(point)) == pytest.approx(float(_likelihood(plain.model)(point)), rel=1e-10)
    assert weighted.msx == pytest.approx(plain.msx, rel=1e-8)


# --- structure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["marginal", "latent"])
@pytest.mark.structural
def test_model_structure_with_repeated_records(mock_pymc_sample, form):
    geno, G, W = _genotypes()
    table = _records(geno, W, "augmented")
    model = _model("gblup", table, G, W, "augmented", form=form)
    pm_model = model.model
    dims = pm_model.named_vars_to_dims
    assert dims["pe" if form == "latent" else "z_excess"] == ("phenotyped_individual",)
    assert list(pm_model.coords["phenotyped_individual"]) == list(model.ids)
    assert {"sigma2_pe", "repeatability", "pe_share"} <= set(pm_model.named_vars)
    if form == "latent":
        assert dims["y"] == ("record",) and len(pm_model.coords["record"]) == len(table)
    else:
        assert dims["y_rotated"] == ("component",) and len(pm_model.coords["component"]) == model.n
        assert [p.name for p in pm_model.potentials] == ["within_individual"]
    assert np.isfinite(pm_model.compile_logp()(pm_model.initial_point()))
    if form == "marginal":  # the mock sampler draws from the prior predictive, which skips potentials
        with pytest.warns(UserWarning, match="Potentials"):
            fit = model.fit(chains=1, draws=10, tune=0, seed=1)
    else:
        fit = model.fit(chains=1, draws=10, tune=0, seed=1)
    gv = fit.genetic_values
    assert len(gv) == geno.n_individuals  # one row per individual, not per record
    assert gv["phenotyped"].sum() == model.n
    assert list(fit.summary().index[:5]) == ["h2", "repeatability", "sigma2_g", "sigma2_pe", "sigma2_e"]
    summary = fit.to_dict()
    assert (summary["n_records"], summary["n_individuals"]) == (len(table), model.n)
    assert summary["permanent_environment"] == "augmented" and summary["weights"] is True


@pytest.mark.exact
def test_bglr_prior_splits_r2_with_a_permanent_environment():
    """BGLR's rule: S0 of each of two random terms uses R2/2; Z's MSx is 1 - sum(n_i^2)/N^2."""
    geno, G, W = _genotypes()
    table = _records(geno, W, "diagonal")
    with_pe = _model("gblup", table, G, W, "diagonal", prior="bglr")
    without = bb.GBLUP(table["y"], G, fixed=table[["sex", "age"]], weights=table["w"], repeated=True, prior="bglr")
    _, a = with_pe.priors
    _, b = without.priors
    assert a["sigma2_g"].parameters["beta"] == pytest.approx(b["sigma2_g"].parameters["beta"] / 2, rel=1e-12)
    assert a["sigma2_e"] == b["sigma2_e"]
    counts = table.groupby(level=0).size().to_numpy()
    msx_z = 1 - (counts**2).sum() / len(table) ** 2
    vy = np.var(table["y"], ddof=1)
    assert a["sigma2_pe"].parameters["beta"] == pytest.approx(vy * 0.25 * 7 / msx_z / 2, rel=1e-12)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.structural
def test_repeated_records_need_to_be_allowed():
    geno, G, W = _genotypes()
    table = _records(geno, W, "none")
    with pytest.raises(bb.InputError, match=r"have several records\. If they are repeated measurements"):
        bb.GBLUP(table["y"], G)
    model = bb.GBLUP(table["y"], G, repeated=True)
    assert model.n_records == len(table) and model.n < len(table)


@pytest.mark.structural
def test_permanent_environment_needs_repeated_records():
    geno, G, _ = _genotypes()
    y = pd.Series(np.arange(geno.n_individuals, dtype=float), index=geno.ids, name="t")
    with pytest.raises(bb.InputError, match=r"\(--permanent-environment\) needs repeated records"):
        bb.GBLUP(y, G, permanent_environment=True)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, "heavy"])
@pytest.mark.structural
def test_weights_must_be_positive_numbers(bad):
    geno, G, _ = _genotypes()
    y = pd.Series(np.arange(geno.n_individuals, dtype=float), index=geno.ids, name="t")
    w = pd.Series(1.0, index=geno.ids, dtype=object)
    w.iloc[[3, 7]] = bad
    with pytest.raises(bb.InputError, match=rf"2 records have a weight that is not a positive number: {geno.ids[3]} "):
        bb.GBLUP(y, G, weights=w)


@pytest.mark.structural
def test_weights_of_records_without_a_trait_value_are_not_checked():
    geno, G, _ = _genotypes()
    y = pd.Series(np.arange(geno.n_individuals, dtype=float), index=geno.ids, name="t")
    y.iloc[0] = np.nan
    w = pd.Series(2.0, index=geno.ids)
    w.iloc[0] = np.nan
    assert bb.GBLUP(y, G, weights=w).records.weights.tolist() == [2.0] * (geno.n_individuals - 1)


@pytest.mark.structural
def test_repeated_records_need_row_aligned_covariates():
    geno, G, W = _genotypes()
    table = _records(geno, W, "none")
    shuffled = table[["sex", "age"]].iloc[::-1]
    with pytest.raises(bb.InputError, match="with repeated records, give one row per record"):
        bb.GBLUP(table["y"], G, fixed=shuffled, repeated=True)


@pytest.mark.structural
def test_phenotyped_without_genotype__names_ten_then_counts():
    geno, G, _ = _genotypes()
    strangers = [f"x{i:02d}" for i in range(13)]
    y = pd.Series(1.0, index=[*geno.ids[:5], *strangers], name="t")
    with pytest.raises(bb.InputError, match=r"13 phenotyped individuals have no genotype: x00, .*, x09 \(and 3 more\)"):
        bb.GBLUP(y, G)


# --- recovery -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "seed"),
    # the augmented path samples an excess per individual: 12 s, so the slow tier
    [("diagonal", 41), pytest.param("augmented", 42, marks=pytest.mark.slow)],
)
@pytest.mark.recovery
def test_recovery_with_repeated_records_sex_effect_and_weights(case, seed):
    """Seeded (chosen before the run): 400 individuals, 80 without records, 1-4 weighted records each
    (or weights summing to 3), h2 = 0.4, sigma2_pe = 0.2, sex effect 0.8, age slope 0.1.

    - The 90% intervals of h2, sigma2_pe and both fixed effects contain the truth (each misses with
      probability 0.1; seeds fixed, so the test is deterministic).
    - The unphenotyped individuals' predicted g correlate with the truth as their reliabilities say:
      E[corr] ~ sqrt(mean reliability); with 80 individuals the sampling sd of a correlation near
      0.5 is (1 - 0.25)/sqrt(80) ~ 0.085, so we allow 0.2 (2.4 sd).
    """
    geno, p = simulate_genotypes(400, 1500, seed=seed)
    geno, _ = bb.quality_control(geno)
    W = bb.genotype_matrix(geno, scaling="standardized-hwe", allele_freq=p)
    G = bb.genomic_relationship(geno, scaling="standardized-hwe", allele_freq=p)
    table, sim_truth = _simulated(geno, W, case, seed=seed, unphenotyped=0.2)
    model = _model("gblup", table, G, W, case)
    # The augmented path (an explicit excess per individual) has a funnel where sigma2_e is small: at the default
    # target_accept 0.9 one run of the slow tier saw 9 divergences in 2 x 800 draws where the same test alone saw 0
    # (the same seed; not reproduced alone: presumably BLAS sums whose last bits follow memory layout, which NUTS
    # amplifies). The docs' advice for a fit with divergences, 0.95, is what this recovery test runs at.
    fit = model.fit(chains=2, draws=800, tune=800, seed=seed, target_accept=0.95 if case == "augmented" else None)
    assert fit.diagnostics()["divergences"] == 0
    s = fit.summary()
    for name, truth in (("h2", 0.4), ("sigma2_pe", 0.2), ("beta[sex[M]]", 0.8), ("beta[age]", 0.1)):
        lo, hi = s.loc[name, ["q05", "q95"]]
        assert lo < truth < hi, f"{name}: truth {truth} outside the 90% interval ({lo:.3f}, {hi:.3f})"
    gv = fit.genetic_values.set_index("id")
    u = list(sim_truth.unphenotyped)
    assert not gv.loc[u, "phenotyped"].any()
    r = np.corrcoef(gv.loc[u, "mean"], sim_truth.genetic_values[u])[0, 1]
    expected = np.sqrt(gv.loc[u, "reliability"].mean())
    assert abs(r - expected) < 0.2, f"corr {r:.3f} vs sqrt(mean reliability) {expected:.3f}"


# --- command line ----------------------------------------------------------------------------


@pytest.mark.structural
def test_fit_cli__repeated_records_weights_permanent_environment(tmp_path):
    geno, _G, W = _genotypes()
    table = _records(geno, W, "augmented")
    pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers).to_csv(tmp_path / "g.csv")
    table.to_csv(tmp_path / "p.csv")
    out = tmp_path / "fit"
    args = [
        "fit", "--genotypes", str(tmp_path / "g.csv"), "--phenotypes", str(tmp_path / "p.csv"), "--trait", "y",
        "--model", "gblup", "--fixed", "sex", "age", "--weights", "w", "--permanent-environment", "--method", "map",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_records"] == len(table)
    assert summary["permanent_environment"] == "augmented"
    assert {"sigma2_pe", "repeatability", "beta[sex[M]]"} <= set(summary["parameters"])
    gv = pd.read_csv(out / "genetic_values.csv")
    assert len(gv) == geno.n_individuals and gv["id"].is_unique
    assert any("residual excess" in w for w in summary["diagnostics"]["warnings"])
    # Without --repeated-records or --permanent-environment the repeated IDs are an error (exit 2).
    plain = [a for a in args if a != "--permanent-environment"]
    assert main([*plain[:-1], "--force", "--quiet"]) == 2
    assert main([*plain[:-1], "--repeated-records", "--force", "--quiet"]) == 0
    missing = [a if a != "w" else "weight" for a in args]
    assert main([*missing[:-1], "--force", "--quiet"]) == 2


@pytest.mark.exact
def test_cross_validation_with_repeated_records_holds_out_individuals():
    """Folds per record, row for row; every held-out record is scored against its individual's
    prediction, which is exactly that of a fit with the fold's records hidden (MAP, deterministic)."""
    geno, G, W = _genotypes()
    table = _records(geno, W, "none", unphenotyped=0.0)
    ids = table.index.unique()
    fold_of = pd.Series(np.arange(ids.size) % 3, index=ids)
    folds = pd.Series(fold_of.loc[table.index].to_numpy(), index=table.index)

    def build(y):
        return bb.GBLUP(y, G, fixed=table[["sex", "age"]], weights=table["w"], repeated=True)

    cv = bb.cross_validate(build, table["y"], folds, method="map")
    assert cv.folds["n_test"].sum() == len(table)
    hidden = (folds == 1).to_numpy()
    alone = build(table["y"].where(~hidden)).fit(method="map").genetic_values.set_index("id")
    part = cv.predictions[cv.predictions["fold"] == 1]
    np.testing.assert_allclose(part["predicted"], alone.loc[part["id"], "mean"], rtol=1e-6)
    assert not alone.loc[part["id"], "phenotyped"].any()
    np.testing.assert_array_equal(part["observed"], table["y"][hidden])
    split = folds.copy()
    row = int(np.flatnonzero(table.index.duplicated())[0])  # a second record of some individual
    split.iloc[row] = (split.iloc[row] + 1) % 3
    with pytest.raises(bb.InputError, match=rf"records of 1 individuals fall in several folds: {table.index[row]}"):
        bb.cross_validate(build, table["y"], split, method="map")


@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_latent_form_record_likelihood_is_normal_with_weights(name):
    """Latent form: y_j ~ N(mu + x_j beta + g_i(j) + p_i(j), sigma2_e / w_j), record by record (1e-10)."""
    geno, G, W = _genotypes()
    table = _records(geno, W, "augmented")
    model = _model(name, table, G, W, "augmented", form="latent", prior="bglr")
    pm_model = model.model
    rng = np.random.default_rng(4)
    point = pm_model.initial_point()
    point = {k: rng.normal(size=np.shape(v)) if k.startswith("z") or k == "beta" else v for k, v in point.items()}
    point["sigma2_e_log__"] = np.log(0.7)
    # Deterministics as functions of the value variables (compiled as they are, RVs would be sampled).
    values = pm_model.replace_rvs_by_values([pm_model["g"], pm_model["pe"], pm_model["mu"]])
    fn = pm_model.compile_fn([pm_model.logp(vars=[pm_model["y"]]), *values], on_unused_input="ignore")
    logp, g, pe, mu = fn(point)
    rec = model.records
    idx = rec.record_index
    mean = mu + rec.X @ point["beta"] + g[: model.n][idx] + pe[idx]
    expected = st.norm(mean, np.sqrt(0.7 / rec.weights)).logpdf(rec.y).sum()
    assert float(logp) == pytest.approx(expected, rel=1e-10)


@pytest.mark.exact
def test_equivalence_check_accepts_repeated_records():
    """The same records through M-BLUP and G-BLUP (MAP, G = WW'/m): the premise holds and records match."""
    geno, _, _ = _genotypes()
    G = bb.genomic_relationship(geno, scaling="standardized")
    W = bb.genotype_matrix(geno, scaling="standardized")
    table = _records(geno, W, "diagonal")
    fits = [_model(name, table, G, W, "diagonal").fit(method="map", seed=1) for name in ("mblup", "gblup")]
    report = check_equivalence(*fits)
    assert report.premise_error < 1e-10
