"""The built-in wheat data: shapes, aligned IDs, checksums, and the licence note beside it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bayesblup.datasets import wheat_path

pytestmark = pytest.mark.structural


def test_load_wheat__shapes_and_ids(wheat):
    geno = wheat.genotypes
    assert (geno.n_individuals, geno.n_markers) == (599, 1279)
    assert geno.coding == "presence-absence" and geno.n_missing == 0
    assert list(wheat.phenotypes.columns) == ["y1", "y2", "y4", "y5"]
    assert list(wheat.phenotypes.index) == list(geno.ids) == list(wheat.folds.index)
    assert sorted(wheat.folds.unique()) == list(range(1, 11))
    assert not wheat.phenotypes.isna().any().any()


def test_wheat_files__checksums_match_the_provenance_note():
    note = Path(wheat_path("README.md")).read_text()
    for name in ("wheat_X.csv.gz", "wheat_Y.csv"):
        digest = hashlib.md5(Path(wheat_path(name)).read_bytes()).hexdigest()
        assert f"{name} {digest}" in note
    assert "GPL-3" in note and "Crossa" in note
