"""A fit without a seed draws one and records it, so that it can be repeated exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.testing import simulate_genotypes

pytestmark = pytest.mark.structural


@pytest.fixture(scope="module")
def model_data():
    geno, _ = simulate_genotypes(40, 80, seed=6)
    y = pd.Series(np.random.default_rng(6).normal(size=40), index=geno.ids, name="y")
    return y, bb.genomic_relationship(geno)


@pytest.mark.parametrize("method", ["nuts", "quadrature"])
def test_an_unseeded_fit_records_the_seed_that_repeats_it(model_data, method):
    y, G = model_data
    first = bb.GBLUP(y, G).fit(method=method, chains=2, draws=50, tune=50)
    seed = first.settings["seed"]
    assert isinstance(seed, int) and seed >= 0 and first.settings["seed_drawn"] is True
    again = bb.GBLUP(y, G).fit(method=method, chains=2, draws=50, tune=50, seed=seed)
    assert again.settings["seed"] == seed and again.settings["seed_drawn"] is False
    np.testing.assert_array_equal(first.datatree["posterior"]["h2"].values, again.datatree["posterior"]["h2"].values)
    assert first.to_dict()["settings"]["seed"] == seed  # in summary.json
