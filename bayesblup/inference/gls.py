"""The exact marginal likelihood of the variance components of one kernel, mu and beta integrated out.

With one kernel and no permanent environment the marginal form (:class:`~bayesblup.models.data.SpectralData`) is,
for ``theta = (mu, beta)`` and ``X1 = [1, X]`` rotated into the kernel's eigenbasis,

    y* ~ N(X1* theta, V),     V = sigma2_e V0,     V0 = diag(rho lam_k + 1),     rho = sigma2_k / sigma2_e,

plus, for repeated or weighted records, the within-individual scatter (:func:`bayesblup.models.data.within_terms`),
a Gaussian block of variance ``sigma2_e`` summarised by its Gram matrix. Every block of the likelihood is therefore
summarised, for a given ``rho``, by the generalised-least-squares statistics of ``V0``:

    X1'V0^-1 X1,   X1'V0^-1 y,   y'V0^-1 y,   log|V0|,   and the number of observations,

accumulated block by block in :func:`gls_statistics` (a block of unit relative variance, as the null space of the
low-rank path's kernel, adds its Gram matrix and its count there and nothing else). Scaling by ``sigma2_e`` is then
analytic, so a whole column of a grid over ``sigma2_e`` costs O(1) per point once the O(n) statistics of its
``rho`` are known (:mod:`bayesblup.inference.quadrature`).

Under the model's Gaussian prior ``theta ~ N(m, P^-1)`` (P diagonal; a zero is a flat prior), ``theta | y, rho,
sigma2_e ~ N(A^-1 b, A^-1)`` with ``A = X1'V^-1 X1 + P`` and ``b = X1'V^-1 y + P m``, and

    log p(y | rho, sigma2_e) = -N/2 log(2 pi sigma2_e) - log|V0|/2 - y'V^-1 y/2 - m'P m/2 + b'A^-1 b/2
                               - log|A|/2 + log|P+|/2 + (flat)/2 log(2 pi) + c,

the Gaussian integral over theta (``P+`` the non-zero precisions, ``c`` the within terms' constant), equal to the
log of the integral of the PyMC model's density over mu and beta (tests/inference/test_quadrature.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.data import SpectralData

__all__ = ["FixedConditional", "FixedPrior", "GLSStatistics", "fixed_conditional", "gls_statistics",
           "log_marginal_likelihood"]  # fmt: skip

_CHUNK = 512  # ratios per block of (chunk, n) arrays


@dataclass(frozen=True)
class FixedPrior:
    """The Gaussian prior of ``theta = (mu, beta)``: mean and diagonal precision (0: flat)."""

    mean: np.ndarray  # (p,)
    precision: np.ndarray  # (p,)

    @property
    def log_normaliser(self) -> float:
        """``log|P+|/2 - m'P m/2 + (flat)/2 log(2 pi)``: the theta-free part of the Gaussian integral."""
        P, m = self.precision, self.mean
        proper = P > 0
        return float(0.5 * np.log(P[proper]).sum() - 0.5 * (P * m**2).sum() + 0.5 * (~proper).sum() * np.log(2 * np.pi))


@dataclass(frozen=True)
class GLSStatistics:
    """The GLS statistics of ``V0`` at each of R ratios (module docstring); ``V = sigma2_e V0``."""

    yy: np.ndarray  # (R,) y'V0^-1 y
    Xy: np.ndarray  # (R, p) X1'V0^-1 y
    XX: np.ndarray  # (R, p, p) X1'V0^-1 X1
    logdet: np.ndarray | None  # (R,) log|V0| (None when not asked for)
    count: int  # observations in all blocks: the power of sigma2_e in |V|
    constant: float  # the within terms' constant (0 without them)


def _columns(data: SpectralData) -> np.ndarray:
    """``[y*, 1*, X*]``: (n, 1 + p)."""
    parts = [data.y[:, None], data.one[:, None]] + ([] if data.X is None else [data.X])
    return np.hstack(parts)


def _unit_blocks(data: SpectralData, p: int) -> list[tuple[np.ndarray, int]]:
    """Blocks of relative variance 1 (variance sigma2_e): ``(Gram matrix of [y, 1, X], observations)``.

    The within-individual scatter of repeated or weighted records: ``a - 2 b'beta + beta'C beta`` is the squared
    norm of ``y - X1 theta`` for a Gram matrix with ``[0, 0] = a``, ``[0, 2:] = b``, ``[2:, 2:] = C`` (the
    intercept has no within-individual deviation). And on the low-rank path the kernel's null space (variance
    ``nu = sigma2_e``), whose Gram matrix of the projected ``[S ybar, S 1, S Xbar]`` SpectralData holds.
    """
    blocks = []
    if data.null_dim:  # the low-rank path's null space: eigenvalue 0, variance sigma2_e, its Gram matrix given
        blocks.append((data.null_gram, int(data.null_dim)))
    if data.within is not None:
        a, b, C, n_extra, _ = data.within
        gram = np.zeros((p + 1, p + 1))
        gram[0, 0] = a
        if b is not None:
            gram[0, 2:] = gram[2:, 0] = b
            gram[2:, 2:] = C
        blocks.append((gram, int(n_extra)))
    return blocks


