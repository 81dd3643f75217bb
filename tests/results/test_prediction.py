"""Individuals without a record (genotyped at fit time, or later): exact oracles, reliabilities, errors, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.inference.posterior import posterior_moments
from bayesblup.testing import simulate_genotypes


@pytest.fixture(scope="module")
def data():
    geno, _ = simulate_genotypes(70, 200, seed=21)
    geno, _ = bb.quality_control(geno)
    rng = np.random.default_rng(21)
    W = bb.genotype_matrix(geno, scaling="standardized-hwe").values
    g = W @ rng.normal(0, np.sqrt(0.6 / W.shape[1]), W.shape[1])
    y = pd.Series(1.0 + g + rng.normal(0, 0.8, g.size), index=geno.ids, name="y")
    return geno, y


def dense_prediction(G_pp, G_up, G_uu_diag, y, mu, sg2, se2):
    """sg2 G_up V^-1 (y - mu) and sg2 G_uu - sg2^2 diag(G_up V^-1 G_pu), V = sg2 G_pp + se2 I."""
    V_inv = np.linalg.inv(sg2 * G_pp + se2 * np.eye(len(y)))
    mean = sg2 * G_up @ V_inv @ (y - mu)
    var = sg2 * G_uu_diag - sg2**2 * np.einsum("ij,jk,ik->i", G_up, V_inv, G_up)
    return mean, var


@pytest.mark.parametrize("name", ["gblup", "mblup"])
@pytest.mark.exact
def test_unphenotyped__conditional_moments_equal_the_dense_blup(data, name):
    """At one theta the moments of g for individuals without a record equal the dense formula (1e-8)."""
    geno, y = data
    y = y.copy()
    y.iloc[::5] = np.nan  # 14 genotyped individuals without a record
    G = bb.genomic_relationship(geno, scaling="standardized-hwe")
    W = bb.genotype_matrix(geno, scaling="standardized-hwe")
    model = bb.GBLUP(y, G) if name == "gblup" else bb.MBLUP(y, W)
    p, u = G.index(model.ids), G.index(model.records.unphenotyped)
    assert len(u) == 14
    mu, sg2, se2 = 0.9, 0.55, 0.7
    sk = sg2 / model.factor
    _, extra = posterior_moments(
        model.posterior_data, np.array([mu]), np.array([sk]), np.array([se2]), targets=model.targets
    )
    M = G.matrix
    mean, var = dense_prediction(M[np.ix_(p, p)], M[np.ix_(u, p)], np.diag(M)[u], model.y, mu, sg2, se2)
    np.testing.assert_allclose(extra["unphenotyped"].mean, mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(extra["unphenotyped"].sd ** 2, var, rtol=1e-8, atol=1e-10)


@pytest.mark.structural
def test_unphenotyped__in_genetic_values_with_pev_and_reliability(data):
    geno, y = data
    y = y.copy()
    y.iloc[:10] = np.nan
    G = bb.genomic_relationship(geno, scaling="standardized-hwe")
    fit = bb.GBLUP(y, G).fit(chains=2, draws=300, tune=300, seed=2)
    gv = fit.genetic_values
    assert len(gv) == 70 and gv["phenotyped"].sum() == 60
    assert set(gv.loc[~gv["phenotyped"], "id"]) == set(geno.ids[:10])
    np.testing.assert_allclose(gv["pev"], gv["sd"] ** 2)
    sigma2_g = fit.summary().loc["sigma2_g", "mean"]
    diag = pd.Series(np.diag(G.matrix), index=G.ids)[gv["id"]].to_numpy()
    np.testing.assert_allclose(gv["reliability"], 1 - gv["pev"] / (sigma2_g * diag), rtol=1e-10)
    # Records inform an individual's own value: reliabilities of phenotyped individuals are higher
    # on average than those predicted only through G from unrelated individuals (here near 0).
    assert gv.loc[gv["phenotyped"], "reliability"].mean() > gv.loc[~gv["phenotyped"], "reliability"].mean() + 0.1


@pytest.mark.exact
def test_predict__new_individuals_by_hand(data):
    """New genotypes on the training scale (training p), G21 = W_new W_train'/m, at the MAP theta."""
    geno, y = data
    train, new = geno.select(individuals=np.arange(55)), geno.select(individuals=np.arange(55, 70))
    G = bb.genomic_relationship(train, scaling="standardized-hwe")
    fit = bb.GBLUP(y[train.ids], G).fit(method="map")
    pred = fit.predict(new, training=train)
    assert pred["id"].tolist() == list(new.ids)

    X_train, X_new = train.calls.astype(float), new.calls.astype(float)
    p = X_train.mean(0) / 2  # training allele frequencies, not the new individuals'
    scale = np.sqrt(2 * p * (1 - p))
    W_train, W_new = (X_train - 2 * p) / scale, (X_new - 2 * p) / scale
    m = X_train.shape[1]
    point = fit.summary()["mean"]
    mean, var = dense_prediction(
        W_train @ W_train.T / m, W_new @ W_train.T / m, (W_new**2).sum(1) / m,
        y[train.ids].to_numpy(), point["mu"], point["sigma2_g"], point["sigma2_e"],
    )  # fmt: skip
    np.testing.assert_allclose(pred["mean"], mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pred["sd"] ** 2, var, rtol=1e-8, atol=1e-10)


