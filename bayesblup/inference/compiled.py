"""Compile once: fits of the same model structure share one compiled PyMC model and NUTS step.

``pm.sample`` compiles the log-density and its gradient at every call: about a second on wheat,
as long as drawing 4 x 2000 iterations of the spectral form. A reusable model
(:attr:`~bayesblup.models.base.BLUPModel.reusable`) keeps every number of its graph in ``pm.Data``
containers, so a second fit of the same structure (another trait, another cross-validation fold,
another data set with the same priors and covariates) only swaps the data of a cached model
(``pm.set_data``) and samples with the cached NUTS step.

Each chain starts as PyMC's ``init="jitter+adapt_diag"`` starts it: the initial point jittered by
U(-1, 1) in the unconstrained space, and a diagonal mass matrix adapted from the mean of those
points (PyMC resets the adaptation and the step size at the start of every chain).

The cache holds a private copy of each model (never the ``pm.Model`` a user holds), keyed by what
fixes the compiled graph: model class, form, prior families and parameter names, data names and
ranks, variable names and NUTS's target acceptance. It keeps the :data:`CACHE_SIZE` most recently
used structures; :func:`clear_cache` empties it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

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


def _key(blup_model, model, target_accept: float) -> tuple:
    """What fixes the compiled graph; everything else is data."""
    label, priors = blup_model.priors
    return (
        type(blup_model).__name__,
        blup_model.form,
        blup_model.pe_path,
        label,
        tuple(sorted((name, p.distribution, tuple(sorted(p.parameters))) for name, p in priors.items())),
        tuple(sorted((v.name, v.ndim) for v in model.data_vars)),
        tuple(v.name for v in model.free_RVs),
        tuple(sorted(model.named_vars)),
        float(target_accept),
    )


def _compile(blup_model, target_accept: float) -> _Compiled:
    import pymc as pm
    from pymc.initial_point import make_initial_point_fn

    private = blup_model.build()
    with private:
        step = pm.NUTS(target_accept=target_accept)
    initial_point = make_initial_point_fn(model=private, jitter_rvs=set(private.free_RVs), return_transformed=True)
    return _Compiled(private, step, initial_point)


def _start(entry: _Compiled, chains: int, seed: int | None) -> list[dict]:
    """Jittered initial points, one per chain, and a fresh mass matrix adapted from their mean."""
    from pymc.blocking import DictToArrayBijection
    from pymc.step_methods.hmc.integration import CpuLeapfrogIntegrator
    from pymc.step_methods.hmc.quadpotential import QuadPotentialDiagAdapt

    rng = np.random.default_rng(seed)
    points = [entry.initial_point(int(s)) for s in rng.integers(2**31 - 1, size=chains)]
    names = [v.name for v in entry.model.value_vars]  # the step's ravel order
    mean = np.mean([DictToArrayBijection.map({k: p[k] for k in names}).data for p in points], axis=0)
    step = entry.step
    step.potential = QuadPotentialDiagAdapt(mean.size, mean, np.ones_like(mean), 10, rng=rng)
    step.integrator = CpuLeapfrogIntegrator(step.potential, step._logp_dlogp_func)
    # PyMC resets the adaptation at each chain's start when it samples in this process, but its worker
    # processes (cores > 1) do not: without this reset they would inherit the end of the last fit's tuning.
    step.reset_tuning()
    return points


def sample(blup_model, *, draws: int, tune: int, chains: int, cores, seed, progressbar: bool, target_accept: float):
    """``pm.sample`` of ``blup_model`` through the cache; returns ``(datatree, reused)``."""
    import pymc as pm

    user_model = blup_model.model
    key = _key(blup_model, user_model, target_accept)
    entry = _CACHE.get(key)
    reused = entry is not None
    if entry is None:
        entry = _CACHE[key] = _compile(blup_model, target_accept)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
        values = {v.name: v.get_value() for v in user_model.data_vars}
        coords = {dim: user_model.coords[dim] for dim in ("component", "covariate") if dim in user_model.coords}
        pm.set_data(values, model=entry.model, coords=coords)
    datatree = pm.sample(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=seed,
        step=entry.step,
        initvals=_start(entry, chains, seed),
        model=entry.model,
        progressbar=progressbar,
        compute_convergence_checks=False,  # the package's own diagnostics report them
    )
    return datatree, reused
