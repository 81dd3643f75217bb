"""The canonical transformation of two covariance matrices: one basis that diagonalises both.

For a residual covariance ``Sigma_e = L L'`` (positive definite) and a kernel covariance ``Sigma_k``
(positive semi-definite), the eigendecomposition ``L^-1 Sigma_k L^-T = Q diag(d) Q'`` gives ``P = L Q``
with

    P P' = Sigma_e,        P diag(d) P' = Sigma_k,

so every component's covariance of the multi-trait spectral form is diagonal in that basis:
``lam_k Sigma_k + Sigma_e = P diag(lam_k d + 1) P'`` (Meyer 1985's canonical transformation of
multi-trait REML). With ``P^-1 = Q' L^-1``,

    (lam_k Sigma_k + Sigma_e)^-1 = P^-T diag(1 / (lam_k d + 1)) P^-1,
    Sigma_k (lam_k Sigma_k + Sigma_e)^-1 = P diag(d / (lam_k d + 1)) P^-1,

so the n components cost one t x t factorisation per draw of the variances instead of one per component.
Used in NumPy only (the posterior and the exact draws of the missing records): the eigenvector
derivative is ill-conditioned where two ``d`` nearly coincide, so NUTS's gradient is not built on it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["canonical"]


def canonical(Sigma_k: np.ndarray, Sigma_e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P, P^-1, d)`` with ``P P' = Sigma_e`` and ``P diag(d) P' = Sigma_k``; batched over leading axes.

    Parameters
    ----------
    Sigma_k : ndarray (..., t, t)
        Positive semi-definite.
    Sigma_e : ndarray (..., t, t)
        Positive definite.

    Returns
    -------
    P, P_inv : ndarray (..., t, t)
    d : ndarray (..., t)
        Non-negative (rounding below zero is set to zero: ``Sigma_k`` is a covariance).
    """
    Sigma_k = np.asarray(Sigma_k, dtype=np.float64)
    Sigma_e = np.asarray(Sigma_e, dtype=np.float64)
    L = np.linalg.cholesky(Sigma_e)
    L_inv = np.linalg.inv(L)
    A = L_inv @ Sigma_k @ np.swapaxes(L_inv, -1, -2)
    d, Q = np.linalg.eigh(0.5 * (A + np.swapaxes(A, -1, -2)))
    return L @ Q, np.swapaxes(Q, -1, -2) @ L_inv, np.clip(d, 0.0, None)
