"""The spectral form: one eigendecomposition of the kernel, after which the likelihood is diagonal.

With ``K = U diag(s) U'`` and ``Var(y) = sigma2_k K + sigma2_e I``, the rotated data ``y* = U'y``
have independent components ``y*_k ~ N((U'1)_k mu, sigma2_k s_k + sigma2_e)``. The rotation is
orthonormal, so the log-likelihood of ``y*`` equals that of ``y`` exactly.

Eigenvalues below ``tol = rtol * max(s)`` are set to zero (a centred G always loses one rank):
the kernel is treated as singular there, never nudged with silent jitter. Their count and the
tolerance are recorded, and a :class:`RankDeficiencyWarning` is issued once per kernel.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..errors import InputError

__all__ = [
    "DEFAULT_EIGEN_RTOL",
    "RankDeficiencyWarning",
    "Spectral",
    "ThinSpectral",
    "eigendecompose",
    "gram",
    "thin_eigendecompose",
]

#: Eigenvalues below this fraction of the largest are treated as zero. float64 eigensolvers
#: resolve eigenvalues to about n * eps * max(s) (~1e-13 for n = 599); 1e-10 sits well above that
#: noise and well below any eigenvalue that carries signal (BGLR uses 1e-10 absolute).
DEFAULT_EIGEN_RTOL = 1e-10


class RankDeficiencyWarning(UserWarning):
    """The kernel has eigenvalues treated as zero (reported in the fit's diagnostics)."""


@dataclass(frozen=True, eq=False)
class Spectral:
    """Eigendecomposition ``K = U diag(s) U'`` with small eigenvalues set to zero.

    Attributes
    ----------
    vectors : ndarray, shape (n, n)
        Orthonormal eigenvectors U (columns), eigenvalues ascending.
    values : ndarray, shape (n,)
        Eigenvalues, those below ``tol`` set to exactly zero.
    tol : float
        The threshold used.
    n_clipped : int
        How many eigenvalues were set to zero.
    min_raw : float
        The smallest eigenvalue before clipping (negative values within ``tol`` are rounding).
    """

    vectors: np.ndarray
    values: np.ndarray
    tol: float
    n_clipped: int
    min_raw: float

    @property
    def n(self) -> int:
        return self.values.size

    @property
    def rank(self) -> int:
        return self.n - self.n_clipped

    @property
    def mean_nonzero(self) -> float:
        """Mean of the eigenvalues kept (BGLR's ``mean(d)`` for RKHS)."""
        return float(self.values[self.values > 0].mean())

    def rotate(self, x: np.ndarray) -> np.ndarray:
        """``U' x``: data into the eigenbasis."""
        return self.vectors.T @ x

    def to_dict(self) -> dict:
        return {"n": self.n, "rank": self.rank, "n_clipped": self.n_clipped, "tol": self.tol, "min_raw": self.min_raw}


def eigendecompose(K: np.ndarray, *, rtol: float = DEFAULT_EIGEN_RTOL, name: str = "G") -> Spectral:
    """Eigendecompose a symmetric positive semi-definite kernel once.

    Parameters
    ----------
    K : ndarray, shape (n, n)
        The kernel (G, or WW' for M-BLUP).
    rtol : float
        Eigenvalues below ``rtol * max eigenvalue`` are treated as zero.
    name : str
        The kernel's name, for messages.

    Raises
    ------
    InputError
        If K is not square, not finite, or has an eigenvalue below ``-tol`` (not PSD).
    """
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise InputError(f"{name} must be a square matrix, got shape {K.shape}.")
    if not np.isfinite(K).all():
        raise InputError(f"{name} holds non-finite values; rebuild it from the genotypes.")
    # evd (divide and conquer) for all eigenpairs: measured faster than evr here, 0.33 s against 0.52 s
    # at n = 1800 and 9.6 s against 11.1 s at n = 5000 (benchmarks/RESULTS.md).
    values, vectors = scipy.linalg.eigh(K, driver="evd", check_finite=False)
    top = float(values[-1])
    if top <= 0:
        raise InputError(f"{name} has no positive eigenvalue: it carries no genetic signal.")
    tol = rtol * top
    if values[0] < -tol:
        raise InputError(
            f"{name} is not positive semi-definite: its smallest eigenvalue is {values[0]:.4g} (largest {top:.4g}), "
            f"beyond the tolerance -{tol:.3g} ({rtol:g} x the largest); expected a covariance matrix. A G built from "
            "genotypes is PSD: rebuild it (bayesblup.genomic_relationship), or bend a matrix from elsewhere (e.g. "
            "add a small multiple of the identity, or blend it with the pedigree A) before fitting."
        )
    small = values < tol
    n_clipped = int(small.sum())
    min_raw = float(values[0])
    values = np.where(small, 0.0, values)
    if n_clipped:
        # one zero is what centring a genotype matrix removes; more mean fewer markers (or distinct
        # genotypes) than individuals: m markers give at most m - 1 ranks once centred
        why = (
            "centring a genotype matrix removes one rank"
            if n_clipped == 1
            else "fewer markers than individuals, or individuals with identical genotypes, leave that many"
        )
        warnings.warn(
            f"{name} has rank {values.size - n_clipped} of {values.size}: {n_clipped} eigenvalue(s) below "
            f"tol = {tol:.3g} ({rtol:g} x the largest) are treated as zero ({why}). Recorded in the fit's "
            "diagnostics.",
            RankDeficiencyWarning,
            stacklevel=2,
        )
    return Spectral(vectors=vectors, values=values, tol=tol, n_clipped=n_clipped, min_raw=min_raw)


#: Rows of the factor taken at once where it is multiplied block by block (a few MB per block at m ~ 10,000).
_ROW_BLOCK = 2048


@dataclass(frozen=True, eq=False)
class ThinSpectral:
    """The thin eigendecomposition of ``K = F F'``, ``F = diag(row_scale) W coef`` (n x m, m < n), through ``F'F``.

    With ``F'F = V diag(s) V'`` (m x m), the kernel's eigenvectors of non-zero eigenvalue are ``U = F V s^-1/2``
    (n x r) and its other n - r eigenvalues are zero: their eigenspace, the null space, is the complement of U's
    columns. U is never formed: ``U'x = B'(F'x)`` and ``U z = F (B z)`` with ``B = V s^-1/2`` (m x r), so the
    decomposition holds W (the caller's array, not copied) and m x m numbers, never an n x n matrix.

    Attributes
    ----------
    factor : ndarray, shape (n, m)
        W over the individuals with a record (held, not copied).
    row_scale : ndarray, shape (n,) or None
        S's diagonal (the root total record weights), None for S = I.
    coef : float
        The scalar ``a`` in ``F = S W a`` (``1 / sqrt(denominator)`` for G = W W' / denominator).
    basis : ndarray, shape (m, r)
        ``B = V s^-1/2`` over the eigenvalues kept: ``U = F B``.
    values : ndarray, shape (r,)
        The kernel's non-zero eigenvalues ``s`` (those of ``F'F`` above ``tol``), ascending.
    tol, min_raw : float
        As for :class:`Spectral` (``min_raw`` is the smallest eigenvalue of ``F'F``).
    n_clipped : int
        The kernel's eigenvalues treated as zero, ``n - r`` (those of the null space among them).
    """

    factor: np.ndarray
    row_scale: np.ndarray | None
    coef: float
    basis: np.ndarray
    values: np.ndarray
    tol: float
    n_clipped: int
    min_raw: float

    @property
    def n(self) -> int:
        return int(self.factor.shape[0])

    @property
    def rank(self) -> int:
        return int(self.values.size)

    @property
    def mean_nonzero(self) -> float:
        return float(self.values.mean())

    @property
    def factor_rotation(self) -> np.ndarray:
        """``W' S U`` (m x r), from the eigenvectors alone: ``W'S U = F'F B / a = V s^1/2 / a``."""
        return self.basis * (self.values / self.coef)[None, :]

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        if self.row_scale is None:
            return x
        return self.row_scale[:, None] * x if x.ndim == 2 else self.row_scale * x

    def rotate(self, x: np.ndarray) -> np.ndarray:
        """``U' x`` (x a vector or columns over the n individuals): data into the kept eigenbasis."""
        return self.coef * (self.basis.T @ (self.factor.T @ self._scaled(x)))

    def expand(self, z: np.ndarray, *, scaled: bool = True) -> np.ndarray:
        """``U z``, or ``S^-1 U z = W a B z`` with ``scaled=False`` (genetic values from the rotated ones)."""
        out = self.factor @ (self.coef * (self.basis @ z))
        return self._scaled(out) if scaled else out

    def project_null(self, x: np.ndarray) -> np.ndarray:
        """``P x = x - U (U' x)``, the part of x in the null space (never the n x n projector)."""
        return x - self.expand(self.rotate(x))

    def row_squares(self, w: np.ndarray) -> np.ndarray:
        """``diag(S^-1 U diag(w) U' S^-1)`` for ``w >= 0`` (r,), W's rows a block at a time."""
        root = self.coef * np.sqrt(np.maximum(w, 0.0))
        out = np.zeros(self.n)
        # B's columns a block at a time: a scaled copy of the whole m x r basis was 512 MB at m = 8000 (the peak)
        for c0 in range(0, root.size, _ROW_BLOCK):
            C = self.basis[:, c0 : c0 + _ROW_BLOCK] * root[None, c0 : c0 + _ROW_BLOCK]
            for b0 in range(0, self.n, _ROW_BLOCK):
                block = self.factor[b0 : b0 + _ROW_BLOCK] @ C
                out[b0 : b0 + _ROW_BLOCK] += np.einsum("ij,ij->i", block, block)
        return out

    def vectors(self) -> np.ndarray:
        """U itself (n x r), for the few callers that need it whole (never on the Gaussian marginal path)."""
        return self._scaled(self.factor @ (self.coef * self.basis))

    def to_dict(self) -> dict:
        return {
            "n": self.n, "rank": self.rank, "n_clipped": self.n_clipped, "tol": self.tol, "min_raw": self.min_raw,
            "decomposition": "thin", "n_columns": int(self.factor.shape[1]),
        }  # fmt: skip


def gram(W: np.ndarray, row_scale: np.ndarray | None = None) -> np.ndarray:
    """``W' S^2 W`` (m x m): BLAS syrk for S = I; with weights, W's rows a block at a time (no scaled copy of W)."""
    if row_scale is None:
        return W.T @ W  # numpy spots the transpose and calls syrk
    out = np.zeros((W.shape[1], W.shape[1]))
    for b0 in range(0, W.shape[0], _ROW_BLOCK):
        block = row_scale[b0 : b0 + _ROW_BLOCK, None] * W[b0 : b0 + _ROW_BLOCK]
        out += block.T @ block
    return out


def thin_eigendecompose(
    W: np.ndarray, *, row_scale: np.ndarray | None = None, coef: float = 1.0, rtol: float = DEFAULT_EIGEN_RTOL,
    name: str = "G",
) -> ThinSpectral:  # fmt: skip
    """Decompose ``K = F F'``, ``F = diag(row_scale) W coef`` (n x m, m < n), through the m x m ``F'F``.

    The non-zero eigenvalues of ``F F'`` are those of ``F'F``; the same relative tolerance as
    :func:`eigendecompose` sets the small ones to zero. No RankDeficiencyWarning: fewer columns than rows is
    what this path is for, and the rank is recorded in the fit.

    Raises
    ------
    InputError
        If W is not finite, or F has no positive eigenvalue.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] >= W.shape[0]:
        raise InputError(f"the thin decomposition needs fewer columns than rows; {name}'s factor is {W.shape}.")
    A = gram(W, row_scale)
    A *= coef**2
    if not np.isfinite(A).all():
        raise InputError(f"{name}'s factor holds non-finite values; rebuild it from the genotypes.")
    # evr (MRRR): a workspace of O(m) beside A and the vectors, where evd's is 2 m^2 (1 GB at m = 8000)
    values, vectors = scipy.linalg.eigh(A, driver="evr", overwrite_a=True, check_finite=False)
    del A  # overwritten by LAPACK: free its m x m before the basis is scaled
    top = float(values[-1])
    if top <= 0:
        raise InputError(f"{name} has no positive eigenvalue: it carries no genetic signal.")
    tol = rtol * top
    first = int(np.searchsorted(values, tol))  # ascending: the kept eigenvalues are a suffix
    basis = vectors[:, first:]  # a view: B = V s^-1/2 scaled in place, no second m x m matrix
    basis /= np.sqrt(values[first:])[None, :]
    return ThinSpectral(
        factor=W, row_scale=row_scale, coef=float(coef), basis=basis, values=values[first:].copy(), tol=tol,
        n_clipped=int(W.shape[0] - basis.shape[1]), min_raw=float(values[0]),
    )  # fmt: skip