@pytest.mark.exact
def test_predict__mblup_equals_gblup_at_the_same_theta(data):
    """With G = WW'/m the two models predict identically at equal theta (the MAP of one model)."""
    geno, y = data
    train, new = geno.select(individuals=np.arange(60)), geno.select(individuals=np.arange(60, 70))
    gfit = bb.GBLUP(y[train.ids], bb.genomic_relationship(train, scaling="standardized")).fit(method="map")
    mfit = bb.MBLUP(y[train.ids], bb.genotype_matrix(train, scaling="standardized")).fit(method="map")
    g_pred, m_pred = gfit.predict(new, training=train), mfit.predict(new)
    # Both MAPs solve the same problem in two parametrisations; the optimiser stops within ~1e-5.
    np.testing.assert_allclose(m_pred["mean"], g_pred["mean"], rtol=1e-3, atol=1e-4)


@pytest.mark.structural
def test_predict__raise_on_individuals_already_fitted(data):
    geno, y = data
    fit = bb.GBLUP(y, bb.genomic_relationship(geno, scaling="centered")).fit(method="map")
    with pytest.raises(bb.InputError, match=r"70 individuals to predict are already in the fit"):
        fit.predict(geno, training=geno)


@pytest.mark.structural
def test_predict__raise_without_training_genotypes(data):
    geno, y = data
    train, new = geno.select(individuals=np.arange(60)), geno.select(individuals=np.arange(60, 70))
    fit = bb.GBLUP(y[train.ids], bb.genomic_relationship(train, scaling="centered")).fit(method="map")
    with pytest.raises(bb.InputError, match=r"needs the training genotypes here"):
        fit.predict(new)


@pytest.mark.structural
def test_predict__raise_for_a_g_read_from_file(data):
    geno, y = data
    G = bb.genomic_relationship(geno.select(individuals=np.arange(60)), scaling="centered")
    G_file = bb.Relationship(matrix=G.matrix, ids=G.ids, scaling="user")
    fit = bb.GBLUP(y[G.ids], G_file).fit(method="map")
    with pytest.raises(bb.InputError, match=r"carries no marker scaling"):
        fit.predict(geno.select(individuals=np.arange(60, 70)), training=geno)