def gls_statistics(data: SpectralData, ratio: np.ndarray, *, logdet: bool = True) -> GLSStatistics:
    """``X1'V0^-1 X1``, ``X1'V0^-1 y``, ``y'V0^-1 y`` and ``log|V0|`` at each ratio ``rho = sigma2_k / sigma2_e``.

    The one place where the blocks of the likelihood are accumulated: the kernel's components (relative variance
    ``rho lam_k + 1``) and the blocks of relative variance 1 (:func:`_unit_blocks`). O(n p^2) per ratio.

    Parameters
    ----------
    data : SpectralData
        One kernel's marginal form without a permanent environment (noise ``(1, 0)``).
    ratio : ndarray (R,)
        Values of ``sigma2_k / sigma2_e``, >= 0.
    logdet : bool
        Also ``log|V0|`` (not needed for conditional draws of theta).
    """
    if data.noise != (1.0, 0.0) or data.excess is not None:
        raise ValueError("gls_statistics takes a model without a permanent environment (noise sigma2_e).")
    ratio = np.atleast_1d(np.asarray(ratio, dtype=np.float64))
    Z = _columns(data)
    n, P = Z.shape
    products = (Z[:, :, None] * Z[:, None, :]).reshape(n, P * P)  # per component, every product of two columns
    T = np.empty((ratio.size, P * P))
    ld = np.empty(ratio.size) if logdet else None
    for start in range(0, ratio.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        d = ratio[sl, None] * data.lam[None, :] + 1.0
        T[sl] = (1.0 / d) @ products
        if logdet:
            ld[sl] = np.log(d).sum(axis=1)
    T = T.reshape(-1, P, P)
    count, constant = n, 0.0
    for gram, observations in _unit_blocks(data, P - 1):
        T = T + gram[None]
        count += observations
    if data.within is not None:
        constant = float(data.within[4])
    return GLSStatistics(yy=T[:, 0, 0], Xy=T[:, 1:, 0], XX=T[:, 1:, 1:], logdet=ld, count=count, constant=constant)


@dataclass(frozen=True)
class FixedConditional:
    """``theta | y, rho, sigma2_e``: its mean and the Cholesky factor of its precision, and ``log p(y | rho, s)``."""

    log_ml: np.ndarray | None  # (...)
    mean: np.ndarray  # (..., p)
    chol: np.ndarray  # (..., p, p) lower: A = L L'


def fixed_conditional(stats: GLSStatistics, sigma2_e: np.ndarray, prior: FixedPrior) -> FixedConditional:
    """Integrate theta out at ``sigma2_e`` (shape (R, ...) matching the R ratios of ``stats``).

    Returns the log marginal likelihood (if ``stats`` has ``log|V0|``) and theta's Gaussian conditional.
    """
    s = np.asarray(sigma2_e, dtype=np.float64)
    extra = s.ndim - 1
    expand = (slice(None),) + (None,) * extra

    def per_ratio(a):  # (R, ...) statistics against (R, S...) scales
        return a[expand]

    inv = 1.0 / s
    A = per_ratio(stats.XX) * inv[..., None, None] + np.diag(prior.precision)
    b = per_ratio(stats.Xy) * inv[..., None] + prior.precision * prior.mean
    L = np.linalg.cholesky(A)
    # mean = A^-1 b through the factor; b'A^-1 b = |L^-1 b|^2
    w = np.linalg.solve(L, b[..., None])[..., 0]
    mean = np.linalg.solve(np.swapaxes(L, -1, -2), w[..., None])[..., 0]
    log_ml = None
    if stats.logdet is not None:
        log_ml = (
            -0.5 * stats.count * np.log(2 * np.pi * s)
            - 0.5 * per_ratio(stats.logdet)
            - 0.5 * per_ratio(stats.yy) * inv
            + 0.5 * (w**2).sum(-1)
            - np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
            + prior.log_normaliser
            + stats.constant
        )
    return FixedConditional(log_ml=log_ml, mean=mean, chol=L)


def log_marginal_likelihood(
    data: SpectralData, sigma2_k: np.ndarray, sigma2_e: np.ndarray, prior: FixedPrior
) -> np.ndarray:
    """``log p(y | sigma2_k, sigma2_e)`` with mu and beta integrated out under ``prior``, at each pair given.

    The marginal likelihood of the variance components (module docstring): the density the quadrature integrates
    against their prior. ``sigma2_k`` and ``sigma2_e`` are equal-length vectors (or scalars).
    """
    sigma2_k, sigma2_e = np.broadcast_arrays(np.atleast_1d(sigma2_k), np.atleast_1d(sigma2_e))
    stats = gls_statistics(data, sigma2_k / sigma2_e)
    return fixed_conditional(stats, sigma2_e, prior).log_ml
