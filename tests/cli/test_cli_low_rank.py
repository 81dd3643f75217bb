"""`bayesblup fit` on the low-rank path: G-BLUP on genotypes with fewer markers than individuals.

The PLINK sample (120 individuals x 20 SNPs) has m < n, so ``--model gblup`` takes the low-rank path by default:
W is built, G never; ``--path dense`` builds G and eigendecomposes it. The memory estimate names the low-rank path
where a dense fit is refused and the low-rank one would fit.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.cli.main import main

pytestmark = pytest.mark.structural


def _phenotypes(tmp_path, plink_bed):
    """A trait for 110 of the sample's 120 individuals (10 without a record: predicted through W_u)."""
    geno = bb.read_genotypes(plink_bed)
    rng = np.random.default_rng(5)
    ids = geno.ids[:110]
    path = tmp_path / "pheno.csv"
    pd.DataFrame({"id": ids, "y": rng.normal(10, 2, ids.size)}).to_csv(path, index=False)
    return path


def test_fit__gblup_with_fewer_markers_than_individuals_takes_the_low_rank_path(tmp_path, capsys, plink_bed):
    """The path is printed and recorded; MAP on the low-rank and dense paths reaches the same mode.

    The two log-likelihoods agree to ~1e-12 (tests/models/test_low_rank.py); L-BFGS stops within its own
    tolerance of the mode, so h2 and the genetic values are compared to 1e-4 relative.
    """
    pheno = _phenotypes(tmp_path, plink_bed)
    args = ["fit", "--genotypes", str(plink_bed), "--phenotypes", str(pheno), "--trait", "y", "--model", "gblup"]
    args += ["--method", "map"]
    assert main([*args, "--out", str(tmp_path / "thin")]) == 0
    text = capsys.readouterr().out
    assert "the factor of G = WW'/20; G itself is not formed" in text
    assert "likelihood path: low-rank (rank 20 of 110 through the 20 x 20 W'W; no n x n matrix)" in text
    assert main([*args, "--path", "dense", "--out", str(tmp_path / "dense")]) == 0
    text = capsys.readouterr().out
    assert "likelihood path: low-rank" not in text and "eigendecomposition: rank 20 of 110" in text
    thin = json.loads((tmp_path / "thin" / "summary.json").read_text())
    dense = json.loads((tmp_path / "dense" / "summary.json").read_text())
    assert thin["specification"]["path"] == "low-rank" and dense["specification"]["path"] == "spectral"
    assert thin["model"] == dense["model"] == "gblup" and thin["g_denominator"] == dense["g_denominator"] == 20
    assert thin["kernel"]["decomposition"] == "thin" and thin["kernel"]["rank"] == dense["kernel"]["rank"] == 20
    # the rank note says why 90 eigenvalues are zero (20 markers), not that they fell below a tolerance
    note = "G has rank 20 of 110, from 20 marker columns for 110 individuals with a record: the low-rank path"
    assert any(n.startswith(note) and n.endswith("other 90 eigenvalues are exactly zero")
               for n in thin["diagnostics"]["notes"]), thin["diagnostics"]["notes"]  # fmt: skip
    for name in ("h2", "sigma2_g", "sigma2_e", "mu"):
        assert thin["parameters"][name]["mean"] == pytest.approx(dense["parameters"][name]["mean"], rel=1e-4)
    g_thin = pd.read_csv(tmp_path / "thin" / "genetic_values.csv", dtype={"id": str})
    g_dense = pd.read_csv(tmp_path / "dense" / "genetic_values.csv", dtype={"id": str})
    assert len(g_thin) == 120 and (g_thin["id"] == g_dense["id"]).all()
    scale = g_dense["mean"].abs().max()
    np.testing.assert_allclose(g_thin["mean"], g_dense["mean"], rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(g_thin["sd"], g_dense["sd"], rtol=1e-4)


def test_fit__a_dense_fit_refused_for_memory_names_the_low_rank_path(tmp_path, monkeypatch, capsys):
    """60,000 individuals x 20 SNPs, 100 with a record: ``--path dense`` needs three n x n matrices (80 GiB, the
    machine pinned at 16 GiB) and is refused with the low-rank path's figure; an M-BLUP on wide W is not told of it."""
    from bed_reader import to_bed

    import bayesblup.resources as resources

    n, m = 60_000, 20
    rng = np.random.default_rng(3)
    bed = tmp_path / "big.bed"
    to_bed(bed, rng.integers(0, 3, (n, m)).astype(np.int8), properties={"iid": [f"i{k}" for k in range(n)]})
    pheno = tmp_path / "pheno.csv"
    pd.DataFrame({"id": [f"i{k}" for k in range(100)], "y": rng.normal(size=100)}).to_csv(pheno, index=False)
    monkeypatch.setattr(resources, "available_memory", lambda: 16 * 2**30)
    args = ["fit", "--genotypes", str(bed), "--phenotypes", str(pheno), "--trait", "y", "--model", "gblup", "--quiet"]
    assert main([*args, "--path", "dense", "--out", str(tmp_path / "fit")]) == 2
    err = capsys.readouterr().err
    assert "a fit of 60000 individuals (20 markers) needs about 80.5 GiB of memory and 16.0 GiB are available" in err
    assert "the low-rank path, --path low-rank, needs about 0.0 GiB" in err
    pd.DataFrame({"id": [f"i{k}" for k in range(10)], "y": rng.normal(size=10)}).to_csv(pheno, index=False)
    assert main([*args, "--out", str(tmp_path / "fit")]) == 2  # 10 records, 20 markers: no low-rank path
    err = capsys.readouterr().err
    assert "needs about 80.5 GiB" in err and "low-rank" not in err
    assert not (tmp_path / "fit").exists()