@pytest.mark.structural
def test_fit_cli__unphenotyped_rows_and_predictions_csv(tmp_path, data):
    geno, y = data
    train, new = geno.select(individuals=np.arange(60)), geno.select(individuals=np.arange(60, 70))
    for name, part in (("train.csv", train), ("new.csv", new)):
        pd.DataFrame(part.calls, index=pd.Index(part.ids, name="id"), columns=part.markers).to_csv(tmp_path / name)
    y[train.ids[:50]].rename("yield").to_frame().rename_axis("id").to_csv(tmp_path / "pheno.csv")
    out = tmp_path / "fit"
    args = [
        "fit", "--genotypes", str(tmp_path / "train.csv"), "--phenotypes", str(tmp_path / "pheno.csv"),
        "--trait", "yield", "--model", "gblup", "--method", "map", "--predict", str(tmp_path / "new.csv"),
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    gv = pd.read_csv(out / "genetic_values.csv", dtype={"id": str})
    assert list(gv.columns) == ["id", "mean", "sd", "pev", "reliability", "phenotyped"]
    assert len(gv) == 60 and (~gv["phenotyped"]).sum() == 10
    pred = pd.read_csv(out / "predictions.csv", dtype={"id": str})
    assert list(pred.columns) == ["id", "mean", "sd", "pev", "reliability"] and pred["id"].tolist() == list(new.ids)
    assert (pred["sd"] > 0).all()
    # as genetic_values: PEV = sd^2, reliability = 1 - PEV / (sigma2_g v), v = W_new W_new' / m on the training scale
    np.testing.assert_allclose(pred["pev"], pred["sd"] ** 2, rtol=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    scaling = bb.genomic_relationship(train).marker_scaling
    W_new = scaling.transform_block(scaling.align(new), slice(None))
    prior = summary["parameters"]["sigma2_g"]["mean"] * (W_new**2).sum(1) / scaling.denominator
    np.testing.assert_allclose(pred["reliability"], 1 - pred["pev"] / prior, rtol=1e-6)
    assert ((pred["reliability"] > 0) & (pred["reliability"] < 1)).all()


@pytest.mark.exact
def test_back_solve_markers__equals_dense_ridge_at_one_theta(data):
    """At the MAP theta: E[b | y] = (sg2/m) W' V^-1 (y - mu), Var = sg2/m - (sg2/m)^2 diag(W' V^-1 W)."""
    geno, y = data
    fit = bb.GBLUP(y, bb.genomic_relationship(geno, scaling="standardized")).fit(method="map")
    b = fit.back_solve_markers(geno)
    X = geno.calls.astype(float)
    W = (X - X.mean(0)) / X.std(0, ddof=1)
    m = W.shape[1]
    point = fit.summary()["mean"]
    sb2, se2 = point["sigma2_g"] / m, point["sigma2_e"]
    V_inv = np.linalg.inv(sb2 * W @ W.T + se2 * np.eye(W.shape[0]))
    np.testing.assert_allclose(b["mean"], sb2 * W.T @ V_inv @ (y.to_numpy() - point["mu"]), rtol=1e-8, atol=1e-12)
    var = sb2 - sb2**2 * np.einsum("ij,ik,kj->j", W, V_inv, W)
    np.testing.assert_allclose(b["sd"] ** 2, var, rtol=1e-8, atol=1e-14)
    assert b["marker"].tolist() == list(geno.markers)


@pytest.mark.recovery
def test_back_solve_markers__equals_mblup_within_monte_carlo_error(data):
    """Both fits (same default prior, so one posterior) give the same marker effects.

    Each mean is an average over 2000 draws of E[b | y, theta], whose spread over theta is a fraction
    of the posterior sd; with ESS >= 500 the Monte Carlo error of each mean is <= sd / sqrt(500) ~
    0.045 sd, so two independent fits differ by <= 0.063 sd per marker (1 combined error). 0.3 sd is
    ~5 combined errors, for the worst of 200 markers.
    """
    geno, y = data
    gfit = bb.GBLUP(y, bb.genomic_relationship(geno, scaling="standardized")).fit(chains=2, draws=1000, seed=3)
    mfit = bb.MBLUP(y, bb.genotype_matrix(geno, scaling="standardized")).fit(chains=2, draws=1000, seed=4)
    b_g, b_m = gfit.back_solve_markers(geno), mfit.marker_effects
    assert (b_g["marker"] == b_m["marker"]).all()
    assert np.max(np.abs(b_g["mean"] - b_m["mean"]) / b_m["sd"]) < 0.3
    np.testing.assert_allclose(b_g["sd"], b_m["sd"], rtol=0.05)  # sds: same draws argument, 5%


@pytest.mark.structural
def test_back_solve_markers__raise_for_mblup(data):
    geno, y = data
    fit = bb.MBLUP(y, bb.genotype_matrix(geno, scaling="standardized")).fit(method="map")
    with pytest.raises(bb.InputError, match=r"is for G-BLUP fits"):
        fit.back_solve_markers(geno)
