"""Exact Gaussian log-likelihoods with several kernels, for the multi-set marginal form.

``woodbury_logp``
    ``log N(r; 0, D + A Sigma A')`` in the background kernel's eigenbasis, O(n R^2), with its gradient
    by hand (PyTensor's generic gradient of the same graph took about twice as long).
``surface_logp``
    The same likelihood when a single small set is left beside the background, at O(n) per gradient:
    everything that costs R^3 is a smooth function of two variance ratios, interpolated once
    (:class:`Surface`).
``dense_logp``
    ``log N(r; 0, sum_k s_k K_k + diag(nu))`` with its gradient from one Cholesky factor and the
    inverse, O(n^3) per evaluation. Writing the gradient by hand,

        d/dr   = -alpha,                                   alpha = V^-1 r
        d/ds_k = -tr(V^-1 K_k) / 2 + alpha' K_k alpha / 2
        d/dnu_i = -(V^-1)_ii / 2 + alpha_i^2 / 2,

    costs one inverse instead of the several n x n triangular solves PyTensor's generic Cholesky
    gradient takes (measured: 5x faster than ``pm.MvNormal`` at n = 599).
``canonical_mvn_logp``
    ``sum_k log N(r_k; 0, lam_k Sigma_k + Sigma_e)``, the multi-trait spectral likelihood, in the canonical
    basis of ``(Sigma_k, Sigma_e)`` (:mod:`bayesblup.linalg.canonical`): ``P P' = Sigma_e``, ``P diag(d) P'
    = Sigma_k``, ``w_k = P^-1 r_k``, ``v_kj = lam_k d_j + 1``,

        log-likelihood = -(n t log 2 pi + n log|Sigma_e| + sum_kj log v_kj + sum_kj w_kj^2 / v_kj) / 2,
        d/dr_k         = -P^-T (w_k / v_k),
        d/dSigma_k     = P^-T A_k P^-1 / 2,   A_k = sum_k lam_k (w_k / v_k)(w_k / v_k)' - diag(sum_k lam_k / v_k),
        d/dSigma_e     = the same with lam_k replaced by 1,

    O(n t^2) and one t x t eigendecomposition per gradient (O(n t^3) with a Cholesky factor per component).
    The gradient is written by hand: PyTensor's derivative of the eigenvectors divides by ``d_i - d_j``,
    undefined where two coincide (as at a starting point with ``Sigma_k`` proportional to ``Sigma_e``);
    these formulas are not. Under the numba linker it is compiled code inside the log density.
``missing_shift``
    What the missing records of several traits add to the rotated records, ``U' scatter(y_missing)``,
    remembering its last input: NUTS moves the variances while an exact Gibbs step holds the missing
    records (:mod:`bayesblup.inference.missing`), so every gradient of a trajectory reads the same
    records and pays O(n_missing n) once per draw instead of once per gradient.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..linalg.woodbury import Resolvent, Surface, dense_terms, surface_terms, woodbury_terms

__all__ = ["canonical_mvn_logp", "dense_logp", "is_missing_shift", "missing_shift", "surface_logp", "woodbury_logp"]


def surface_logp(surface: Surface, fixed, s_background, s_low, noise):
    """``log N(y; mu + X beta, V)`` for one background and one small set, as a PyTensor scalar.

    ``fixed`` stacks mu and beta (the columns of ``surface.Z`` after y); see :func:`surface_terms`.
    """

    def terms(fixed, s_b, s_low, nu):
        return surface_terms(surface, fixed, float(s_b), float(s_low), float(nu))

    return _logp_op_class()(terms)(fixed, s_background, s_low, noise)[0]


def woodbury_logp(resolvent: Resolvent, lam: np.ndarray, A: np.ndarray, blocks, r, s_background, s_low: list, noise):
    """``log N(r; 0, D + A Sigma A')`` with ``D = diag(s_background lam + noise)``, as a PyTensor scalar.

    ``Sigma`` holds ``s_low[j]`` over the ``blocks[j]`` columns of A that belong to low-rank set j;
    see :func:`woodbury_terms` for the algebra and the gradient.
    """
    import pytensor.tensor as pt

    columns = np.repeat(np.arange(len(blocks)), blocks)
    lam, A = np.asarray(lam, dtype=np.float64), np.ascontiguousarray(A, dtype=np.float64)

    def terms(r, s_b, s_low, nu):
        return woodbury_terms(resolvent, lam, A, columns, r, float(s_b), s_low, float(nu))

    return _logp_op_class()(terms)(r, s_background, pt.stack(s_low), noise)[0]


def dense_logp(kernels, r, s, nu):
    """``log N(r; 0, sum_k s_k K_k + diag(nu))`` as a PyTensor scalar (module docstring)."""
    kernels = tuple(np.ascontiguousarray(K, dtype=np.float64) for K in kernels)

    def terms(r, s, nu):
        return dense_terms(kernels, r, s, nu)

    return _logp_op_class()(terms)(r, s, nu)[0]


def _silence_object_mode(op_class) -> None:
    """Numba runs these Ops' perform in object mode: LAPACK work on large arrays, where that costs nothing."""
    try:
        from pytensor.link.numba.dispatch.basic import generate_fallback_impl, numba_funcify
    except ImportError:  # another linker: PyTensor calls perform itself
        return

    @numba_funcify.register(op_class)
    def _funcify(op, node=None, storage_map=None, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Numba will use object mode", category=UserWarning)
            return generate_fallback_impl(op, node, storage_map, **kwargs)


@functools.cache
def _logp_op_class():
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class _LogpWithGradient(Op):
        """A log-likelihood and its gradient in one NumPy call.

        ``terms(*inputs)`` returns ``(logp, d/d input 1, d/d input 2, ...)``, each gradient shaped like its
        input, so PyTensor's gradient reuses them.
        """

        def __init__(self, terms):
            self.terms = terms

        def __eq__(self, other):  # each instance holds its own data: never merge two
            return self is other

        def __hash__(self):
            return id(self)

        def make_node(self, *inputs):
            inputs = [pt.as_tensor_variable(x, dtype="float64") for x in inputs]
            return Apply(self, inputs, [pt.dscalar(), *(x.type() for x in inputs)])

        def perform(self, node, inputs, outputs):
            for out, value in zip(outputs, self.terms(*inputs), strict=True):
                out[0] = np.asarray(value, dtype=np.float64)

        def pullback(self, inputs, outputs, cotangents):
            g = cotangents[0]  # only the log-likelihood is differentiated
            return [g * grad for grad in outputs[1:]]

    _silence_object_mode(_LogpWithGradient)
    return _LogpWithGradient


def missing_shift(U_rows: np.ndarray, row_index: np.ndarray, traits: np.ndarray, n_traits: int, deviations):
    """``S`` (n, t) with ``S[:, j] = sum over the missing records i of trait j of U[row_i, :] deviations_i``.

    ``U_rows`` (r, n) holds U's rows of the r individuals with a missing record, ``row_index`` and ``traits``
    the row (into U_rows) and trait of each missing record, ``deviations`` (a PyTensor vector) the records
    less the value the rotated data were filled with. One product with U_rows each way.
    """
    U_rows = np.ascontiguousarray(U_rows, dtype=np.float64)
    return _missing_shift_class()(U_rows, np.asarray(row_index), np.asarray(traits), n_traits)(deviations)


def is_missing_shift(op) -> bool:
    """Whether ``op`` is a :func:`missing_shift` (the Gibbs path replaces it in NUTS's log density)."""
    return isinstance(op, _missing_shift_class())


@functools.cache
def _missing_shift_class():
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class _MissingShift(Op):
        """``U_rows' scatter(deviations)`` with a one-entry cache; its gradient is :class:`_MissingShiftGrad`."""

        def __init__(self, U_rows, row_index, traits, n_traits):
            self.U_rows, self.row_index, self.traits, self.n_traits = U_rows, row_index, traits, n_traits
            self._last: tuple[np.ndarray, np.ndarray] | None = None

        def __eq__(self, other):  # each instance holds its own data: never merge two
            return self is other

        def __hash__(self):
            return id(self)

        def make_node(self, deviations):
            deviations = pt.as_tensor_variable(deviations, dtype="float64")
            return Apply(self, [deviations], [pt.tensor(dtype="float64", shape=(self.U_rows.shape[1], self.n_traits))])

        def shift(self, x: np.ndarray) -> np.ndarray:
            scattered = np.zeros((self.U_rows.shape[0], self.n_traits))
            scattered[self.row_index, self.traits] = x
            return self.U_rows.T @ scattered

        def perform(self, node, inputs, outputs):
            (x,) = inputs
            if self._last is None or not np.array_equal(x, self._last[0]):
                self._last = (np.array(x, copy=True), self.shift(x))
            outputs[0][0] = self._last[1].copy()  # a copy: later Ops may write into their input

        def pullback(self, inputs, outputs, cotangents):
            return [_MissingShiftGrad(self)(cotangents[0])]

    class _MissingShiftGrad(Op):
        """``d/d deviations_i = (U_rows cotangent)[row_i, trait_i]``."""

        def __init__(self, forward):
            self.forward = forward

        def __eq__(self, other):
            return isinstance(other, _MissingShiftGrad) and self.forward is other.forward

        def __hash__(self):
            return hash((_MissingShiftGrad, id(self.forward)))

        def make_node(self, cotangent):
            return Apply(self, [pt.as_tensor_variable(cotangent, dtype="float64")], [pt.dvector()])

        def perform(self, node, inputs, outputs):
            (cot,) = inputs
            f = self.forward
            outputs[0][0] = (f.U_rows @ cot)[f.row_index, f.traits]

    _silence_object_mode(_MissingShift)
    _silence_object_mode(_MissingShiftGrad)
    return _MissingShift


def canonical_terms(lam, Sigma_k, Sigma_e, R):
    """``(logp, d/dSigma_k, d/dSigma_e, d/dR)`` of ``sum_k log N(R_k; 0, lam_k Sigma_k + Sigma_e)`` (module docstring).

    NumPy (PyTensor's perform); the numba linker runs :func:`_canonical_terms_loops`, the same terms.
    """
    from ..linalg.canonical import canonical

    n, t = R.shape
    _, P_inv, d = canonical(Sigma_k, Sigma_e)
    W = np.asarray(R) @ P_inv.T  # rows w_k' = (P^-1 r_k)'
    v = np.outer(lam, d) + 1.0
    Wv = W / v
    logdet = n * np.linalg.slogdet(Sigma_e)[1] + np.sum(np.log(v))
    logp = -0.5 * (n * t * np.log(2.0 * np.pi) + logdet + np.sum(W * Wv))
    Wv_lam = Wv * np.expand_dims(lam, 1)
    A_e = np.ascontiguousarray(Wv.T) @ Wv - np.diag(np.sum(1.0 / v, axis=0))
    A_k = np.ascontiguousarray(Wv_lam.T) @ Wv - np.diag(np.sum(np.expand_dims(lam, 1) / v, axis=0))
    P_inv_T = np.ascontiguousarray(P_inv.T)
    grad_k = 0.5 * (P_inv_T @ A_k @ P_inv)
    grad_e = 0.5 * (P_inv_T @ A_e @ P_inv)
    grad_R = -(Wv @ P_inv)
    return logp, grad_k, grad_e, grad_R


def _canonical_terms_loops(lam, Sigma_k, Sigma_e, R):
    """:func:`canonical_terms` with the O(n t^2) part as one fused loop (for numba: a third of the time).

    One log per component (of the product of its t variances) instead of one per entry.
    """
    n, t = R.shape
    L = np.linalg.cholesky(np.ascontiguousarray(Sigma_e))
    L_inv = np.ascontiguousarray(np.linalg.inv(L))
    A = L_inv @ np.ascontiguousarray(Sigma_k) @ np.ascontiguousarray(L_inv.T)
    d, Q = np.linalg.eigh(0.5 * (A + A.T))
    d = np.maximum(d, 0.0)
    P_inv = np.ascontiguousarray(Q.T) @ L_inv
    A_e = np.zeros((t, t))
    A_k = np.zeros((t, t))
    grad_R = np.zeros((n, t))
    wv = np.zeros(t)
    quad = 0.0
    logdet = 0.0
    for k in range(n):
        product = 1.0
        for j in range(t):
            w = 0.0
            for i in range(t):
                w += P_inv[j, i] * R[k, i]
            v = lam[k] * d[j] + 1.0
            product *= v
            inv = 1.0 / v  # one division: they dominate the loop
            wv[j] = w * inv
            quad += w * wv[j]
            A_e[j, j] -= inv
            A_k[j, j] -= lam[k] * inv
        logdet += np.log(product)
        for a in range(t):
            for b in range(t):
                A_e[a, b] += wv[a] * wv[b]
                A_k[a, b] += lam[k] * wv[a] * wv[b]
            g = 0.0
            for j in range(t):
                g -= wv[j] * P_inv[j, a]
            grad_R[k, a] = g
    logdet += 2.0 * n * np.sum(np.log(np.diag(L)))
    logp = -0.5 * (n * t * np.log(2.0 * np.pi) + logdet + quad)
    P_inv_T = np.ascontiguousarray(P_inv.T)
    return logp, 0.5 * (P_inv_T @ A_k @ P_inv), 0.5 * (P_inv_T @ A_e @ P_inv), grad_R


def canonical_mvn_logp(lam, Sigma_k, Sigma_e, R):
    """``sum_k log N(R_k; 0, lam_k Sigma_k + Sigma_e)`` as a PyTensor scalar (module docstring)."""
    return _canonical_op_class()()(lam, Sigma_k, Sigma_e, R)[0]


@functools.cache
def _canonical_op_class():
    import pytensor.tensor as pt
    from pytensor.gradient import disconnected_type
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class CanonicalMvnLogp(Op):
        """Outputs ``(logp, d/dSigma_k, d/dSigma_e, d/dR)``; the eigenvalues ``lam`` are data (no gradient)."""

        __props__ = ()

        def make_node(self, lam, Sigma_k, Sigma_e, R):
            inputs = [pt.as_tensor_variable(x, dtype="float64") for x in (lam, Sigma_k, Sigma_e, R)]
            return Apply(self, inputs, [pt.dscalar(), pt.dmatrix(), pt.dmatrix(), pt.dmatrix()])

        def perform(self, node, inputs, outputs):
            for out, value in zip(outputs, canonical_terms(*inputs), strict=True):
                out[0] = np.asarray(value, dtype=np.float64)

        def connection_pattern(self, node):
            return [[False] * 4, [True] * 4, [True] * 4, [True] * 4]  # lam: data, never differentiated

        def pullback(self, inputs, outputs, cotangents):
            g = cotangents[0]  # only the log-likelihood is differentiated
            return [disconnected_type(), g * outputs[1], g * outputs[2], g * outputs[3]]

    try:
        from pytensor.link.numba.dispatch import basic as numba_basic
        from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
    except ImportError:  # another linker: PyTensor calls perform
        pass
    else:

        @register_funcify_default_op_cache_key(CanonicalMvnLogp)
        def _numba_canonical(op, node, **kwargs):
            terms = numba_basic.numba_njit(_canonical_terms_loops)

            @numba_basic.numba_njit
            def canonical(lam, Sigma_k, Sigma_e, R):
                logp, grad_k, grad_e, grad_R = terms(lam, Sigma_k, Sigma_e, R)
                return np.asarray(logp), grad_k, grad_e, grad_R  # a scalar output is a 0-d array

            return canonical, 1

    return CanonicalMvnLogp


def register_jax() -> None:
    """Teach PyTensor's JAX backend :class:`CanonicalMvnLogp` (called when a JAX sampler is chosen).

    Not at import: importing PyTensor's JAX dispatch imports JAX, a second of every fit that does not use it.
    """
    from pytensor.link.jax.dispatch import jax_funcify

    @jax_funcify.register(_canonical_op_class())
    def _jax_canonical(op, **kwargs):
        return _jax_terms


def _jax_terms(lam, Sigma_k, Sigma_e, R):
    """:func:`canonical_terms` in JAX (the JAX samplers)."""
    import jax.numpy as jnp

    n, t = R.shape
    L = jnp.linalg.cholesky(Sigma_e)
    L_inv = jnp.linalg.inv(L)
    A = L_inv @ Sigma_k @ L_inv.T
    d, Q = jnp.linalg.eigh(0.5 * (A + A.T))
    d = jnp.maximum(d, 0.0)
    P_inv = Q.T @ L_inv
    W = R @ P_inv.T
    v = jnp.outer(lam, d) + 1.0
    Wv = W / v
    logdet = 2.0 * n * jnp.sum(jnp.log(jnp.diag(L))) + jnp.sum(jnp.log(v))
    logp = -0.5 * (n * t * jnp.log(2.0 * jnp.pi) + logdet + jnp.sum(W * Wv))
    A_e = Wv.T @ Wv - jnp.diag(jnp.sum(1.0 / v, axis=0))
    A_k = (Wv * lam[:, None]).T @ Wv - jnp.diag(jnp.sum(lam[:, None] / v, axis=0))
    return logp, 0.5 * (P_inv.T @ A_k @ P_inv), 0.5 * (P_inv.T @ A_e @ P_inv), -(Wv @ P_inv)
