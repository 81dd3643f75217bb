"""The data of the marginal form, computed once per model, as plain typed objects.

The likelihood (:mod:`bayesblup.models.model`) and the posterior of the genetic values
(:mod:`bayesblup.inference.posterior`) both read these, and nothing else of a model.

:class:`SpectralData`
    One kernel: the records (or the individuals' weighted means) in the eigenbasis of ``S K S``.
:class:`KernelsData`
    Several kernels: the scaled means, the noise, and either the background's eigenbasis with the
    small kernels' factors (the Woodbury path) or the kernels themselves (the dense path).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..linalg.spectral import ThinSpectral
from ..linalg.woodbury import Resolvent, Surface
from ..phenotypes import Records

__all__ = ["KernelsData", "MarkerRows", "SpectralData", "add_within_potential", "within_terms"]


def within_terms(rec: Records, *, scaled: bool):
    """What per-individual weighted means leave out of the records' log-likelihood, or None.

    Returns ``(a, b, C, n_extra, constant)``: the within-individual scatter ``a - 2 b'beta + beta' C
    beta`` (b and C None without covariates), the number of records beyond one per individual, and
    the constant of the record terms. ``scaled``: whether the means enter as ``S ybar`` with ``S =
    diag(sqrt(W_i))`` (then the rotation's Jacobian is folded into the constant).
    """
    if rec.is_collapsible:
        return None
    w = rec.record_weights
    W = rec.total_weight
    ybar = rec.individual_means(rec.y)
    yc = rec.y - ybar[rec.record_index]
    a = float(w @ yc**2)
    b = C = None
    if rec.X is not None:
        Xc = rec.X - rec.individual_means(rec.X)[rec.record_index]
        b, C = Xc.T @ (w * yc), Xc.T @ (w[:, None] * Xc)
    # log N(y) = log N(ybar) + within terms; the rotation by S adds sum log s_i = sum log W_i / 2
    # to log N(ybar), which cancels the within terms' -sum log W_i / 2 where S is used.
    constant = 0.5 * float(np.log(w).sum()) - (0.0 if scaled else 0.5 * float(np.log(W).sum()))
    return a, b, C, rec.n_records - rec.n_individuals, constant


def add_within_potential(within, beta, sigma2_e) -> None:
    """Add the within-individual record terms (see :func:`within_terms`) as a ``pm.Potential``."""
    import pymc as pm
    import pytensor.tensor as pt

    a, b, C, n_extra, constant = within
    scatter = a if beta is None else a - 2 * pt.dot(b, beta) + pt.dot(beta, pt.dot(C, beta))
    pm.Potential(
        "within_individual",
        constant - 0.5 * n_extra * pt.log(2 * np.pi * sigma2_e) - scatter / (2 * sigma2_e),
    )


def _means(rec: Records):
    """Per-individual weighted means of y and X where records repeat or are weighted, else the records."""
    collapse = not rec.is_collapsible
    ybar = rec.individual_means(rec.y) if collapse else rec.y
    Xbar = None if rec.X is None else (rec.individual_means(rec.X) if collapse else rec.X)
    return ybar, Xbar


@dataclass
class SpectralData:
    """One kernel's marginal form in the eigenbasis of ``S K S``.

    On the low-rank path (``thin`` set: W with fewer columns than rows, :class:`~bayesblup.linalg.spectral.
    ThinSpectral`) the components are the r eigenvectors of non-zero eigenvalue, U is held in factored form
    (``vectors`` None), and the n - r dimensions of the null space, where every component has eigenvalue 0
    and variance ``nu``, enter through ``null_dim`` and ``null_gram`` alone: with ``P = I - U U'`` and ``c =
    (1, -mu, -beta)``, their log-likelihood is ``-(n - r)/2 log(2 pi nu) - c' null_gram c / (2 nu)``
    (:meth:`null_terms`). Over the r components plus that, the log-likelihood is the dense one exactly.

    Attributes
    ----------
    vectors : ndarray (n, n) or None
        U (None on the low-rank path: ``thin`` holds it in factored form).
    lam : ndarray (n,) or (r,)
        Eigenvalues of the kernel ``c S G S`` (``K = c G``); on the low-rank path its r non-zero ones.
    scale : ndarray (n,) or None
        ``sqrt(W_i)``; None where the kernel is not rescaled (S = I).
    y, one, X : ndarray
        ``U' S ybar``, ``U' S 1`` and ``U' S Xbar`` (None without covariates).
    noise : (float, float)
        ``(a, b)`` with ``nu = a sigma2_e + b sigma2_pe`` added to ``sigma2_k lam_k`` in every component.
    excess : ndarray (n,) or None
        ``Delta_i``, the residual-variance excess of each individual over the best-recorded one, in
        units of sigma2_e (``pe_path == "augmented"``).
    within : tuple or None
        See :func:`within_terms`.
    permanent_environment : bool
        Whether the model has a permanent-environment effect (then sigma2_pe is needed).
    thin : ThinSpectral or None
        The low-rank path's factored eigenbasis; None on the full (dense) path.
    null_dim : int
        ``n - r``, the dimension of the null space left out of the components (0 on the full path, where
        the zero eigenvalues are components like any other).
    null_gram : ndarray (2 + q, 2 + q) or None
        The Gram matrix ``C'P'PC`` of the null-space parts of ``C = [S ybar, S 1, S Xbar]`` (in that order),
        computed as ``C - U (U'C)``, never with an n x n P; None on the full path.
    """

    vectors: np.ndarray | None
    lam: np.ndarray
    scale: np.ndarray | None
    y: np.ndarray
    one: np.ndarray
    X: np.ndarray | None
    noise: tuple[float, float]
    excess: np.ndarray | None
    within: tuple | None
    permanent_environment: bool
    thin: ThinSpectral | None = None
    null_dim: int = 0
    null_gram: np.ndarray | None = None

    @classmethod
    def build(cls, rec: Records, spectral, *, c: float, scale, pe_path: str) -> SpectralData:
        s = np.ones(rec.n_individuals) if scale is None else scale
        ybar, Xbar = _means(rec)
        W = rec.total_weight
        noise = {"none": (1.0, 0.0), "diagonal": (1.0 / W[0], 1.0), "augmented": (1.0 / W.max(), 1.0)}[pe_path]
        thin = isinstance(spectral, ThinSpectral)
        if thin and pe_path == "augmented":
            raise ValueError("the low-rank path has no explicit residual excess (pe_path 'augmented' is dense).")
        columns = [s * ybar, s] + ([] if Xbar is None else list((s[:, None] * Xbar).T))
        C = np.column_stack(columns)
        rotated = spectral.rotate(C)  # U' [S ybar, S 1, S Xbar] in one pass over U (or over W)
        null_gram = None
        if thin:  # the null space's part of each column, P C = C - U (U'C): its Gram matrix is all the likelihood needs
            PC = C - spectral.expand(rotated)
            null_gram = PC.T @ PC
        return cls(
            vectors=None if thin else spectral.vectors,
            lam=c * spectral.values,
            scale=scale,
            y=rotated[:, 0].copy(),
            one=rotated[:, 1].copy(),
            X=None if Xbar is None else rotated[:, 2:].copy(),
            noise=noise,
            excess=1.0 / W - 1.0 / W.max() if pe_path == "augmented" else None,
            within=within_terms(rec, scaled=scale is not None),
            permanent_environment=pe_path != "none",
            thin=spectral if thin else None,
            null_dim=spectral.n - spectral.rank if thin else 0,
            null_gram=null_gram,
        )

    @property
    def n(self) -> int:
        """Individuals with a record (the components, plus the null space on the low-rank path)."""
        return int(self.lam.size + self.null_dim)

    def null_terms(self, mu, beta, noise) -> np.ndarray | float:
        """The null space's log-likelihood: ``-(n - r)/2 log(2 pi nu) - c' null_gram c / (2 nu)``, c = (1, -mu, -beta).

        Numpy, broadcast over arrays of parameter values: ``mu`` and ``noise`` (``nu = a sigma2_e + b sigma2_pe``,
        :attr:`noise`) of one shape, ``beta`` of that shape plus (q,) (None without covariates). 0 on the full
        path, where the null space is among the components. Added to the components' Gaussian log-densities it
        gives the log-likelihood of the (scaled) means exactly.
        """
        if not self.null_dim:
            return np.zeros(np.shape(mu)) if np.ndim(mu) else 0.0
        mu, noise = np.asarray(mu, dtype=np.float64), np.asarray(noise, dtype=np.float64)
        shape = np.broadcast_shapes(mu.shape, noise.shape)
        parts = [np.ones((*shape, 1)), -np.broadcast_to(mu, shape)[..., None]]
        if beta is not None:
            beta = np.asarray(beta, dtype=np.float64)
            parts.append(-np.broadcast_to(beta, (*shape, beta.shape[-1])))
        c = np.concatenate(parts, axis=-1)
        quad = np.einsum("...i,ij,...j->...", c, self.null_gram, c)
        return -0.5 * self.null_dim * np.log(2 * np.pi * noise) - quad / (2 * noise)

    def rotate_scaled(self, x: np.ndarray) -> np.ndarray:
        """``U' S x`` for a vector or columns (the rotation of an individual-level offset)."""
        s = np.ones(self.n) if self.scale is None else self.scale
        sx = s[:, None] * x if x.ndim == 2 else s * x
        return self.thin.rotate(sx) if self.thin is not None else self.vectors.T @ sx

    def genetic_dot(self, z: np.ndarray) -> np.ndarray:
        """``S^-1 U z`` (z over the components: a vector or columns): genetic values from rotated ones."""
        if self.thin is not None:
            return self.thin.expand(z, scaled=False)
        inv = np.ones(self.n) if self.scale is None else 1.0 / self.scale
        return (inv[:, None] if z.ndim == 2 else inv) * (self.vectors @ z)

    def genetic_row_squares(self, w: np.ndarray) -> np.ndarray:
        """``diag(S^-1 U diag(w) U' S^-1)``: the conditional variances of g from per-component ones (w >= 0)."""
        if self.thin is not None:
            return self.thin.row_squares(w)
        inv = np.ones(self.n) if self.scale is None else 1.0 / self.scale
        return inv**2 * ((self.vectors**2) @ w)

    def target_rotation(self, M) -> np.ndarray:
        """``A = M S U`` (rows: the target's elements; columns: components) on the low-rank path.

        ``M`` is a matrix over the individuals with a record, or ``(R, None)``-style marker-space rows ``R`` given
        as :class:`MarkerRows` (``M = R W'``, R None for the identity), which never touch n: ``A = R W'S U``.
        """
        thin = self.thin
        if isinstance(M, MarkerRows):
            WSU = thin.factor_rotation
            return WSU if M.rows is None else M.rows @ WSU
        s = np.ones(self.n) if self.scale is None else self.scale
        # M S U = (M S^2 W) a B: n_t x n times n x m, then m x r
        return thin.coef * (((np.asarray(M, dtype=np.float64) * (s**2)[None, :]) @ thin.factor) @ thin.basis)


@dataclass(frozen=True)
class MarkerRows:
    """A target's ``M`` in marker space, ``M = rows W'`` (W the kernel's factor over the records; ``rows`` None: W').

    The low-rank path's form of the kernel's targets (:meth:`bayesblup.kernels.Kernel.thin_targets`).
    """

    rows: np.ndarray | None


@dataclass
class KernelsData:
    """Several kernels' marginal form: scaled means, noise, and the path's arrays.

    Attributes
    ----------
    path : {"woodbury", "dense"}
        How ``V = sum_k sigma2_k S K_k S + diag(noise)`` is solved.
    names : list of str
        The kernels (sets), in model order.
    y, one, X : ndarray
        ``S ybar``, ``S 1`` and ``S Xbar`` (not rotated).
    scale : ndarray (n,)
        ``S``'s diagonal (ones where the kernels are not rescaled).
    noise : (ndarray, float)
        ``(a, b)``: the noise of each scaled mean is ``a_i sigma2_e + b sigma2_pe``.
    within : tuple or None
        See :func:`within_terms`.
    effects : dict of str to ndarray
        Each kernel's effects factor over every individual (W for marker kernels, so that its
        coefficients are b; L with L L' = K for a relationship).
    marker_effects : list of str
        The kernels whose effects are marker effects.
    kernels : dict of str to ndarray
        ``S K_k S`` over the individuals with a record (dense path only).
    background, low, U, lam, A, blocks, resolvent
        The Woodbury path: the background kernel, the small ones, the background's eigenbasis and
        eigenvalues, ``A = U' S [L_low...]``, the small kernels' widths and the shared :class:`Resolvent`.
    """

    path: str
    names: list[str]
    y: np.ndarray
    one: np.ndarray
    X: np.ndarray | None
    scale: np.ndarray
    noise: tuple
    within: tuple | None
    effects: dict[str, np.ndarray]
    marker_effects: list[str]
    kernels: dict[str, np.ndarray] = field(default_factory=dict)
    background: str | None = None
    low: list[str] = field(default_factory=list)
    U: np.ndarray | None = None
    lam: np.ndarray | None = None
    A: np.ndarray | None = None
    blocks: list[int] = field(default_factory=list)
    resolvent: Resolvent | None = None
    _surface: Surface | None = None

    @property
    def n(self) -> int:
        return int(self.y.size)

    @property
    def rotated(self) -> dict[str, np.ndarray | None]:
        """``U' y``, ``U' 1``, ``U' X`` (Woodbury path)."""
        U = self.U
        return {"y": U.T @ self.y, "one": U.T @ self.one, "X": None if self.X is None else U.T @ self.X}

    @property
    def surface(self) -> Surface:
        """The interpolated R x R work of a single small kernel on the Woodbury path (built lazily, kept)."""
        if self._surface is None:
            rot = self.rotated
            columns = [rot["y"], rot["one"]] + ([] if rot["X"] is None else list(rot["X"].T))
            self._surface = Surface(self.resolvent, self.lam, self.A, np.column_stack(columns))
        return self._surface


def kernels_means(rec: Records, scale: np.ndarray | None, permanent_environment: bool):
    """``(S ybar, S 1, S Xbar, s, (a, b))`` for several kernels."""
    s = np.ones(rec.n_individuals) if scale is None else scale
    ybar, Xbar = _means(rec)
    W = rec.total_weight
    noise = (np.ones(rec.n_individuals), 0.0) if not permanent_environment else (1.0 / W, 1.0)
    return s * ybar, s.copy(), None if Xbar is None else s[:, None] * Xbar, s, noise


@dataclass
class MultiTraitData:
    """One kernel's multi-trait marginal form in the eigenbasis of K (``K = U diag(lam) U'``).

    In that basis the n components are independent t-variate normals, ``y*_k ~ N(M*_k, lam_k Sigma_k +
    Sigma_e)``. A missing record is an unknown of the model (drawn exactly given the variances, as the
    missing data of a Gibbs sampler): ``Y = Y0 + scatter(y_missing)`` with Y0 holding the trait's mean
    where a record is missing, so ``U'Y = Y0* + sum over missing entries of U[row, :]' y_missing``.

    Attributes
    ----------
    vectors : ndarray (n, n)
        U.
    lam : ndarray (n,)
        Eigenvalues of K (``c`` times those of G).
    Y : ndarray (n, t)
        ``U' Y0``.
    one, X : ndarray
        ``U' 1`` and ``U' X`` (None without covariates).
    missing_rows, missing_traits : ndarray of int
        Where the records are missing (individual, trait), in the order of the sampled unknowns.
    fill : ndarray (t,)
        The value Y0 holds at a missing record of each trait (its observed mean).
    scale : ndarray (t,)
        Each trait's observed sd: the unit of the sampled unknowns (``y_missing = fill + scale z``).
    records : ndarray (n, t)
        The records as given (NaN where missing), for the exact draws of the missing ones.
    covariates : ndarray (n, q) or None
        X as given.
    traits : tuple of str
    """

    vectors: np.ndarray
    lam: np.ndarray
    Y: np.ndarray
    one: np.ndarray
    X: np.ndarray | None
    missing_rows: np.ndarray
    missing_traits: np.ndarray
    fill: np.ndarray
    scale: np.ndarray
    records: np.ndarray
    covariates: np.ndarray | None
    traits: tuple

    @classmethod
    def build(cls, rec, spectral, *, c: float) -> MultiTraitData:
        Y0 = rec.Y.copy()
        rows, traits = np.nonzero(np.isnan(Y0))
        fill = np.nanmean(rec.Y, axis=0)
        Y0[rows, traits] = fill[traits]
        return cls(
            vectors=spectral.vectors,
            lam=c * spectral.values,
            Y=spectral.rotate(Y0),
            one=spectral.rotate(np.ones(rec.n_individuals)),
            X=None if rec.X is None else spectral.rotate(rec.X),
            missing_rows=rows,
            missing_traits=traits,
            fill=fill,
            scale=np.nanstd(rec.Y, axis=0, ddof=1),
            records=rec.Y,
            covariates=rec.X,
            traits=tuple(rec.traits),
        )

    @property
    def n_traits(self) -> int:
        return len(self.traits)

    @functools.cached_property
    def incomplete(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, row_index, U_rows)``: where the incomplete individuals are, and U's rows of them.

        The individuals with a missing record, each missing record's position among them, and U's rows of
        those individuals (r x n), computed once: the likelihood, the Gibbs draw and the genetic values all
        rotate the missing records with it.
        """
        rows, row_index = np.unique(self.missing_rows, return_inverse=True)
        return rows, row_index.ravel(), np.ascontiguousarray(self.vectors[rows])

    def missing_shift(self, missing: np.ndarray) -> np.ndarray:
        """``U' scatter(missing - fill)`` for draws of the missing records (D, n_missing): (D, n, t)."""
        _, row_index, U_rows = self.incomplete
        D, t = missing.shape[0], self.n_traits
        scattered = np.zeros((U_rows.shape[0], D, t))
        scattered[row_index, :, self.missing_traits] = (missing - self.fill[self.missing_traits]).T
        return (U_rows.T @ scattered.reshape(-1, D * t)).reshape(-1, D, t).transpose(1, 0, 2)

    def rotated_residuals(self, mu: np.ndarray, B: np.ndarray | None, missing: np.ndarray | None) -> np.ndarray:
        """``U'(Y - 1 mu' - X B)`` for a chunk of draws: (draws, n, t); ``missing`` (draws, n_missing) completes Y."""
        mu = np.atleast_2d(mu)
        R = self.Y[None, :, :] - self.one[None, :, None] * mu[:, None, :]
        if self.X is not None:
            R = R - np.einsum("kq,dqt->dkt", self.X, B)
        if missing is not None and self.missing_rows.size:
            R += self.missing_shift(missing)
        return R
