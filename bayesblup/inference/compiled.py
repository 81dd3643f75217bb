"""Compile once: fits of the same model structure share one compiled PyMC model and NUTS step.

``pm.sample`` compiles the log-density and its gradient at every call: about a second on wheat,
as long as drawing 4 x 2000 iterations of the spectral form. A reusable model
(:attr:`~bayesblup.models.model.BLUPModel.reusable`) keeps every number of its graph in ``pm.Data``
containers, so a second fit of the same structure (another trait, another cross-validation fold,
another data set with the same priors and covariates) only swaps the data of a cached model
(``pm.set_data``) and samples with the cached NUTS step.

Each chain starts as PyMC's ``init="jitter+adapt_diag"`` (or ``"jitter+adapt_full"``, the model's
:attr:`~bayesblup.models.model.BLUPModel.nuts_init`) starts it: the initial point jittered by U(-1, 1)
in the unconstrained space, and a diagonal (dense) mass matrix adapted from the mean of those points
(PyMC resets the adaptation and the step size at the start of every chain).

The cache is keyed on the model actually sampled: the ``pm.Model`` a user holds, with whatever was
added to it, printed as a graph whose data containers are named, not valued (so two models of the
same structure share a key whatever their data), and NUTS's target acceptance. On a miss it compiles
a clone of that model (:func:`pymc.model.fgraph.clone_model`: the user's extensions included, its
data containers its own, so swapping data never touches the user's model). It keeps the
:data:`CACHE_SIZE` most recently used structures; :func:`clear_cache` empties it.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .chains import sample_chains

__all__ = ["CACHE_SIZE", "clear_cache", "sample"]

CACHE_SIZE = 8


@dataclass
class _Compiled:
    model: object  # pm.Model: a private copy, whose data each fit replaces
    step: object  # pm.NUTS, holding the compiled log-density and gradient
    initial_point: object  # seed -> jittered initial point, unconstrained (transformed names)


_CACHE: OrderedDict[tuple, _Compiled] = OrderedDict()


def clear_cache() -> None:
    """Forget every compiled model (the next fit of each structure compiles again)."""
    _CACHE.clear()


def _key(model, target_accept: float) -> tuple:
    """What fixes the compiled graph: the model's graph printed without its data's values, and target_accept."""
    import pytensor
    from pymc.model.fgraph import fgraph_from_model
    from pytensor.graph.basic import Constant

    fgraph, _ = fgraph_from_model(model)
    graph = pytensor.printing.debugprint(fgraph, file="str", print_type=True)
    # The print abbreviates long constant arrays (a user's extension may hold some): hash their values.
    constants = sorted(
        hashlib.sha256(np.ascontiguousarray(v.data).tobytes()).hexdigest()
        for v in fgraph.variables
        if isinstance(v, Constant)
    )
    coords = tuple(sorted((dim, len(values)) for dim, values in model.coords.items() if dim not in _DATA_DIMS))
    return (graph, tuple(constants), coords, float(target_accept))


#: Dims whose length follows the data (the number of individuals, of covariates): swapped with it.
_DATA_DIMS = ("component", "covariate")


def _compile(model, target_accept: float) -> _Compiled:
    import pymc as pm
    from pymc.initial_point import make_initial_point_fn
    from pymc.model.fgraph import clone_model

    private = clone_model(model)
    with private:
        step = pm.NUTS(target_accept=target_accept)
    # NUTS hands the log-density a float64 vector of the right length at every leapfrog step; PyTensor's check
    # of it took a fifth of the draw loop on wheat (1.48 s against 1.69 s, the same draws)
    step._logp_dlogp_func._pytensor_function.trust_input = True
    initial_point = make_initial_point_fn(model=private, jitter_rvs=set(private.free_RVs), return_transformed=True)
    return _Compiled(private, step, initial_point)


def _start(entry: _Compiled, chains: int, seed: int | None, *, dense: bool = False) -> list[dict]:
    """Jittered initial points, one per chain, and a fresh mass matrix adapted from their mean."""
    from pymc.blocking import DictToArrayBijection
    from pymc.step_methods.hmc.integration import CpuLeapfrogIntegrator
    from pymc.step_methods.hmc.quadpotential import QuadPotentialDiagAdapt

    rng = np.random.default_rng(seed)
    points = [entry.initial_point(int(s)) for s in rng.integers(2**31 - 1, size=chains)]
    names = [v.name for v in entry.model.value_vars]  # the step's ravel order
    mean = np.mean([DictToArrayBijection.map({k: p[k] for k in names}).data for p in points], axis=0)
    step = entry.step
    if dense:
        from pymc.step_methods.hmc.quadpotential import QuadPotentialFullAdapt

        with warnings.catch_warnings():  # PyMC labels it experimental; used on purpose (BLUPModel.nuts_init)
            warnings.filterwarnings("ignore", message="QuadPotentialFullAdapt is an experimental")
            step.potential = QuadPotentialFullAdapt(mean.size, mean, np.eye(mean.size), 10, rng=rng)
    else:
        step.potential = QuadPotentialDiagAdapt(mean.size, mean, np.ones_like(mean), 10, rng=rng)
    step.integrator = CpuLeapfrogIntegrator(step.potential, step._logp_dlogp_func)
    # PyMC resets the adaptation at each chain's start when it samples in this process, but its worker
    # processes (cores > 1) do not: without this reset they would inherit the end of the last fit's tuning.
    step.reset_tuning()
    return points


def sample(
    user_model,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores,
    seed,
    progressbar: bool,
    target_accept: float,
    init: str = "jitter+adapt_diag",
):
    """``pm.sample`` of ``user_model`` (a ``pm.Model`` with its data in ``pm.Data``) through the cache.

    Returns ``(datatree, reused)``.
    """
    import pymc as pm

    key = _key(user_model, target_accept)
    entry = _CACHE.get(key)
    reused = entry is not None
    if entry is None:
        entry = _CACHE[key] = _compile(user_model, target_accept)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
        values = {v.name: v.get_value() for v in user_model.data_vars}
        coords = {dim: user_model.coords[dim] for dim in _DATA_DIMS if dim in user_model.coords}
        pm.set_data(values, model=entry.model, coords=coords)
    datatree = sample_chains(
        entry.model,
        entry.step,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        initvals=_start(entry, chains, seed, dense=init == "jitter+adapt_full"),
        processes=min(int(cores or 1), chains),
        progressbar=progressbar,
    )
    return datatree, reused
