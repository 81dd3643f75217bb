"""Compile once (bayesblup.inference.compiled): a second fit of the same structure reuses the compiled model.

The oracle is exact: a fit that reuses a cached model must give bit-for-bit the draws of the same fit
compiled afresh (same seed), so no number of an earlier data set survives the swap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.inference import compiled
from bayesblup.testing import simulate_genotypes

QUICK = {"chains": 2, "draws": 150, "tune": 150, "seed": 5}


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    geno, _ = simulate_genotypes(60, 150, allele_freq=rng.uniform(0.1, 0.9, 150), seed=rng)
    G = bb.genomic_relationship(geno)
    W = bb.genotype_matrix(geno)
    g = W.values @ rng.normal(0, np.sqrt(0.5 / 150), 150)
    traits = pd.DataFrame(
        {"a": 3 + g + rng.normal(0, 0.7, 60), "b": 100 + 10 * g + rng.normal(0, 9, 60)}, index=geno.ids
    )
    traits["sex"] = rng.integers(0, 2, 60).astype(float)
    compiled.clear_cache()
    yield traits, G, W
    compiled.clear_cache()


@pytest.fixture
def compiles(monkeypatch):
    """Counts compilations."""
    count = []
    original = compiled._compile

    def counting(*args, **kwargs):
        count.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(compiled, "_compile", counting)
    return count


def _draws(fit) -> np.ndarray:
    post = fit.datatree["posterior"]
    return np.stack([post[name].values for name in ("h2", "mu", "sigma2_e")])


@pytest.mark.parametrize("build", ["gblup", "gblup-fixed", "mblup"])
@pytest.mark.exact
def test_reused_model_gives_the_draws_of_a_fresh_compilation(data, compiles, build):
    traits, G, W = data

    def model(trait: str, y=None):
        y = traits[trait] if y is None else y
        if build == "mblup":
            return bb.MBLUP(y, W, prior="bglr")
        fixed = traits[["sex"]] if build == "gblup-fixed" else None
        return bb.GBLUP(y, G, prior="bglr", fixed=fixed)

    first = model("a").fit(**QUICK)
    again = model("b").fit(**QUICK)  # another trait, on another scale: same structure
    holes = traits["b"].copy()
    holes.iloc[::4] = np.nan  # fewer records: every data vector changes length
    shorter = model("b", holes).fit(**QUICK)
    assert len(compiles) == 1
    assert [f.settings["compiled"] for f in (first, again, shorter)] == ["new", "reused", "reused"]

    compiled.clear_cache()
    fresh = model("b").fit(**QUICK)
    compiled.clear_cache()
    fresh_shorter = model("b", holes).fit(**QUICK)
    assert len(compiles) == 3 and fresh_shorter.settings["compiled"] == "new"
    np.testing.assert_array_equal(_draws(again), _draws(fresh))
    np.testing.assert_array_equal(_draws(shorter), _draws(fresh_shorter))
    pd.testing.assert_frame_equal(again.genetic_values, fresh.genetic_values)


@pytest.mark.exact
def test_several_traits_reuse_the_compiled_model_with_every_record_present(data, compiles):
    """Another data set of the same traits (new values, fewer individuals): bit for bit a fresh compilation's draws.

    With a record missing, or BGLR's inverse Wishart priors, the model is compiled per fit (not reusable).
    """
    traits, G, _ = data
    rng = np.random.default_rng(8)

    def model(Y):
        return bb.GBLUP(Y[["a", "b"]], G, fixed=Y[["sex"]])  # a covariate: X* is swapped too

    other = traits.copy()
    other[["a", "b"]] = traits[["a", "b"]] * 1.5 + rng.normal(0, 1, (60, 2))
    shorter = other.iloc[::3]
    first, again, short = (model(Y).fit(**QUICK) for Y in (traits, other, shorter))
    assert len(compiles) == 1
    assert [f.settings["compiled"] for f in (first, again, short)] == ["new", "reused", "reused"]
    for fit, Y in ((again, other), (short, shorter)):
        compiled.clear_cache()
        fresh = model(Y).fit(**QUICK)
        for name in ("h2", "mu", "R_g_partial"):
            np.testing.assert_array_equal(fit.datatree.posterior[name].values, fresh.datatree.posterior[name].values)
        pd.testing.assert_frame_equal(fit.genetic_values, fresh.genetic_values)
    holes = traits.copy()
    holes.iloc[::5, 0] = np.nan
    assert not model(holes).reusable and not bb.GBLUP(traits[["a", "b"]], G, prior="bglr").reusable


@pytest.mark.exact
def test_cached_logp_equals_the_models_own_after_the_swap(data):
    traits, G, _ = data
    bb.GBLUP(traits["a"], G).fit(**QUICK)
    model = bb.GBLUP(traits["b"], G)
    model.fit(**QUICK)
    (entry,) = compiled._CACHE.values()
    point = model.model.initial_point()
    own = model.model.compile_logp()(point)
    assert entry.model.compile_logp()(point) == pytest.approx(own, rel=1e-12)


@pytest.mark.structural
def test_each_structure_compiles_once_and_user_models_are_left_alone(data, compiles):
    traits, G, W = data
    models = [bb.GBLUP(traits["a"], G), bb.GBLUP(traits["a"], G, prior="bglr"), bb.MBLUP(traits["a"], W)]
    for model in models:
        model.fit(**QUICK)
    assert len(compiles) == 3
    user = models[0].model
    before = {v.name: v.get_value().copy() for v in user.data_vars}
    bb.GBLUP(traits["b"], G).fit(**QUICK)  # reuses the first structure with other data
    assert len(compiles) == 3
    for v in user.data_vars:  # the user's pm.Model still holds its own data
        np.testing.assert_array_equal(v.get_value(), before[v.name])
    bb.GBLUP(traits["a"], G).fit(**QUICK, target_accept=0.95)  # a different step: compiled anew
    assert len(compiles) == 4


@pytest.mark.structural
def test_cross_validation_compiles_once(data, compiles):
    traits, G, _ = data
    folds = pd.Series(np.arange(60) % 5, index=traits.index)
    cv = bb.cross_validate(lambda y: bb.GBLUP(y, G), traits["a"], folds, **QUICK)
    assert len(cv.folds) == 5 and len(compiles) == 1


@pytest.mark.structural
def test_forms_that_cannot_be_reused_sample_as_before(data, compiles):
    traits, G, _ = data
    fit = bb.GBLUP(traits["a"], G, form="latent").fit(**QUICK)
    assert fit.settings["compiled"] == "per fit" and not compiles


@pytest.mark.exact
def test_reused_model_in_worker_processes_gives_the_same_draws(data):
    """cores=2 samples the chains in PyMC's worker processes, which get a copy of the cached step. They do
    not reset its adaptation themselves (a reuse once inherited the last fit's tuned state and gave a wrong
    posterior), so each fit resets it; the draws then equal the single-process ones bit for bit."""
    traits, G, _ = data
    one = bb.GBLUP(traits["a"], G).fit(**QUICK, cores=1)
    two = bb.GBLUP(traits["a"], G).fit(**QUICK, cores=2)
    assert two.settings["compiled"] == "reused"
    np.testing.assert_array_equal(_draws(one), _draws(two))
