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
