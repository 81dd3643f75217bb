"""Exact joint draws of every individual's genetic value, with a record or without, given each draw of theta.

The probability that an individual is among the best of a set of candidates is a statement about the joint
posterior of their genetic values, not about each one's mean and sd: it needs draws of g over every candidate at
once, genotyped individuals without a record (the usual selection candidates) included. These are exact draws of
``g | y, theta`` at each retained draw of ``theta`` (mu, beta, the variances), so the draws of g are as good as
those of theta.

**One kernel** (the marginal form, full or low-rank path). With ``S K_pp S = U diag(lam) U'`` over the
individuals with a record, ``d = sigma2_k lam + nu`` and ``w = sigma2_k lam / d`` (:mod:`.posterior`),

    g_p = S^-1 U z,    z = w r* + sqrt(w nu) xi,    xi ~ N(0, I),

is an exact draw of ``g_p | y, theta``. The records depend on g through ``g_p`` alone, so the others follow from
the conditional of a partitioned Gaussian given ``g_p``:

    g_u | g_p, theta ~ N(K_up K_pp^- g_p, sigma2_k C_u),    C_u = K_uu - K_up K_pp^- K_pu,

with the generalised inverse ``K_pp^- = S U diag(1/lam) U' S`` over ``lam > 0`` (``K_pp K_pp^- K_pp = K_pp``;
``g_p`` lies in K_pp's column space, and so do the rows of ``K_up``), so ``K_up K_pp^- g_p = A diag(1/lam) z``
with ``A = K_up S U``, the rotation :func:`~.posterior.posterior_moments` uses for the same individuals. ``C_u``
is positive semi-definite and factored once per model (:func:`unphenotyped_terms`): on the full path from
``K_uu`` and A, eigendecomposed (n_u x n_u); on the low-rank path, where ``K = c a^2 W W'`` over every individual
and ``V`` (m x r, orthonormal) spans the row space of the records' W, ``C_u = c a^2 W_u (I - V V') W_u'``, drawn as
``sqrt(c) a W_u (eta - V V' eta)`` with ``eta ~ N(0, I_m)``: no n_u x n_u matrix.

**Several kernels**: Matheron's rule over every individual, as for their moments
(:func:`~.posterior.matheron_chunks`).

The latent form samples g itself (every individual): its posterior draws are joint draws already.

Every function takes ``rng``, anything with numpy's ``standard_normal(shape)``: the draws are an affine map of the
standard normals it returns, which the tests read off exactly (its mean and covariance against the dense
Gaussian conditional).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..models.data import KernelsData, MarkerRows, SpectralData
from .posterior import _check_pe, _noise, _residuals, evenly_spaced, matheron_chunks

__all__ = ["Unphenotyped", "kernels_draws", "single_kernel_draws", "theta_plan", "unphenotyped_terms"]

#: Draws (columns) formed at once: a few n x 256 arrays.
_COLUMNS = 256
#: Matheron draws per theta and pass for several kernels (their chunks hold every individual x the draws).
_REPEATS = 128


def theta_plan(n_theta: int, draws: int) -> tuple[np.ndarray, int]:
    """``(used, repeats)``: at most ``draws`` thetas, evenly spaced over the ``n_theta`` kept, and draws of g at each.

    ``repeats`` exact draws of g at each theta make at least ``draws`` in all (MAP: one theta, ``draws`` draws of g
    given it). The spacing is deterministic: no seed is needed to choose the thetas.
    """
    used = evenly_spaced(n_theta, draws)
    return used, max(1, -(-draws // used.size))


@dataclass(frozen=True)
class Unphenotyped:
    """What ``g_u | g_p, theta`` needs (module docstring).

    Attributes
    ----------
    A : ndarray (n_u, components)
        ``K_up S U``.
    width : int
        Standard normals per draw of the conditional's noise.
    residual : callable
        ``xi (width, k) -> R xi (n_u, k)`` with ``R R' = C_u``.
    """

    A: np.ndarray
    width: int
    residual: Callable[[np.ndarray], np.ndarray]


def unphenotyped_terms(data: SpectralData, kernel, target, c: float) -> Unphenotyped | None:
    """The one kernel's :class:`Unphenotyped`, or None without individuals lacking a record.

    Parameters
    ----------
    data : SpectralData
        The model's ``spectral_data``.
    kernel : Kernel
        The bound kernel (its ``unphenotyped_matrix``, the full path only).
    target : (M, v) or None
        The model's ``targets["unphenotyped"]``: ``M = K_up`` (full path) or ``MarkerRows(R)`` with ``M = R W'``
        (the low-rank path).
    c : float
        ``K = c G`` (the kernel's constant).
    """
    if target is None:
        return None
    M, _ = target
    if data.thin is not None:
        thin = data.thin
        A = data.target_rotation(M)
        V = thin.basis * np.sqrt(thin.values)[None, :]  # orthonormal: the row space of S W (m x r)
        # R W' = K_up = c a^2 W_u W', so sqrt(c) a W_u = R / (sqrt(c) a)
        Wu = (M.rows if isinstance(M, MarkerRows) else np.asarray(M)) / (np.sqrt(c) * thin.coef)

        def residual(eta: np.ndarray) -> np.ndarray:
            return Wu @ (eta - V @ (V.T @ eta))

        return Unphenotyped(A=A, width=Wu.shape[1], residual=residual)
    s = np.ones(data.n) if data.scale is None else data.scale
    A = np.asarray(M, dtype=np.float64) @ (s[:, None] * data.vectors)
    kept = data.lam > 0
    C = kernel.unphenotyped_matrix() - (A[:, kept] / data.lam[kept]) @ A[:, kept].T
    values, vectors = np.linalg.eigh(0.5 * (C + C.T))
    # rounding leaves eigenvalues of C_u a little below zero (an individual whose genotype the records' span): zero
    tol = 1e-12 * max(float(np.abs(np.diag(C)).max()) if C.size else 0.0, 1.0)
    keep = values > tol
    R = vectors[:, keep] * np.sqrt(values[keep])[None, :]
    return Unphenotyped(A=A, width=R.shape[1], residual=lambda xi: R @ xi)


def single_kernel_draws(
    data: SpectralData,
    unphenotyped: Unphenotyped | None,
    mu: np.ndarray,
    sigma2_k: np.ndarray,
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None = None,
    sigma2_pe: np.ndarray | None = None,
    excess: np.ndarray | None = None,
    columns: np.ndarray,
    rng,
) -> Iterator[np.ndarray]:
    """Exact draws of g over every individual (records first), one per entry of ``columns``, by chunks.

    Parameters
    ----------
    data, unphenotyped
        The model's ``spectral_data`` and :func:`unphenotyped_terms`.
    mu, sigma2_k, sigma2_e, beta, sigma2_pe, excess
        Draws of theta, as for :func:`~.posterior.posterior_moments`.
    columns : ndarray of int
        The theta (an index into the draws) of each draw of g; a theta repeated gives several draws at it.
    rng
        Per chunk of k draws, ``standard_normal((components, k))`` then, with individuals lacking a record,
        ``standard_normal((unphenotyped.width, k))``.

    Yields
    ------
    ndarray (k, N)
    """
    _check_pe(data, sigma2_pe, excess)
    lam = data.lam
    inverse = np.divide(1.0, lam, out=np.zeros_like(lam), where=lam > 0)
    for start in range(0, columns.size, _COLUMNS):
        idx = columns[start : start + _COLUMNS]
        sk = sigma2_k[idx][None, :]
        nu = _noise(data, sigma2_e[idx][None, :], None if sigma2_pe is None else sigma2_pe[idx][None, :])
        d = sk * lam[:, None] + nu
        w = sk * lam[:, None] / d
        r = _residuals(data, mu[idx], None if beta is None else beta[idx], None if excess is None else excess[idx])
        z = w * r + np.sqrt(w * nu) * rng.standard_normal((lam.size, idx.size))
        g = data.genetic_dot(z)  # (n, k)
        if unphenotyped is not None:
            xi = rng.standard_normal((unphenotyped.width, idx.size))
            g_u = unphenotyped.A @ (inverse[:, None] * z) + np.sqrt(sk) * unphenotyped.residual(xi)
            g = np.vstack([g, g_u])
        yield g.T


def kernels_draws(
    data: KernelsData,
    mu: np.ndarray,
    sigma2: dict[str, np.ndarray],
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None = None,
    sigma2_pe: np.ndarray | None = None,
    used: np.ndarray,
    repeats: int,
    rng,
) -> Iterator[np.ndarray]:
    """Exact draws of the total g over every individual (records first) with several kernels, by chunks.

    ``repeats`` Matheron draws at each theta of ``used`` (indices into the draws), in passes of at most
    :data:`_REPEATS` (a pass solves each theta's V once for all its draws).

    Yields
    ------
    ndarray (k, N)
    """
    left = repeats
    while left > 0:
        now = min(left, _REPEATS)
        left -= now
        chunks = matheron_chunks(
            data, mu, sigma2, sigma2_e, beta=beta, sigma2_pe=sigma2_pe, used=used, repeats=now, rng=rng
        )  # fmt: skip
        for parts in chunks:
            total = sum(g_draw for _, _, _, g_draw in parts.values())  # (N, k, now)
            yield total.reshape(total.shape[0], -1).T
