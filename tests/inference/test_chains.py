"""How the chains are spread over processes and BLAS threads (bayesblup.inference.samplers)."""

from __future__ import annotations

import os

import pytest
from threadpoolctl import threadpool_info

from bayesblup.inference.samplers import chain_threads, default_cores


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.mark.structural
def test_default_cores_is_one_process_per_chain_up_to_the_usable_cpus():
    usable = len(os.sched_getaffinity(0))
    assert default_cores(1) == 1
    assert default_cores(4) == min(4, usable)
    assert default_cores(10_000) == usable


@pytest.mark.structural
def test_chain_processes_share_the_blas_threads_and_the_limit_is_lifted_after():
    """With as many chain processes as CPUs each (forked) process gets one BLAS thread; one process keeps them all."""
    usable = len(os.sched_getaffinity(0))
    before = _blas_threads()
    with chain_threads(1):
        assert _blas_threads() == before
    with chain_threads(usable):
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before


@pytest.mark.structural
def test_a_sampler_stopped_early_is_an_interrupt_not_a_fit(monkeypatch):
    """On Ctrl-C PyMC returns the draws it has; fit() must not make a fit of them (the API side of the command
    line's exit 130). The interrupt is simulated by a pm.sample that returns half the draws asked for."""
    import numpy as np
    import pandas as pd
    import pymc as pm

    import bayesblup as bb
    from bayesblup.testing import simulate_genotypes

    geno, _ = simulate_genotypes(30, 60, seed=2)
    y = pd.Series(np.random.default_rng(2).normal(size=30), index=geno.ids, name="y")
    model = bb.GBLUP(y, bb.genomic_relationship(geno), form="latent")
    real_sample = pm.sample

    def stopped_early(*args, draws, **kwargs):
        return real_sample(*args, draws=draws // 2, **kwargs)

    monkeypatch.setattr(pm, "sample", stopped_early)
    with pytest.raises(KeyboardInterrupt, match="sampling interrupted after 10 of 20 draws"):
        model.fit(chains=1, draws=20, tune=20, seed=1)


def _small_model():
    import numpy as np
    import pandas as pd

    import bayesblup as bb
    from bayesblup.testing import simulate_genotypes

    geno, _ = simulate_genotypes(40, 80, seed=4)
    y = pd.Series(np.random.default_rng(4).normal(size=40), index=geno.ids, name="y")
    return bb.GBLUP(y, bb.genomic_relationship(geno))


@pytest.mark.exact
def test_chains_spread_over_processes_give_the_same_bits_as_one_process():
    """3 chains over 1, 2 and 3 processes (shares 2 + 1, then 1 + 1 + 1): chain i always draws from the i-th
    stream spawned from the seed, so every split gives identical draws, chain by chain, and the same DataTree."""
    import numpy as np

    from bayesblup.inference import compiled

    model = _small_model()
    trees = {}
    for processes in (1, 2, 3):
        trees[processes], _ = compiled.sample(
            model.model, draws=60, tune=60, chains=3, cores=processes, seed=11, progressbar=False, target_accept=0.9
        )  # fmt: skip
    one = trees[1]
    for processes in (2, 3):
        tree = trees[processes]
        assert list(tree["posterior"].coords["chain"].values) == [0, 1, 2]
        assert set(tree.children) == set(one.children)
        for group in ("posterior", "sample_stats"):
            for name, values in one[group].data_vars.items():
                if name.startswith(("perf_counter", "process_time")):  # clocks, not draws
                    continue
                np.testing.assert_array_equal(tree[group][name].values, values.values, err_msg=f"{group}.{name}")
        assert tree["sample_stats"].attrs["sampling_time"] > 0


class ChainFailure(RuntimeError):
    """Raised inside a chain process by the test below (module level: it pickles back to the parent)."""


@pytest.mark.structural
def test_a_failure_in_a_chain_process_is_raised_in_the_caller(monkeypatch):
    """An exception inside a forked chain process comes back as itself (not a hang, not a silent partial fit);
    one that cannot be pickled comes back as a RuntimeError carrying its type, text and traceback."""
    import pymc as pm

    from bayesblup.inference import compiled

    class Local(RuntimeError):  # a local class does not pickle
        pass

    model = _small_model()
    for error, expected, text in ((ChainFailure, ChainFailure, "the step failed"),
                                  (Local, RuntimeError, "a chain process failed: Local: the step failed")):  # fmt: skip

        def failing(*args, error=error, **kwargs):
            raise error("the step failed")

        monkeypatch.setattr(pm, "sample", failing)  # the children are forked: they see the patched pm.sample
        with pytest.raises(expected, match=text):
            compiled.sample(model.model, draws=20, tune=20, chains=2, cores=2, seed=1, progressbar=False,
                            target_accept=0.9)  # fmt: skip
