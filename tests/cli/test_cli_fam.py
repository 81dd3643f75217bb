"""PLINK's .fam as the phenotype file: its sixth column, -9 missing, 1/2 case/control read as 0/1 and fitted binary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.cli.main import main

pytestmark = pytest.mark.structural

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "plink_sample" / "sample"


def _plink_with(tmp_path: Path, phenotype: list[str]) -> Path:
    """The sample PLINK set with its .fam's sixth column replaced."""
    for ext in (".bed", ".bim"):
        shutil.copy(SAMPLE.with_suffix(ext), tmp_path / f"sample{ext}")
    fam = pd.read_csv(SAMPLE.with_suffix(".fam"), sep=r"\s+", header=None, dtype=str)
    fam[5] = phenotype
    fam.to_csv(tmp_path / "sample.fam", sep=" ", header=False, index=False)
    return tmp_path / "sample"


def test_read_fam_phenotype__case_control_and_quantitative(tmp_path):
    rng = np.random.default_rng(1)
    codes = rng.choice(["1", "2"], size=120).astype(object)
    codes[:5] = ["-9", "0", "-9", "1", "2"]
    prefix = _plink_with(tmp_path, list(codes))
    table = bb.read_phenotypes(prefix.with_suffix(".fam"))
    iids = pd.read_csv(SAMPLE.with_suffix(".fam"), sep=r"\s+", header=None, dtype=str)[1]
    assert list(table.index) == list(iids) and list(table.columns) == ["phenotype"]
    assert table.attrs["case_control"] == ["phenotype"]
    expected = pd.Series(codes).map({"1": 0.0, "2": 1.0}).to_numpy()  # -9 and 0: missing
    np.testing.assert_array_equal(table["phenotype"].to_numpy(), expected)

    values = rng.normal(size=120).round(3).astype(str)
    values[3] = "-9"
    quantitative = bb.read_phenotypes(_plink_with(tmp_path, list(values)).with_suffix(".fam"))
    assert quantitative.attrs["case_control"] == [] and np.isnan(quantitative["phenotype"].iloc[3])
    kept = quantitative["phenotype"].drop(quantitative.index[3])
    np.testing.assert_allclose(kept, np.delete(values, 3).astype(float))


def test_fit__a_fam_case_control_trait_is_fitted_binary(tmp_path, capsys):
    codes = np.random.default_rng(2).choice(["1", "2"], size=120)
    prefix = _plink_with(tmp_path, list(codes))
    args = ["fit", "--genotypes", str(prefix.with_suffix(".bed")), "--phenotypes", str(prefix.with_suffix(".fam")),
            "--trait", "phenotype", "--method", "map", "--out", str(tmp_path / "fit")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "trait phenotype: PLINK case/control (1 = control, 2 = case) read as 0/1 and fitted as a binary" in out
    summary = json.loads((tmp_path / "fit" / "summary.json").read_text())
    assert summary["specification"]["family"] == "binary" and "h2_observed" in summary["parameters"]


def test_a_fam_without_six_columns_is_refused(tmp_path, capsys):
    (tmp_path / "bad.fam").write_text("F1 I1 0 0 1\nF1 I2 0 0 2\n")
    args = ["fit", "--genotypes", str(SAMPLE.with_suffix(".bed")), "--phenotypes", str(tmp_path / "bad.fam"),
            "--trait", "phenotype", "--method", "map", "--out", str(tmp_path / "fit")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "a PLINK .fam has six columns" in err and err.count("\n") == 1
