"""Fixed effects X: design matrix, spectral logp and Henderson oracles with X, recovery, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.inference.posterior import conditional_genetic_values
from bayesblup.phenotypes import design_matrix
from bayesblup.testing import simulate_genotypes


def simulate(n=60, m=150, seed=31, h2=0.5, sex_effect=0.8, age_slope=0.05):
    geno, p = simulate_genotypes(n, m, seed=seed)
    geno, _ = bb.quality_control(geno)
    rng = np.random.default_rng(seed)
    W = bb.genotype_matrix(geno, scaling="standardized-hwe").values
    g = W @ rng.normal(0, np.sqrt(h2 / W.shape[1]), W.shape[1])
    sex = rng.choice(["F", "M"], size=n)
    age = rng.uniform(20, 60, size=n)
    e = rng.normal(0, np.sqrt(1 - h2), n)
    y = 3.0 + sex_effect * (sex == "M") + age_slope * age + g + e
    fixed = pd.DataFrame({"sex": sex, "age": age}, index=geno.ids)
    return geno, p, pd.Series(y, index=geno.ids, name="y"), fixed


@pytest.mark.structural
def test_design_matrix__numbers_and_factors():
    table = pd.DataFrame({"age": [30.0, 40.0, 50.0, 35.0], "herd": ["b", "a", "c", "a"]}, index=list("wxyz"))
    X, names = design_matrix(table)
    assert names == ("age", "herd[b]", "herd[c]")  # herd 'a' is the reference level
    np.testing.assert_array_equal(X, [[30, 1, 0], [40, 0, 0], [50, 0, 1], [35, 0, 0]])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame({"age": [30.0, np.nan, 50.0]}, index=list("abc")), r"1 records have a missing value in age: b"),
        (pd.DataFrame({"age": [30.0, 30.0, 30.0]}, index=list("abc")), r"fixed effect age is constant"),
        (pd.DataFrame({"herd": ["a", "a", "a"]}, index=list("abc")), r"herd has a single level \(a\)"),
        (
            pd.DataFrame({"x": [1.0, 2.0, 3.0], "z": [2.0, 4.0, 6.0]}, index=list("abc")),
            r"collinear with each other or with the intercept",
        ),
    ],
    ids=["missing", "constant", "single_level", "collinear"],
)
@pytest.mark.structural
def test_design_matrix__raise_on_bad_table(table, message):
    with pytest.raises(bb.InputError, match=message):
        design_matrix(table)


@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_spectral_logp_with_fixed_effects_equals_dense_mvn(name):
    """logp(y_rotated) = log N(y; mu 1 + X beta, sigma2_k K + sigma2_e I), to 1e-8 relative."""
    geno, _, y, fixed = simulate()
    G = bb.genomic_relationship(geno, scaling="standardized-hwe")
    W = bb.genotype_matrix(geno, scaling="standardized-hwe")
    model = bb.GBLUP(y, G, fixed=fixed, prior="bglr") if name == "gblup" else bb.MBLUP(y, W, fixed=fixed, prior="bglr")
    pm_model = model.model
    assert pm_model.named_vars_to_dims["beta"] == ("covariate",)
    assert list(pm_model.coords["covariate"]) == ["sex[M]", "age"]
    logp = pm_model.compile_fn(pm_model.logp(vars=[pm_model["y_rotated"]]), on_unused_input="ignore")
    X = model.records.X
    K = G.matrix if name == "gblup" else W.values @ W.values.T
    for mu, sk, se, beta in [(2.5, 0.4, 0.6, [0.7, 0.04]), (0.0, 1.3, 0.2, [-0.2, 0.1])]:
        sk = sk if name == "gblup" else sk / model.factor
        point = {"mu": mu, "beta": np.array(beta)}
        point |= {f"{model.kernel_variance}_log__": np.log(sk), "sigma2_e_log__": np.log(se)}
        dense = st.multivariate_normal(mu + X @ beta, sk * K + se * np.eye(model.n)).logpdf(model.y)
        assert logp(point) == pytest.approx(dense, rel=1e-8)


@pytest.mark.exact
def test_conditional_genetic_values_with_fixed_effects_solve_henderson_mme():
    """[[X1'X1, X1'], [X1, I + G^-1 se2/sg2]] [beta; g] = [X1'y; y] with X1 = [1, X], full-rank G."""
    geno, p, y, fixed = simulate(m=300)
    G = bb.genomic_relationship(geno, scaling="standardized-hwe", allele_freq=p[: geno.n_markers])
    model = bb.GBLUP(y, G, fixed=fixed)
    sg2, se2 = 0.6, 0.5
    X1 = np.hstack([np.ones((model.n, 1)), model.records.X])
    Ginv = np.linalg.inv(G.matrix)
    q = X1.shape[1]
    lhs = np.block([[X1.T @ X1, X1.T], [X1, np.eye(model.n) + Ginv * se2 / sg2]])
    sol = np.linalg.solve(lhs, np.concatenate([X1.T @ model.y, model.y]))
    beta_hat, g_hat = sol[:q], sol[q:]
    mean, _ = conditional_genetic_values(model.posterior_data, beta_hat[0], sg2, se2, beta=beta_hat[1:])
    np.testing.assert_allclose(mean, g_hat, rtol=1e-8, atol=1e-10)


@pytest.mark.recovery
def test_fixed_effects__recovered_with_h2():
    """Seeded (chosen before the run): n = 400; the 90% intervals of the sex effect, the age slope and
    h2 contain the truth."""
    geno, _, y, fixed = simulate(n=400, m=800, seed=2024)
    G = bb.genomic_relationship(geno, scaling="standardized-hwe")
    fit = bb.GBLUP(y, G, fixed=fixed).fit(chains=2, draws=1000, seed=2024)
    table = fit.summary()
    for name, truth in (("beta[sex[M]]", 0.8), ("beta[age]", 0.05), ("h2", 0.5)):
        lo, hi = table.loc[name, ["q05", "q95"]]
        assert lo < truth < hi, f"{name}: truth {truth} outside the 90% interval ({lo:.3f}, {hi:.3f})"
    assert fit.diagnostics()["divergences"] == 0


@pytest.mark.structural
def test_fixed_effects__latent_form_builds_with_beta():
    geno, _, y, fixed = simulate()
    model = bb.GBLUP(y, bb.genomic_relationship(geno, scaling="centered"), fixed=fixed, form="latent")
    pm_model = model.model
    assert {"beta", "g", "y"} <= set(pm_model.named_vars)
    point = pm_model.initial_point()
    assert np.isfinite(pm_model.compile_logp()(point))


@pytest.mark.structural
def test_fit_cli__fixed_columns(tmp_path):
    geno, _, y, fixed = simulate()
    pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers).to_csv(tmp_path / "g.csv")
    fixed.assign(y=y).rename_axis("id").to_csv(tmp_path / "p.csv")
    out = tmp_path / "fit"
    args = [
        "fit", "--genotypes", str(tmp_path / "g.csv"), "--phenotypes", str(tmp_path / "p.csv"), "--trait", "y",
        "--model", "gblup", "--fixed", "sex", "age", "--method", "map", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"beta[sex[M]]", "beta[age]"} <= set(summary["parameters"])
    bad = [a if a != "age" else "weight" for a in args]
    assert main([*bad[:-1], "--force", "--quiet"]) == 2
