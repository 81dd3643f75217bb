"""Missing records of several traits: an exact Gibbs draw beside NUTS on the variances.

A multi-trait model's missing records ``y_missing`` are unknowns (:mod:`bayesblup.models.multitrait`).
Moving them with NUTS together with the variances is exact but slow: at n = 2000, three traits and 20%
missing, 1200 unknowns whose scale is set by the residual variances (a funnel when one is small) took
230 ms a draw and left 171 divergences. Here NUTS moves only the variances (and mu, B and whatever a
user added), given the completed records, and each iteration redraws the missing records from their
exact conditional distribution given the variances and the observed records, as BGLR's ``Multitrait``
does inside its Gibbs sampler:

1. ``g* | Y, theta``: in the canonical basis of ``(Sigma_k, Sigma_e)`` (:func:`~bayesblup.linalg.canonical`),
   ``w_k = P^-1 r*_k`` has independent entries with variance ``lam_k d_j + 1`` of which ``lam_k d_j`` is
   genetic, so ``h_kj ~ N(s w_kj, s)`` with ``s = lam_k d_j / (lam_k d_j + 1)``, and ``g*_k = P h_k``;
2. ``g = U g*`` at the individuals with a missing record;
3. ``e_M | e_O ~ N(S_MO S_OO^-1 e_O, S_MM - S_MO S_OO^-1 S_OM)`` per individual, ``S = Sigma_e``, M its
   missing and O its observed traits, and ``y_M = mu_M + (x'B)_M + g_M + e_M``.

Steps 1-3 leave ``p(y_missing | y_observed, theta)`` invariant (g is drawn from its full conditional and
then discarded), so with NUTS targeting ``p(theta | Y completed)`` the pair is a Gibbs sampler of
``p(theta, y_missing | y_observed)``. A draw costs two products with the rows of U of the individuals with
a missing record (r x n): g at those rows, and the new records' rotation ``U' scatter(y_missing)``, which
NUTS's log density then reads from a shared value instead of recomputing it at every gradient.

Measured (``benchmarks/RESULTS.md``): at n = 2000 the draws took 88.7 s against 1822 s (33.8 s with the
chains in two processes). Where a residual
variance nears zero (h2 near 1) the data augmentation itself moves slowly, as any Gibbs sampler of
missing data does: a missing record is then nearly its own genetic value, which the previous draw of the
record informs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..linalg.canonical import canonical
from ..models.data import MultiTraitData
from ..models.multitrait import Z_MISSING

__all__ = ["draw_missing", "gibbs_sample_kwargs"]


@dataclass
class _Pattern:
    """Individuals sharing one set of missing traits."""

    rows: np.ndarray  # (r,) position in MissingLayout.rows
    missing: np.ndarray  # (a,) traits missing
    observed: np.ndarray  # (b,) traits observed
    positions: np.ndarray  # (r, a) index of each missing record in y_missing


@dataclass
class MissingLayout:
    """Where the missing records are, grouped for the conditional draws; computed once per model."""

    data: MultiTraitData
    rows: np.ndarray = field(init=False)  # individuals with a missing record
    row_index: np.ndarray = field(init=False)  # each missing record's individual, into rows
    U_rows: np.ndarray = field(init=False)  # U[rows, :]
    patterns: list[_Pattern] = field(init=False)

    def shift(self, y_missing: np.ndarray) -> np.ndarray:
        """``U' scatter(y_missing - fill)`` (n, t): what the missing records add to the rotated records."""
        return self.data.missing_shift(y_missing[None])[0]

    def __post_init__(self):
        data = self.data
        self.rows, self.row_index, self.U_rows = data.incomplete  # the same U rows the likelihood holds
        t = data.n_traits
        mask = np.zeros((self.rows.size, t), dtype=bool)
        position = np.full((self.rows.size, t), -1)
        mask[self.row_index, data.missing_traits] = True
        position[self.row_index, data.missing_traits] = np.arange(data.missing_rows.size)
        self.patterns = []
        keys, inverse = np.unique(mask, axis=0, return_inverse=True)
        for p, key in enumerate(keys):
            local = np.flatnonzero(inverse.ravel() == p)
            missing = np.flatnonzero(key)
            observed = np.flatnonzero(~key)
            self.patterns.append(_Pattern(local, missing, observed, position[np.ix_(local, missing)]))


