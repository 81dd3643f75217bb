"""Binary and ordinal traits: the threshold model (bayesblup.models.threshold).

Exact (1e-8 relative): the model's log-likelihood at any point is the probit likelihood computed directly with
scipy from the same liabilities and thresholds; the observed-scale factor is 2/pi at prevalence 1/2 (z = phi(0)).
Structural: categories and refusals, names, the case probabilities, the command line.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import bayesblup as bb
from bayesblup.models.threshold import categories, observed_scale_factor
from bayesblup.testing import simulate_genotypes


@pytest.fixture(scope="module")
def data():
    """80 individuals, a liability with h2 = 0.5, cut at its 70% quantile (binary) and in terciles (ordinal)."""
    rng = np.random.default_rng(16)
    geno, _ = simulate_genotypes(80, 120, allele_freq=rng.uniform(0.1, 0.9, 120), seed=rng)
    G = bb.genomic_relationship(geno)
    values, vectors = np.linalg.eigh(G.matrix)
    g = vectors @ (np.sqrt(np.clip(values, 0, None)) * rng.standard_normal(values.size))
    liability = g + rng.standard_normal(values.size)
    index = pd.Index(G.ids.astype(str))
    binary = pd.Series((liability > np.quantile(liability, 0.7)).astype(float), index=index)
    ordinal = pd.Series(np.digitize(liability, np.quantile(liability, [1 / 3, 2 / 3])).astype(float), index=index)
    return geno, G, binary, ordinal


def _at_random_point(model, names, seed):
    pm_model = model.model
    tensors = [pm_model.logp(vars=[pm_model["y"]])] + [pm_model[name] for name in names]
    f = pm_model.compile_fn(pm_model.replace_rvs_by_values(tensors), inputs=pm_model.value_vars,
                            on_unused_input="ignore")  # fmt: skip
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in pm_model.initial_point().items()}
    return [np.asarray(v) for v in f(point)]


@pytest.mark.exact
@pytest.mark.parametrize("kind", ["gblup", "mblup"])
def test_binary_likelihood_is_the_probit_likelihood(data, kind):
    geno, G, binary, _ = data
    model = bb.GBLUP(binary, G, family="binary") if kind == "gblup" else bb.MBLUP(binary, bb.genotype_matrix(geno),
                                                                                    family="binary")  # fmt: skip
    y = model.categories.codes
    for seed in (1, 2):
        logp, g, mu = _at_random_point(model, ["g", "mu"], seed)
        eta = mu + g[: model.n]
        expected = np.where(y == 1, st.norm.logcdf(eta), st.norm.logsf(eta)).sum()
        assert float(logp) == pytest.approx(expected, rel=1e-8)


@pytest.mark.exact
def test_ordinal_likelihood_is_the_probit_likelihood_between_thresholds(data):
    _, G, _, ordinal = data
    model = bb.GBLUP(ordinal, G, family="ordinal")
    assert model.categories.n_categories == 3
    y = model.categories.codes
    for seed in (1, 2):
        logp, g, t1, t2 = _at_random_point(model, ["g", "threshold_1", "threshold_2"], seed)
        assert t1 < t2
        cuts = np.array([-np.inf, float(t1), float(t2), np.inf])
        eta = g[: model.n]
        expected = np.log(st.norm.cdf(cuts[y + 1] - eta) - st.norm.cdf(cuts[y] - eta)).sum()
        assert float(logp) == pytest.approx(expected, rel=1e-8)


@pytest.mark.exact
@pytest.mark.parametrize("kind", ["gblup", "mblup"])
def test_float32_factor_changes_the_likelihood_by_rounding_only(data, monkeypatch, kind):
    """Past FLOAT32_FACTOR_SIZE entries G's factor (or W) is held in float32: the log-likelihood moves by
    float32 rounding only. Each g_i sums ~100 products whose relative rounding is 6e-8, so g moves by ~1e-6 of
    its scale and the log-likelihood, a sum of 80 terms of order 1, by well under 1e-5 relative."""
    import bayesblup.models.model as model_module

    geno, G, binary, _ = data

    def build():
        if kind == "gblup":
            return bb.GBLUP(binary, G, family="binary")
        return bb.MBLUP(binary, bb.genotype_matrix(geno), family="binary")

    exact = _at_random_point(build(), ["g"], 3)
    monkeypatch.setattr(model_module, "FLOAT32_FACTOR_SIZE", 0)
    rounded = _at_random_point(build(), ["g"], 3)
    assert float(rounded[0]) == pytest.approx(float(exact[0]), rel=1e-5)
    assert float(rounded[0]) != float(exact[0])  # the float32 path was taken
    np.testing.assert_allclose(rounded[1], exact[1], atol=1e-5 * np.abs(exact[1]).max())


@pytest.mark.exact
def test_observed_scale_factor_dempster_lerner():
    assert observed_scale_factor(0.5) == pytest.approx(2 / np.pi, rel=1e-12)  # z = phi(0), K (1 - K) = 1/4
    K = 0.1
    z = np.exp(-(st.norm.ppf(0.9) ** 2) / 2) / np.sqrt(2 * np.pi)
    assert observed_scale_factor(K) == pytest.approx(z**2 / (K * (1 - K)), rel=1e-12)
    with pytest.raises(bb.InputError, match="prevalence must lie in"):
        observed_scale_factor(1.0)


@pytest.mark.structural
def test_categories_codes_and_refusals():
    cats = categories(np.array([2.0, 1.0, 2.0, 1.0, 1.0]), "binary")  # PLINK's 1 = control, 2 = case
    assert cats.codes.tolist() == [1, 0, 1, 0, 0] and cats.labels.tolist() == [1.0, 2.0]
    assert cats.prevalence == pytest.approx(0.4)
    np.testing.assert_allclose(cats.initial_thresholds(), st.norm.ppf([0.6]))
    with pytest.raises(bb.InputError, match="exactly two values"):
        categories(np.array([0.0, 1.0, 2.0]), "binary")
    with pytest.raises(bb.InputError, match="at least two categories"):
        categories(np.ones(5), "ordinal")
    with pytest.raises(bb.InputError, match="looks like a continuous trait"):
        categories(np.arange(30.0), "ordinal")


@pytest.mark.structural
def test_names_probabilities_and_refusals(data):
    _, G, binary, ordinal = data
    model = bb.GBLUP(binary, G, family="binary", prevalence=0.05)
    assert model.form == "latent"
    assert model.parameter_names == ["h2", "h2_observed", "h2_observed_population", "sigma2_g", "mu"]
    fit = model.fit(chains=2, draws=60, tune=60, seed=1)
    post = fit.datatree.posterior
    np.testing.assert_allclose(post["sigma2_g"], post["h2"] / (1 - post["h2"]), rtol=1e-10)
    np.testing.assert_allclose(post["h2_observed"], post["h2"] * observed_scale_factor(0.3), rtol=1e-10)
    gv = fit.genetic_values
    assert gv["probability"].between(0, 1).all()
    # cases have the higher posterior probability on average
    assert gv["probability"][binary.to_numpy() == 1].mean() > gv["probability"][binary.to_numpy() == 0].mean()
    assert bb.GBLUP(ordinal, G, family="ordinal").parameter_names == ["h2", "sigma2_g", "threshold_1", "threshold_2"]
    assert model.fit(method="map").sampler == "laplace"  # the Laplace marginal mode (test_threshold_laplace.py)
    with pytest.raises(bb.InputError, match="no marginal form"):
        bb.GBLUP(binary, G, family="binary", form="marginal")
    with pytest.raises(bb.InputError, match="takes one trait"):
        bb.GBLUP(pd.concat([binary.rename("a"), ordinal.rename("b")], axis=1), G, family="binary")
    with pytest.raises(bb.InputError, match="takes one kernel"):
        bb.MultiGBLUP(binary, {"a": G, "b": G}, family="binary")
    with pytest.raises(bb.InputError, match="prevalence applies to family='binary'"):
        bb.GBLUP(binary, G, prevalence=0.1)
    with pytest.raises(bb.InputError, match="exactly two values"):
        bb.GBLUP(ordinal, G, family="binary")


@pytest.mark.structural
def test_cli_family_binary_and_the_warning_for_a_two_valued_gaussian_trait(tmp_path, data, capsys):
    from bayesblup.cli.main import main

    geno, _, binary, _ = data
    geno_csv, pheno_csv = tmp_path / "geno.csv", tmp_path / "pheno.csv"
    pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers).to_csv(geno_csv)
    binary.rename("d").rename_axis("id").to_frame().to_csv(pheno_csv)
    common = ["fit", "--genotypes", str(geno_csv), "--phenotypes", str(pheno_csv), "--trait", "d", "--model", "gblup",
              "--chains", "1", "--draws", "30", "--tune", "30", "--seed", "1"]  # fmt: skip
    assert main([*common, "--family", "binary", "--prevalence", "0.05", "--out", str(tmp_path / "b")]) == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert {"h2", "h2_observed", "h2_observed_population", "mu"} <= set(summary["parameters"])
    assert summary["specification"]["family"] == "binary"
    assert "probability" in pd.read_csv(tmp_path / "b" / "genetic_values.csv").columns
    capsys.readouterr()
    assert main([*common, "--method", "map", "--out", str(tmp_path / "g")]) == 0
    assert "--family binary" in capsys.readouterr().out


@pytest.mark.exact
def test_predicted_new_individuals_from_the_draws_of_g(data):
    """``T | g ~ N(G21 G11^+ g, sigma2_g (G22 - G21 G11^+ G12))`` per draw, combined over the draws; a binary trait's
    probability ``E[Phi((mu + m) / sqrt(1 + s^2))]``: against numpy's pinv, to 1e-8."""
    geno, _, binary, _ = data
    train, new = geno.select(individuals=np.arange(70)), geno.select(individuals=np.arange(70, 80))
    G = bb.genomic_relationship(train)
    fit = bb.GBLUP(binary.iloc[:70], G, family="binary").fit(chains=2, draws=40, tune=40, seed=3)
    pred = fit.predict(new, training=train)
    scaling = G.marker_scaling
    W_fit = scaling.transform_block(scaling.align(train), slice(None))
    W_new = scaling.transform_block(scaling.align(new), slice(None))
    G21, G22 = W_new @ W_fit.T / scaling.denominator, (W_new**2).sum(1) / scaling.denominator
    pinv = np.linalg.pinv(G.matrix, rcond=1e-10, hermitian=True)
    post = fit.datatree.posterior
    g = post["g"].values.reshape(-1, 70)
    s2 = post["sigma2_g"].values.reshape(-1)
    mu = post["mu"].values.reshape(-1)
    m = g @ pinv @ G21.T
    var = s2[:, None] * (G22 - np.einsum("ij,jk,ik->i", G21, pinv, G21))[None, :]
    np.testing.assert_allclose(pred["mean"], m.mean(0), rtol=1e-8)
    np.testing.assert_allclose(pred["sd"] ** 2, var.mean(0) + m.var(0), rtol=1e-8)
    expected = st.norm.cdf((mu[:, None] + m) / np.sqrt(1 + var)).mean(0)
    np.testing.assert_allclose(pred["probability"], expected, rtol=1e-8)
