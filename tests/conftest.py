"""Shared fixtures: built-in wheat data, the PLINK sample, seeded generators, and PyMC's mock sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bayesblup as bb

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "reference"  # outputs of BGLR and rrBLUP on wheat y1 (tests/data/reference/README.md)


@pytest.fixture(scope="session")
def wheat():
    return bb.datasets.load_wheat()


@pytest.fixture(scope="session")
def wheat_G(wheat) -> bb.Relationship:
    """G = WW'/m with W = R's scale(X): the set-up of every reference run."""
    return bb.genomic_relationship(wheat.genotypes, scaling="standardized")


@pytest.fixture(scope="session")
def wheat_W(wheat) -> bb.GenotypeMatrix:
    return bb.genotype_matrix(wheat.genotypes, scaling="standardized")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


@pytest.fixture(scope="session")
def plink_bed() -> Path:
    """BGLR's PLINK sample: 120 individuals x 20 SNPs, 141 missing calls (tests/data/README.md)."""
    return DATA / "plink_sample" / "sample.bed"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


@pytest.fixture
def mock_pymc_sample():
    """``pm.sample`` replaced by PyMC's mock (prior draws reshaped as a posterior): structure, not inference."""
    from pymc.testing import mock_sample_setup_and_teardown

    yield from mock_sample_setup_and_teardown()
