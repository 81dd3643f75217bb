"""Shared fixtures: built-in wheat data, the PLINK sample, and seeded generators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bayesblup as bb

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def wheat():
    return bb.datasets.load_wheat()


@pytest.fixture(scope="session")
def plink_bed() -> Path:
    """BGLR's PLINK sample: 120 individuals x 20 SNPs, 141 missing calls (tests/data/README.md)."""
    return DATA / "plink_sample" / "sample.bed"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)
