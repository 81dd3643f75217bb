"""`bayesblup fit --log-likelihood / --posterior-predictive`: what posterior.nc holds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.testing import simulate_genotypes, simulate_records

pytestmark = pytest.mark.structural

QUICK = ["--method", "quadrature", "--chains", "2", "--draws", "100", "--seed", "1", "--quiet"]
N = 60


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """60 individuals x 80 markers (geno.csv) and a trait y1 (pheno.csv)."""
    d = tmp_path_factory.mktemp("loo_inputs")
    geno, _ = simulate_genotypes(N, 80, seed=41)
    table = pd.DataFrame(geno.calls, index=geno.ids, columns=geno.markers)
    table.index.name = "id"
    table.to_csv(d / "geno.csv")
    y = simulate_records(bb.genotype_matrix(geno).values, geno.ids, h2=0.5, seed=42).table["y"]
    pd.DataFrame({"id": y.index, "y1": np.round(y.to_numpy(), 6)}).to_csv(d / "pheno.csv", index=False)
    return d


def fit_args(inputs, out, *extra):
    return [
        "fit", "--genotypes", str(inputs / "geno.csv"), "--phenotypes", str(inputs / "pheno.csv"), "--trait", "y1",
        "--out", str(out), *QUICK, *extra,
    ]  # fmt: skip


def groups(out) -> set[str]:
    with xr.open_datatree(out / "posterior.nc", engine="h5netcdf") as tree:
        return set(tree.children)


def test_the_log_likelihood_and_the_posterior_predictive_are_written_when_asked_for(inputs, tmp_path, capsys):
    """Not by default (records x draws numbers in every saved fit: 19 MB on wheat); --log-likelihood writes it with a
    line saying so; --posterior-predictive writes replicated records."""
    assert main(fit_args(inputs, tmp_path / "default")) == 0
    assert "observed_data" in groups(tmp_path / "default")
    assert not {"log_likelihood", "posterior_predictive"} & groups(tmp_path / "default")

    args = [a for a in fit_args(inputs, tmp_path / "asked", "--log-likelihood") if a != "--quiet"]
    assert main(args) == 0
    assert f"pointwise log-likelihood of {N} records in posterior.nc, for az.loo" in capsys.readouterr().out
    assert {"log_likelihood", "observed_data"} <= groups(tmp_path / "asked")
    summary = json.loads((tmp_path / "asked" / "summary.json").read_text())
    assert summary["settings"]["log_likelihood"] is True and summary["timings"]["log_likelihood_s"] >= 0
    with xr.open_datatree(tmp_path / "asked" / "posterior.nc", engine="h5netcdf") as tree:
        ll = tree["log_likelihood"]["y1"]
        assert ll.dims == ("chain", "draw", "record") and ll.shape == (2, 100, N)
        assert list(tree["observed_data"]["record"].values[:2]) == ["ind1", "ind2"]

    assert main(fit_args(inputs, tmp_path / "ppc", "--posterior-predictive")) == 0
    assert {"posterior_predictive", "observed_data"} <= groups(tmp_path / "ppc")
    assert "log_likelihood" not in groups(tmp_path / "ppc")
    summary = json.loads((tmp_path / "ppc" / "summary.json").read_text())
    assert summary["timings"]["posterior_predictive_s"] >= 0
