"""k-fold cross-validation: each fold equals a fit with that fold hidden; errors; the CLI's cv.csv."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.testing import simulate_genotypes


@pytest.fixture(scope="module")
def data():
    geno, _ = simulate_genotypes(90, 300, seed=41)
    geno, _ = bb.quality_control(geno)
    rng = np.random.default_rng(41)
    W = bb.genotype_matrix(geno, scaling="standardized").values
    y = pd.Series(
        W @ rng.normal(0, np.sqrt(0.7 / W.shape[1]), W.shape[1]) + rng.normal(0, 0.6, 90), index=geno.ids, name="y"
    )
    folds = pd.Series(np.arange(90) % 3 + 1, index=geno.ids, name="fold")
    return geno, y, folds


@pytest.mark.exact
def test_cross_validate__each_fold_is_a_fit_with_that_fold_hidden(data):
    geno, y, folds = data
    G = bb.genomic_relationship(geno, scaling="standardized")
    cv = bb.cross_validate(lambda yt: bb.GBLUP(yt, G), y, folds, method="map")
    assert cv.folds["fold"].tolist() == [1, 2, 3]
    assert cv.folds["n_test"].tolist() == [30, 30, 30] and (cv.folds["n_train"] == 60).all()
    hidden = folds == 2
    manual = bb.GBLUP(y.where(~hidden), G).fit(method="map").genetic_values.set_index("id")
    fold2 = cv.predictions[cv.predictions["fold"] == 2].set_index("id")
    np.testing.assert_array_equal(fold2["predicted"], manual.loc[fold2.index, "mean"])
    assert not manual.loc[fold2.index, "phenotyped"].any()
    for level, part in cv.predictions.groupby("fold"):
        expected = np.corrcoef(part["predicted"], part["observed"])[0, 1]
        assert cv.folds.set_index("fold").loc[level, "correlation"] == pytest.approx(expected, rel=1e-12)
    assert cv.mean_correlation == pytest.approx(cv.folds["correlation"].mean())
    assert "mean correlation" in "\n".join(cv.lines())


@pytest.mark.structural
def test_cross_validate__raise_on_records_without_fold(data):
    geno, y, folds = data
    G = bb.genomic_relationship(geno, scaling="standardized")
    with pytest.raises(bb.InputError, match=r"5 records have no fold"):
        bb.cross_validate(lambda yt: bb.GBLUP(yt, G), y, folds.iloc[5:], method="map")


@pytest.mark.structural
def test_cross_validate__raise_on_one_fold(data):
    geno, y, folds = data
    G = bb.genomic_relationship(geno, scaling="standardized")
    with pytest.raises(bb.InputError, match=r"at least 2 folds"):
        bb.cross_validate(lambda yt: bb.GBLUP(yt, G), y, folds * 0, method="map")


@pytest.mark.structural
def test_fit_cli__folds_writes_cv_csv(tmp_path, data):
    geno, y, folds = data
    pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers).to_csv(tmp_path / "g.csv")
    pd.DataFrame({"y": y, "fold": folds}).rename_axis("id").to_csv(tmp_path / "p.csv")
    out = tmp_path / "fit"
    args = [
        "fit", "--genotypes", str(tmp_path / "g.csv"), "--phenotypes", str(tmp_path / "p.csv"), "--trait", "y",
        "--model", "mblup", "--method", "map", "--folds", "fold", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    cv = pd.read_csv(out / "cv.csv")
    assert list(cv.columns) == ["fold", "n_train", "n_test", "correlation", "h2_mean", "h2_q05", "h2_q95"]
    assert cv["fold"].tolist() == [1, 2, 3]
    assert len(pd.read_csv(out / "cv_predictions.csv")) == 90
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cross_validation"]["mean_correlation"] == pytest.approx(cv["correlation"].mean())
