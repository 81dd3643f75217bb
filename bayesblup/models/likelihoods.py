"""Exact Gaussian log-likelihoods with several kernels, for the multi-set marginal form.

``woodbury_logp``
    ``log N(r; 0, D + A Sigma A')`` in the background kernel's eigenbasis, O(n R^2), with its gradient
    by hand (one syrk and one n x R triangular solve; PyTensor's generic gradient of the same graph
    took about twice as long).
``DenseGaussianLogp``
    ``log N(r; 0, sum_k s_k K_k + diag(nu))`` with its gradient from one Cholesky factor and its
    inverse (LAPACK ``potrf`` and ``potri``), O(n^3) per evaluation. Writing the gradient by hand,

        d/dr   = -alpha,                                   alpha = V^-1 r
        d/ds_k = -tr(V^-1 K_k) / 2 + alpha' K_k alpha / 2
        d/dnu_i = -(V^-1)_ii / 2 + alpha_i^2 / 2,

    costs one inverse instead of the several n x n triangular solves PyTensor's generic Cholesky
    gradient takes (measured: 5x faster than ``pm.MvNormal`` at n = 599).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
from scipy.linalg import blas, lapack

__all__ = ["DenseGaussianLogp", "woodbury_logp"]


def _woodbury_terms(lam, A, columns, r, s_background, s_low, noise):
    """(logp, d/dr, d/ds_background, d/ds_low, d/dnoise) of ``log N(r; 0, D + A Sigma A')``.

    ``D = diag(s_background lam + noise)``; ``Sigma`` holds ``s_low[columns[j]]`` for column j of A. With
    ``B = D^-1/2 A Sigma^1/2`` and ``C = I + B'B = L L'``:

        log det V = sum log d + 2 sum log L_jj,     r'V^-1 r = sum r^2/d - |L^-1 Sigma^1/2 A'(r/d)|^2,
        alpha = V^-1 r = (r - A Sigma^1/2 C^-1 Sigma^1/2 A'(r/d)) / d,
        (V^-1)_ii = (1 - |L^-1 b_i|^2) / d_i,       (Sigma^1/2 A'V^-1 A Sigma^1/2) = I - C^-1,

    and d logp / d V_ii = -((V^-1)_ii - alpha_i^2) / 2, d logp / d Sigma_jj = -((A'V^-1 A)_jj -
    (A'alpha)_j^2) / 2. One syrk and one triangular solve of n x R: O(n R^2).
    """
    d = s_background * lam + noise
    if not (np.all(d > 0) and np.all(s_low > 0)):
        return -np.inf, np.zeros_like(r), 0.0, np.zeros_like(s_low), 0.0
    sigma = s_low[columns]
    root = np.sqrt(sigma)
    B = np.asfortranarray(A * (root[None, :] / np.sqrt(d)[:, None]))
    C = blas.dsyrk(1.0, B, trans=1, lower=1)  # B'B, lower triangle
    C[np.diag_indices_from(C)] += 1.0
    L, info = lapack.dpotrf(C, lower=1, clean=1)
    if info != 0:
        return -np.inf, np.zeros_like(r), 0.0, np.zeros_like(s_low), 0.0
    rd = r / d
    q = root * (A.T @ rd)
    v, _ = lapack.dtrtrs(L, q, lower=1)
    t, _ = lapack.dtrtrs(L, v, lower=1, trans=1)  # C^-1 q
    alpha = rd - (A @ (root * t)) / d
    logdet = float(np.log(d).sum()) + 2.0 * float(np.log(np.diag(L)).sum())
    logp = -0.5 * (r.size * np.log(2 * np.pi) + logdet + float(r @ rd) - float(v @ v))
    H, _ = lapack.dtrtrs(L, np.ascontiguousarray(B.T), lower=1)  # L^-1 B': R x n
    v_diag = (1.0 - np.einsum("ji,ji->i", H, H)) / d
    g_d = -0.5 * (v_diag - alpha**2)
    L_inv, _ = lapack.dtrtri(L, lower=1)
    c_inv_diag = np.einsum("ij,ij->j", L_inv, L_inv)  # diag(C^-1) = diag(L^-T L^-1)
    Aa = A.T @ alpha
    g_sigma = -0.5 * ((1.0 - c_inv_diag) / sigma - Aa**2)
    g_low = np.bincount(columns, weights=g_sigma, minlength=s_low.size)
    return logp, -alpha, float(g_d @ lam), g_low, float(g_d.sum())


def woodbury_logp(lam: np.ndarray, A: np.ndarray, blocks, r, s_background, s_low: list, noise):
    """``log N(r; 0, D + A Sigma A')`` with ``D = diag(s_background lam + noise)``, as a PyTensor scalar.

    ``Sigma`` holds ``s_low[j]`` over the ``blocks[j]`` columns of A that belong to low-rank set j;
    see :func:`_woodbury_terms` for the algebra and the gradient.
    """
    import pytensor.tensor as pt

    columns = np.repeat(np.arange(len(blocks)), blocks)
    op = _woodbury_op_class()(np.asarray(lam, dtype=np.float64), np.asfortranarray(A, dtype=np.float64), columns)
    return op(r, s_background, pt.stack(s_low), noise)[0]


def _dense_terms(kernels, r, s, nu):
    """(logp, d/dr, d/ds, d/dnu) at one point; -inf and zero gradients where V is not positive definite.

    ``kernels`` are Fortran-ordered. Every BLAS/LAPACK call goes through SciPy's library: NumPy
    ships a second OpenBLAS, and interleaving the two made their thread pools contend on 2 cores
    (measured: 3x slower).
    """
    V = np.multiply(kernels[0], s[0], order="F")
    for K, sk in zip(kernels[1:], s[1:], strict=True):
        V += sk * K
    V.flat[:: V.shape[0] + 1] += nu
    c, info = lapack.dpotrf(V, lower=1, clean=1, overwrite_a=1)
    if info != 0 or not np.all(np.isfinite(np.diag(c))):
        return -np.inf, np.zeros_like(r), np.zeros_like(s), np.zeros_like(nu)
    alpha, _ = lapack.dpotrs(c, r, lower=1)
    logdet = 2.0 * float(np.log(np.diag(c)).sum())
    logp = -0.5 * (r.size * np.log(2 * np.pi) + logdet + float(blas.ddot(r, alpha)))
    # potri writes V^-1 into the lower triangle; clean=1 left zeros above it. For symmetric K,
    # tr(V^-1 K) = 2 <tril(V^-1), K> - <diag(V^-1), diag(K)>: one dot product, no n x n copy.
    inv, _ = lapack.dpotri(c, lower=1, overwrite_c=1)
    diag = np.diag(inv).copy()
    flat = inv.reshape(-1, order="F")
    g_s = np.array(
        [
            -0.5 * (2.0 * blas.ddot(flat, K.reshape(-1, order="F")) - diag @ np.diag(K))
            + 0.5 * blas.ddot(alpha, blas.dsymv(1.0, K, alpha))
            for K in kernels
        ]
    )
    g_nu = -0.5 * diag + 0.5 * alpha**2
    return logp, -alpha, g_s, g_nu


class DenseGaussianLogp:
    """Build the PyTensor Op lazily (PyTensor is imported when a model is built, not with the package)."""

    def __new__(cls, kernels):
        return _dense_op_class()(tuple(np.asfortranarray(K, dtype=np.float64) for K in kernels))


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
def _woodbury_op_class():
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class _WoodburyLogp(Op):
        """``log N(r; 0, diag(s_b lam + nu) + A Sigma A')`` and its gradients (:func:`_woodbury_terms`)."""

        def __init__(self, lam, A, columns):
            self.lam, self.A, self.columns = lam, A, columns

        def __eq__(self, other):  # each instance holds its own data: never merge two
            return self is other

        def __hash__(self):
            return id(self)

        def make_node(self, r, s_background, s_low, noise):
            inputs = [pt.as_tensor_variable(x, dtype="float64") for x in (r, s_background, s_low, noise)]
            outputs = [pt.dscalar(), pt.dvector(), pt.dscalar(), pt.dvector(), pt.dscalar()]
            return Apply(self, inputs, outputs)

        def perform(self, node, inputs, outputs):
            r, s_b, s_low, noise = inputs
            values = _woodbury_terms(self.lam, self.A, self.columns, r, float(s_b), s_low, float(noise))
            for out, value in zip(outputs, values, strict=True):
                out[0] = np.asarray(value, dtype=np.float64)

        def pullback(self, inputs, outputs, cotangents):
            g = cotangents[0]  # only the log-likelihood is differentiated
            return [g * outputs[1], g * outputs[2], g * outputs[3], g * outputs[4]]

    _silence_object_mode(_WoodburyLogp)
    return _WoodburyLogp


@functools.cache
def _dense_op_class():
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class _DenseGaussianLogp(Op):
        """``log N(r; 0, sum_k s_k K_k + diag(nu))`` and its gradients (module docstring)."""

        def __init__(self, kernels):
            self.kernels = kernels

        # Each Op instance holds its own kernels: never merge two of them.
        def __eq__(self, other):
            return self is other

        def __hash__(self):
            return id(self)

        def make_node(self, r, s, nu):
            r, s, nu = (pt.as_tensor_variable(x, dtype="float64") for x in (r, s, nu))
            return Apply(self, [r, s, nu], [pt.dscalar(), pt.dvector(), pt.dvector(), pt.dvector()])

        def perform(self, node, inputs, outputs):
            r, s, nu = inputs
            for out, value in zip(outputs, _dense_terms(self.kernels, r, s, nu), strict=True):
                out[0] = np.asarray(value, dtype=np.float64)

        def pullback(self, inputs, outputs, cotangents):
            g = cotangents[0]  # only the log-likelihood is differentiated
            return [g * outputs[1], g * outputs[2], g * outputs[3]]

    _silence_object_mode(_DenseGaussianLogp)
    return _DenseGaussianLogp
