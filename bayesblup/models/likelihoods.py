"""Exact Gaussian log-likelihoods with several kernels, for the multi-set marginal form.

``woodbury_logp``
    ``log N(r; 0, D + A Sigma A')`` in the background kernel's eigenbasis, O(n R^2): PyTensor's own
    Cholesky and triangular solve, differentiated by PyTensor.
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


def woodbury_logp(lam: np.ndarray, A: np.ndarray, blocks, r, s_background, s_low: list, noise):
    """``log N(r; 0, D + A Sigma A')`` with ``D = diag(s_background lam + noise)``.

    ``Sigma`` holds ``s_low[j]`` over the ``blocks[j]`` columns of A that belong to low-rank set j. The
    determinant lemma and the Woodbury identity work with ``C = I + Sigma^1/2 A' D^-1 A``, which stays
    well conditioned as any variance goes to zero.
    """
    import pytensor.tensor as pt
    from pytensor.tensor.linalg import cholesky, solve_triangular

    n = lam.size
    d = s_background * lam + noise
    root = pt.concatenate([pt.repeat(pt.sqrt(s)[None], w) for s, w in zip(s_low, blocks, strict=True)])
    B = (A / pt.sqrt(d)[:, None]) * root[None, :]
    L = cholesky(pt.eye(A.shape[1]) + pt.dot(B.T, B), lower=True)
    v = solve_triangular(L, root * pt.dot(A.T, r / d), lower=True)
    logdet = pt.sum(pt.log(d)) + 2 * pt.sum(pt.log(pt.diag(L)))
    quad = pt.sum(r**2 / d) - pt.sum(v**2)
    return -0.5 * (n * np.log(2 * np.pi) + logdet + quad)


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

        def L_op(self, inputs, outputs, output_grads):
            g = output_grads[0]  # only the log-likelihood is differentiated
            return [g * outputs[1], g * outputs[2], g * outputs[3]]

    try:
        from pytensor.link.numba.dispatch.basic import generate_fallback_impl, numba_funcify
    except ImportError:  # another linker: PyTensor calls perform itself
        return _DenseGaussianLogp

    @numba_funcify.register(_DenseGaussianLogp)
    def _funcify(op, node=None, storage_map=None, **kwargs):
        # The work is LAPACK calls on n x n arrays: Numba's object mode around perform costs nothing
        # next to them, so its warning about object mode is expected here and silenced.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Numba will use object mode", category=UserWarning)
            return generate_fallback_impl(op, node, storage_map, **kwargs)

    return _DenseGaussianLogp
