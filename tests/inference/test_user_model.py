"""The model a user holds is the model sampled: what is added through ``model.model`` is in the posterior.

Each path is tried with the same three additions:

- a free variable with no link to the data, ``extra ~ N(5, 1)``: its posterior is its prior, so its
  mean is 5 within Monte Carlo error (sd 1 over about ``chains x draws`` effective draws: 0.35 is
  more than 6 Monte Carlo sd at the draws used here);
- a ``pm.Potential`` that pins ``mu`` to ``MU_PIN`` with sd 0.01: the data's own pull on mu (sd of
  about 0.1 here) is 100 times weaker in precision, so the posterior mean of mu lies within 0.01 of
  the pin (0.05 allows five posterior sd);
- a second random effect with its own data, ``u_b ~ N(0, 1)`` for 3 blocks and 4 observations
  ``z ~ N(u_b, 1)`` per block: conjugate, so ``E[u_b | z] = sum(z_b) / (4 + 1)`` exactly, and the
  posterior mean of u must match it within 0.2 (posterior sd 0.45, over hundreds of effective draws).

The single-kernel marginal form goes through the compiled-model cache, so a pristine fit of the same
structure comes first: the extended model must not reuse its compiled graph.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.inference import compiled
from bayesblup.testing import simulate_genotypes

pytestmark = pytest.mark.structural

MU_PIN = 7.0
Z = np.array([[1.0, 2.0, 0.5, 1.5], [-1.0, -2.0, 0.0, -0.5], [0.2, 0.1, -0.3, 0.4]])
QUICK = {"chains": 2, "draws": 200, "tune": 200, "seed": 11}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(41)
    geno, _ = simulate_genotypes(60, 120, allele_freq=rng.uniform(0.1, 0.9, 120), seed=rng)
    G = bb.genomic_relationship(geno)
    W = bb.genotype_matrix(geno)
    sets = bb.relationships_by_set(geno, {"first": list(geno.markers[:20])})
    g = W.values @ rng.normal(0, np.sqrt(0.5 / 120), 120)
    y = pd.Series(MU_PIN + 0.3 + g + rng.normal(0, 0.7, 60), index=geno.ids, name="y")
    # Repeated records: 1-3 per individual, unequal counts (the augmented path with a permanent environment).
    counts = rng.integers(1, 4, 60)
    ids = np.repeat(geno.ids, counts)
    repeated = pd.Series(np.repeat(y.to_numpy(), counts) + rng.normal(0, 0.5, ids.size), index=ids, name="y")
    return {"G": G, "W": W, "sets": sets, "y": y, "repeated": repeated}


def _extend(model) -> None:
    import pymc as pm

    with model.model as m:
        pm.Normal("extra", 5.0, 1.0)
        pm.Potential("pin_mu", pm.logp(pm.Normal.dist(MU_PIN, 0.01), m["mu"]))
        m.add_coord("block", ["a", "b", "c"])
        u = pm.Normal("u", 0.0, 1.0, dims="block")
        pm.Normal("z_block", mu=u[:, None], sigma=1.0, observed=Z)


def _builders(data):
    return {
        "spectral": lambda: bb.GBLUP(data["y"], data["G"]),
        "spectral-mblup": lambda: bb.MBLUP(data["y"], data["W"]),
        "latent": lambda: bb.GBLUP(data["y"], data["G"], form="latent"),
        "several kernels": lambda: bb.MultiGBLUP(data["y"], data["sets"]),
        "repeated records": lambda: bb.GBLUP(data["repeated"], data["G"], permanent_environment=True),
    }


@pytest.mark.parametrize("path", ["spectral", "spectral-mblup", "latent", "several kernels", "repeated records"])
def test_extension_is_in_the_posterior(data, path):
    compiled.clear_cache()
    build = _builders(data)[path]
    plain = build().fit(**QUICK)  # compiles (or not) the pristine structure first
    assert "extra" not in plain.datatree["posterior"]
    model = build()
    _extend(model)
    assert model.extensions == ["extra", "pin_mu", "u", "z_block"]
    fit = model.fit(**QUICK)
    post = fit.datatree["posterior"]
    assert float(post["extra"].mean()) == pytest.approx(5.0, abs=0.35)
    assert float(post["mu"].mean()) == pytest.approx(MU_PIN, abs=0.05)
    expected_u = Z.sum(axis=1) / (Z.shape[1] + 1)
    np.testing.assert_allclose(post["u"].mean(("chain", "draw")).values, expected_u, atol=0.2)
    if model.reusable:  # the extended structure compiled anew, not the pristine one reused
        assert fit.settings["compiled"] == "new"
    assert fit.settings["extensions"] == ["extra", "pin_mu", "u", "z_block"]
    notes = " ".join(fit.diagnostics()["notes"])
    assert "extended with extra, pin_mu, u, z_block" in notes
    # mu pinned away from where the data put it moves the genetic values' mean only through mu: the
    # genetic values are still g | y, theta, so they average near 0 (their prior mean), not near mu.
    assert abs(float(fit.genetic_values["mean"].mean())) < 1.0
    compiled.clear_cache()


def test_cache_keyed_on_the_model_sampled(data):
    """Two models with the same extension share a compiled model; the pristine one does not."""
    compiled.clear_cache()
    first = bb.GBLUP(data["y"], data["G"])
    _extend(first)
    a = first.fit(**QUICK)
    second = bb.GBLUP(data["y"] + 1.0, data["G"])
    _extend(second)
    b = second.fit(**QUICK)
    assert (a.settings["compiled"], b.settings["compiled"]) == ("new", "reused")
    assert "extra" in b.datatree["posterior"]
    # The swap changed the second model's clone only: the first model's data are its own.
    assert float(first.model["y_star"].get_value()[0]) == pytest.approx(first.spectral_data.y[0])
    pristine = bb.GBLUP(data["y"], data["G"]).fit(**QUICK)
    assert pristine.settings["compiled"] == "new" and "extra" not in pristine.datatree["posterior"]
    compiled.clear_cache()


def test_map_honours_the_extension(data):
    model = bb.GBLUP(data["y"], data["G"])
    _extend(model)
    fit = model.fit(method="map", seed=1)
    post = fit.datatree["posterior"]
    assert float(post["extra"].values.squeeze()) == pytest.approx(5.0, abs=1e-3)  # the mode of N(5, 1)
    assert float(post["mu"].values.squeeze()) == pytest.approx(MU_PIN, abs=0.05)