def draw_missing(
    layout: MissingLayout,
    mu: np.ndarray,
    B: np.ndarray | None,
    Sigma_k: np.ndarray,
    Sigma_e: np.ndarray,
    y_missing: np.ndarray,
    rng: np.random.Generator,
    *,
    shift: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    offset_rotated: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One draw of the missing records given theta and the observed records (module docstring, steps 1-3).

    ``y_missing`` (the current values) completes the records for step 1; ``shift``, if given, is what
    they add to the rotated records (``U' scatter(y_missing - fill)``, kept by the caller). ``offset``
    (n, t) and ``offset_rotated`` (its rotation ``U' offset``), with several kernels, are the explicit
    kernels' genetic values at the individuals with a record: part of the mean the integrated kernel's
    g and the residuals are drawn around. Returns the new draw and its shift.
    """
    data = layout.data
    if shift is None:
        shift = layout.shift(y_missing)
    R = data.Y - np.outer(data.one, mu) + shift  # U'(Y - 1 mu'), Y completed
    if B is not None:
        R -= data.X @ B
    if offset_rotated is not None:
        R -= offset_rotated
    P, P_inv, d = canonical(Sigma_k, Sigma_e)
    s = data.lam[:, None] * d[None, :]
    shrink = s / (s + 1.0)
    h = shrink * (R @ P_inv.T) + np.sqrt(shrink) * rng.standard_normal(R.shape)
    g = layout.U_rows @ (h @ P.T)  # (rows, t): g at the individuals with a missing record
    mean = mu[None, :] + g
    if offset is not None:
        mean = mean + offset[layout.rows]
    if B is not None:
        mean = mean + data.covariates[layout.rows] @ B
    out = np.empty_like(y_missing)
    for pattern in layout.patterns:
        mis, obs = pattern.missing, pattern.observed
        m = mean[pattern.rows]
        cond_mean = m[:, mis]
        cond_cov = Sigma_e[np.ix_(mis, mis)]
        if obs.size:
            e_obs = data.records[layout.rows[pattern.rows]][:, obs] - m[:, obs]
            S_oo, S_mo = Sigma_e[np.ix_(obs, obs)], Sigma_e[np.ix_(mis, obs)]
            K = np.linalg.solve(S_oo, S_mo.T).T  # S_MO S_OO^-1
            cond_mean = cond_mean + e_obs @ K.T
            cond_cov = cond_cov - K @ S_mo.T
        C = np.linalg.cholesky(0.5 * (cond_cov + cond_cov.T))
        out[pattern.positions] = cond_mean + rng.standard_normal(cond_mean.shape) @ C.T
    return out, layout.shift(out)


def _gibbs_step_class():
    from pymc.step_methods.compound import BlockedStep, Competence

    class MissingRecordsGibbs(BlockedStep):
        """PyMC step: the exact conditional draw of ``z_missing`` (:func:`draw_missing`).

        It also keeps ``completed`` (a shared variable) equal to what the drawn records add to the rotated
        records, which NUTS's log density reads in place of recomputing it at every gradient.
        """

        name = "missing_records_gibbs"
        stats_dtypes_shapes: ClassVar[dict] = {}

        def __init__(
            self, vars, *, layout: MissingLayout, parameters, names, completed, model=None, rng=None, blocked=True
        ):
            """``parameters``: a compiled function of a point whose first outputs are mu, Sigma_k, ... (``names``)."""
            import pymc as pm

            model = pm.modelcontext(model)
            self.vars = [model.rvs_to_values.get(v, v) for v in vars]
            self.layout = layout
            self.completed = completed
            self._parameters = parameters
            self._names = names
            data = layout.data
            self._fill = data.fill[data.missing_traits]
            self._scale = data.scale[data.missing_traits]
            self._last: tuple[np.ndarray, np.ndarray] | None = None  # (z, its shift) after the last draw
            self.rng = np.random.default_rng(rng)

        def step(self, point):
            theta = dict(zip(self._names, self._parameters(point), strict=False))  # the first outputs
            z = point[Z_MISSING]
            shift = self._last[1] if self._last is not None and np.array_equal(z, self._last[0]) else None
            y, shift = draw_missing(
                self.layout, theta["mu"], theta.get("B"), theta["Sigma_k"], theta["Sigma_e"],
                self._fill + self._scale * z, self.rng, shift=shift,
                offset=theta.get("offset"), offset_rotated=theta.get("offset_rotated"),
            )  # fmt: skip
            z = (y - self._fill) / self._scale
            self._last = (z, shift)
            self.completed.set_value(shift)
            point = dict(point)
            point[Z_MISSING] = z
            return point, [{}]  # one (empty) stats entry: CompoundStep matches them to steps by position

        @staticmethod
        def competence(var, has_grad):
            return Competence.INCOMPATIBLE

    return MissingRecordsGibbs


def _conditional_logp(pm_model, grad_vars, initial_point):
    """NUTS's log density given the missing records: the model's, their shift read from a shared variable.

    Returns ``(logp_dlogp_func, shared)``. The model's log density computes ``U' scatter(y_missing)``
    (:func:`bayesblup.models.ops.missing_shift`, an O(n_missing n) product) from ``z_missing``; NUTS holds
    the records fixed, so here that product is replaced by the shared value the Gibbs step sets after
    each draw. The density is the model's own, term for term.
    """
    import pytensor
    from pymc.model.core import ValueGradFunction
    from pytensor.graph.replace import graph_replace
    from pytensor.graph.traversal import applys_between

    from ..models.ops import is_missing_shift

    cost = pm_model.logp()
    shift = [node.outputs[0] for node in applys_between(pm_model.value_vars, [cost]) if is_missing_shift(node.op)]
    if len(shift) != 1:
        raise RuntimeError(f"expected one missing-record shift in the log density, found {len(shift)}")
    completed = pytensor.shared(np.zeros(shift[0].type.shape), name="completed_shift")
    (cost,) = graph_replace([cost], {shift[0]: completed}, strict=False)
    extra = {
        var: initial_point[var.name]
        for var in pm_model.value_vars
        if var not in grad_vars and var in set(pytensor.graph.traversal.graph_inputs([cost]))
    }
    fn = ValueGradFunction([cost], grad_vars, extra, model=pm_model, initial_point=initial_point, ravel_inputs=True)
    fn.trust_input = True
    return fn, completed


def gibbs_sample_kwargs(model, pm_model, *, chains: int, seed, target_accept: float) -> dict:
    """``pm.sample`` keywords: the Gibbs step for the missing records, then NUTS on everything else.

    The Gibbs step comes first in each iteration, so a chain's first NUTS step already reads the shift of
    its own records. The initial points are jittered as PyMC's ``jitter+adapt_diag`` does
    (uniform(-1, 1) on the unconstrained scale), one per chain.
    """
    import pymc as pm
    from pymc.initial_point import make_initial_point_fns_per_chain

    z = pm_model[Z_MISSING]
    others = [v for v in pm_model.value_vars if v is not pm_model.rvs_to_values[z]]
    rng = np.random.default_rng(seed)
    seeds = rng.integers(2**31, size=chains)
    fns = make_initial_point_fns_per_chain(
        model=pm_model, overrides=None, jitter_rvs=set(pm_model.free_RVs), chains=chains
    )
    # One compiled function of a point: what the Gibbs step conditions on (mu, Sigma_k, ...), then every free
    # variable on its own scale, which pm.sample takes as initial values (the jittered points are unconstrained)
    names = [key for key, value in model.multitrait_parameters.items() if value is not None]
    free = pm_model.free_RVs
    outs = pm_model.replace_rvs_by_values([model.multitrait_parameters[key] for key in names] + free)
    values = pm_model.compile_fn(outs, inputs=pm_model.value_vars, on_unused_input="ignore")
    points = [fn(int(s)) for fn, s in zip(fns, seeds, strict=True)]
    initvals = [dict(zip((rv.name for rv in free), values(p)[len(names) :], strict=True)) for p in points]
    logp_dlogp, completed = _conditional_logp(pm_model, others, points[0])
    with pm_model:
        gibbs = _gibbs_step_class()(
            [z], layout=MissingLayout(model.multitrait_data), parameters=values, names=names, completed=completed
        )  # fmt: skip
        # A diagonal mass matrix here, though the complete-records model takes a dense one (nuts_init): with the
        # target moving at every draw of the missing records, the dense adaptation was measured worse (n = 2000,
        # three traits: min ESS 20 and R-hat 1.13 against 203 and 1.02; benchmarks/RESULTS.md)
        nuts = pm.NUTS(vars=others, target_accept=target_accept, logp_dlogp_func=logp_dlogp)
    return {"step": [gibbs, nuts], "initvals": initvals}
