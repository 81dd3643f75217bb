"""Shared fixtures: built-in wheat data, the PLINK sample, seeded generators, and PyMC's mock sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bayesblup as bb

TESTS = Path(__file__).parent
DATA = TESTS / "data"
REFERENCE = DATA / "reference"  # outputs of BGLR and rrBLUP on wheat y1 (tests/data/reference/README.md)
TIERS = ("exact", "structural", "recovery")  # tests/README.md


@pytest.hookimpl(tryfirst=True)  # before -m deselects: an untiered slow or jax test is caught too
def pytest_collection_modifyitems(config, items):
    """Every test here has exactly one tier mark of TIERS (module ``pytestmark`` or its own); doctests have none."""
    wrong = []
    for item in items:
        if not Path(item.path).is_relative_to(TESTS):
            continue
        tiers = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid}: {', '.join(tiers) or 'no tier'}")
    if wrong:
        raise pytest.UsageError(
            f"each test needs exactly one of the marks {', '.join(TIERS)} (tests/README.md):\n  " + "\n  ".join(wrong)
        )


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
