"""`bayesblup fit --top N`: selection.csv in the out folder, the lines printed, summary.json and `bayesblup summary`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.results.selection import COLUMNS
from bayesblup.testing import simulate_genotypes, simulate_records

pytestmark = pytest.mark.structural


@pytest.fixture
def inputs(tmp_path):
    geno, _ = simulate_genotypes(80, 200, seed=41)
    calls = pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers)
    calls.to_csv(tmp_path / "geno.csv")
    W = bb.genotype_matrix(bb.quality_control(geno)[0], scaling="standardized")
    sim = simulate_records(W.values, geno.ids, h2=0.5, unphenotyped=0.25, seed=41)
    sim.table[["y"]].to_csv(tmp_path / "pheno.csv")
    return tmp_path


def _fit(d, *extra):
    return [
        "fit", "--genotypes", str(d / "geno.csv"), "--phenotypes", str(d / "pheno.csv"), "--trait", "y",
        "--method", "quadrature", "--seed", "2", *extra,
    ]  # fmt: skip


def test_top_writes_selection_csv_prints_its_head_and_summary_mentions_it(inputs, capsys):
    out = inputs / "fit"
    assert main([*_fit(inputs, "--top", "7", "--top-fraction", "0.2", "--out", str(out))]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "selection.csv", dtype={"id": str})
    assert list(table.columns) == COLUMNS and table["rank"].tolist() == list(range(1, 8))
    assert table["mean"].is_monotonic_decreasing and table["p_top"].between(0, 1).all()
    values = pd.read_csv(out / "genetic_values.csv", dtype={"id": str}).set_index("id")
    np.testing.assert_array_equal(table["mean"], values["mean"].sort_values(ascending=False).to_numpy()[:7])
    line = (
        "selection.csv: the best 7 by posterior mean of the 80 candidates; p_top = P(in the top 20%: the best 16) from "
        "1000 joint draws of g (Monte Carlo sd at most 0.016)"
    )
    assert line in printed
    head = printed.splitlines()[printed.splitlines().index(line) + 1 :][:6]
    assert head[0].split() == COLUMNS and [row.split()[1] for row in head[1:]] == table["id"].tolist()[:5]
    assert "wrote " + str(out) + "/: summary.json, genetic_values.csv, posterior.nc, selection.csv" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"]["n_rows"] == 7 and summary["selection"]["n_top"] == 16
    assert summary["timings"]["selection_s"] >= 0
    assert main(["summary", str(out)]) == 0
    assert line in capsys.readouterr().out
    back = bb.load_fit(out)
    pd.testing.assert_frame_equal(back.stored["tables"]["selection.csv"], table)
