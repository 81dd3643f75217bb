"""Kernels: the unit of a model. A kernel carries what differs between G-BLUP and M-BLUP.

A model is ``y = mu + X beta + sum_k g_k + e`` with one genetic term per kernel, ``g_k ~ N(0,
sigma2_k K_k)``. Two kinds of kernel give the two models of the lecture notes (S. M. Høj-Edwards and
P. Sørensen, "Linear Mixed Models used in Quantitative Genomics", 2022):

:class:`RelationshipKernel` (G-BLUP)
    ``K = G``, ``sigma2_k = sigma2_g``, ``c = 1``; genetic values are the effects.
:class:`MarkerKernel` (M-BLUP)
    ``K = W W'``, ``sigma2_k = sigma2_b``; the effects are the marker effects ``b`` with ``g = W b``,
    and ``c`` is the denominator of ``G = W W' / c`` (m for the standardised scalings, nu_p for
    ``centered``), so that ``sigma2_g_equiv = c sigma2_b`` is the genetic variance on G's scale (eq 7).

What a kernel supplies: its constant ``c``, BGLR's MSx (the scale of its default prior), ``K`` over
the individuals with a record, a factor ``L`` with ``L L' = K`` over every individual, its
diagonal, the cross-covariances that predict individuals without a record (and, for M-BLUP, the
marker effects), the factor of its latent (explicit) form and, for prediction after the fit, the
marker scaling that puts new genotypes on its scale. A kernel is *bound* to a model's individuals
(those with a record first, in record order, then the genotyped ones without) by :meth:`Kernel.bind`.

A new kernel (a pedigree A, a single-step H, a non-linear kernel) is one more subclass.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from .errors import InputError, preview
from .genotypes.relationship import Relationship, check_relationship
from .genotypes.scaling import GenotypeMatrix
from .linalg.spectral import RankDeficiencyWarning, Spectral, eigendecompose
from .names import MARKER, SIGMA2_B, SIGMA2_G

__all__ = ["Kernel", "MarkerKernel", "RelationshipKernel", "as_kernel", "kernel_ids"]


def _quiet_eigendecompose(K: np.ndarray, *, rtol: float, name: str) -> Spectral:
    """Eigendecompose a kernel whose rank deficiency is expected (a set with fewer markers than individuals)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        return eigendecompose(K, rtol=rtol, name=name)


def _positions(ids: np.ndarray, wanted, what: str) -> np.ndarray:
    position = {name: i for i, name in enumerate(ids)}
    absent = [i for i in wanted if i not in position]
    if absent:
        raise InputError(f"{len(absent)} IDs are not in {what}: {preview(absent, 10)}.")
    return np.array([position[i] for i in wanted], dtype=np.intp)


class Kernel:
    """One genetic term of a model (abstract: use :class:`RelationshipKernel` or :class:`MarkerKernel`).

    Attributes
    ----------
    name : str or None
        The marker set's name in a model with several kernels; None for a model's only kernel.
    variance_base : str
        ``"sigma2_g"`` or ``"sigma2_b"``: the variance that multiplies K.
    model_label : str
        ``"gblup"`` or ``"mblup"``, recorded in outputs.
    """

    variance_base: str
    model_label: str
    #: Whether the variance is on another scale than G's, so that ``sigma2_g_equiv = c sigma2_k`` is reported.
    reports_equivalent: bool = False
    #: The label of K in messages ("G", "W W'"), and what holds its individuals.
    label: str = "K"
    source_label: str = "the kernel"
    symbol: str = "K"

    def __init__(self, *, name: str | None = None):
        self.name = name
        self._p: np.ndarray | None = None  # rows of the source for the individuals with a record
        self._u: np.ndarray | None = None  # rows of the source for the genotyped individuals without one
        self.eigen_rtol = 1e-10
        self.spectrum: Spectral | None = None  # the eigendecomposition behind factor_all, when one was needed

    # --- identity ------------------------------------------------------------------------------
    @property
    def ids(self) -> np.ndarray:
        """IDs of the source matrix's individuals, in its order."""
        raise NotImplementedError

    @property
    def variance_name(self) -> str:
        return self.variance_base if self.name is None else f"{self.variance_base}_{self.name}"

    @property
    def c(self) -> float:
        """``c`` in ``K = c G`` and ``sigma2_g_equiv = c sigma2_k``."""
        raise NotImplementedError

    @property
    def n_markers(self) -> int | None:
        raise NotImplementedError

    @property
    def scaling(self) -> str:
        raise NotImplementedError

    @property
    def denominator(self) -> float | None:
        raise NotImplementedError

    @property
    def markers(self) -> np.ndarray | None:
        """Marker labels of the effects (M-BLUP), else None."""
        return None

    def describe(self) -> dict:
        """What summary.json records of this kernel."""
        return {
            "kind": self.model_label,
            "variance": self.variance_name,
            "n_markers": self.n_markers,
            "scaling": self.scaling,
            "g_denominator": self.denominator,
            "equivalence_factor": self.c if self.reports_equivalent else None,
        }

    # --- binding ------------------------------------------------------------------------------
    def bind(self, phenotyped, unphenotyped, *, name: str | None = None, eigen_rtol: float = 1e-10) -> Kernel:
        """A copy of this kernel on a model's individuals: those with a record first, then the rest."""
        bound = copy.copy(self)
        bound.name = name if name is not None else self.name
        where = self.source_label if self.name is None else f"{self.source_label} of set {self.name!r}"
        bound._p = _positions(self.ids, phenotyped, where)
        bound._u = _positions(self.ids, unphenotyped, where)
        bound.eigen_rtol = eigen_rtol
        bound.spectrum = None
        bound._cache = {}
        return bound

    @property
    def n(self) -> int:
        """Individuals with a record."""
        return int(self._p.size)

    @property
    def every(self) -> np.ndarray:
        """Source rows of every individual of the model, those with a record first."""
        return np.concatenate([self._p, self._u])

    # --- what a subclass supplies ---------------------------------------------------------------
    def matrix(self) -> np.ndarray:
        """K over the individuals with a record (n x n), in record order."""
        raise NotImplementedError

    def relationship_matrix(self) -> np.ndarray:
        """G = K / c over the individuals with a record: the scale on which eigenvalues are reported."""
        return self.matrix()

    def msx(self, rank: int, spectrum: Spectral | None = None) -> float:
        """BGLR's MSx, the scale of the kernel in its default prior.

        ``rank`` is the rank of K as the model decomposed it, and ``spectrum`` K's own eigendecomposition
        over the individuals with a record where the model has it.
        """
        raise NotImplementedError

    def diagonal(self) -> np.ndarray:
        """``K_ii`` for every individual (records first)."""
        raise NotImplementedError

    def targets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{name: (M, v)}``: vectors T with ``Cov(T, y) = sigma2_k M`` and prior variance ``sigma2_k v``.

        Individuals without a record (``"unphenotyped"``) and, for M-BLUP, the marker effects (``"markers"``).
        """
        raise NotImplementedError

    def factor_all(self) -> np.ndarray:
        """``L`` over every individual (records first) with ``L L' = K``, computed once per binding."""
        raise NotImplementedError

    def unphenotyped_matrix(self) -> np.ndarray:
        """K over the genotyped individuals without a record (n_u x n_u): joint draws of their genetic values."""
        raise NotImplementedError

    def thin_factor(self) -> tuple[np.ndarray, float] | None:
        """``(W, a)`` with ``G = K / c = a^2 W W'`` over the individuals with a record, or None without such a W.

        The factor of the low-rank path (:class:`~bayesblup.linalg.spectral.ThinSpectral`), taken when W has fewer
        columns than rows.
        """
        return None

    def thin_targets(self) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        """:meth:`targets` in marker space: ``{name: (R, v)}`` with ``M = R W'`` (W: :meth:`thin_factor`'s).

        ``R`` None stands for the identity (marker effects, ``M = W'``): no m x m identity is formed.
        """
        raise NotImplementedError

    def effects_factor(self) -> np.ndarray:
        """The factor whose coefficients are this kernel's effects: W for M-BLUP (so they are b), else L."""
        return self.factor_all()

    def latent_factor(self, spectrum: Spectral | None = None) -> tuple[str, np.ndarray, np.ndarray]:
        """``(dim, coordinate, L)`` of the latent form: ``g = sqrt(sigma2_k) L z``, ``z ~ N(0, I)`` over ``dim``."""
        raise NotImplementedError

    def training_scale(self, training):
        """``(MarkerScaling, W of the individuals with a record, divisor)``.

        New genotypes ``W_new`` on that scale have ``Cov(g_new, y) = sigma2_k W_new W' / divisor``.
        """
        raise NotImplementedError


class _MarkerRows:
    """W's rows of a kernel built on a GenotypeMatrix (``self.genotypes``), cached per binding."""

    genotypes: GenotypeMatrix

    @property
    def W(self) -> np.ndarray:
        """W of the individuals with a record, in record order (the caller's array itself when that is all of it)."""
        if "W" not in self._cache:
            values = np.asarray(self.genotypes.values, dtype=np.float64)
            # At n = 5000, m = 50,000 a copy would be 2 GB: no copy when every individual has a record, in order.
            same = np.array_equal(self._p, np.arange(values.shape[0]))
            self._cache["W"] = values if same else values[self._p]
        return self._cache["W"]

    @property
    def W_unphenotyped(self) -> np.ndarray:
        if "Wu" not in self._cache:
            m = self.genotypes.values.shape[1]
            self._cache["Wu"] = np.asarray(self.genotypes.values[self._u], dtype=np.float64).reshape(self._u.size, m)
        return self._cache["Wu"]

    @property
    def W_all(self) -> np.ndarray:
        """W of every individual, records first."""
        if "W_all" not in self._cache:
            Wu = self.W_unphenotyped
            self._cache["W_all"] = np.ascontiguousarray(np.vstack([self.W, Wu]) if Wu.shape[0] else self.W)
        return self._cache["W_all"]

    def _row_squares(self) -> tuple[np.ndarray, np.ndarray]:
        """``diag(W W')`` of the individuals with a record and of the others (no n x m temporary)."""
        return tuple(np.einsum("ij,ij->i", W, W) for W in (self.W, self.W_unphenotyped))


class RelationshipKernel(_MarkerRows, Kernel):
    """G-BLUP's kernel: a relationship matrix G (from :func:`bayesblup.genomic_relationship`, a file, or yours).

    Or G's factor: a :class:`~bayesblup.GenotypeMatrix` W (:func:`bayesblup.genotype_matrix`) stands for
    ``G = W W' / denominator`` (its scaling's), the same G as :func:`bayesblup.genomic_relationship` builds from
    the same genotypes. The model is G-BLUP all the same (``sigma2_g``, h2, G's scale); G itself is formed only if
    a path asks for it (``relationship``), and the low-rank path (fewer markers than individuals) never does.
    """

    variance_base = SIGMA2_G
    model_label = "gblup"
    label = "G"
    source_label = "the relationship matrix"
    symbol = "G"

    def __init__(self, relationship: Relationship | GenotypeMatrix, *, name: str | None = None):
        super().__init__(name=name)
        # shared by the bound copies (copy.copy): G built from W on request once, not once per binding
        self._shared: dict = {}
        if isinstance(relationship, GenotypeMatrix):
            self.genotypes = relationship
            self._relationship = None
            return
        if not isinstance(relationship, Relationship):
            raise InputError(
                "relationship must be a bayesblup.Relationship (e.g. from bayesblup.genomic_relationship, or "
                "bayesblup.Relationship.from_matrix(G, ids)), or the GenotypeMatrix W of G = WW'/denominator (from "
                f"bayesblup.genotype_matrix); got {type(relationship).__name__}."
            )
        n = relationship.n_individuals
        where = f"relationship matrix ({relationship.scaling}, {n} x {n})"
        if name is not None:
            where = f"relationship matrix of set {name!r}"
        check_relationship(relationship.matrix, relationship.ids, where)
        self.genotypes = None
        self._relationship = relationship

    @property
    def relationship(self) -> Relationship:
        """G with its IDs; built from W on first request where the kernel was given W (n x n: dense paths only)."""
        if self._relationship is not None:
            return self._relationship
        if "G" not in self._shared:
            W = np.asarray(self.genotypes.values, dtype=np.float64)
            G = W @ W.T
            G /= self.denominator
            self._shared["G"] = Relationship(
                matrix=G, ids=self.genotypes.ids, scaling=self.scaling, n_markers=self.n_markers,
                denominator=self.denominator, marker_scaling=self.genotypes.scaling,
            )  # fmt: skip
        return self._shared["G"]

    @property
    def from_factor(self) -> bool:
        """Whether the kernel was given W (G's factor) rather than G."""
        return self.genotypes is not None

    @property
    def ids(self) -> np.ndarray:
        return self.genotypes.ids if self.from_factor else self.relationship.ids

    @property
    def c(self) -> float:
        return 1.0

    @property
    def n_markers(self) -> int | None:
        return int(self.genotypes.values.shape[1]) if self.from_factor else self.relationship.n_markers

    @property
    def scaling(self) -> str:
        return self.genotypes.scaling.scaling if self.from_factor else self.relationship.scaling

    @property
    def denominator(self) -> float | None:
        return float(self.genotypes.scaling.denominator) if self.from_factor else self.relationship.denominator

    def matrix(self) -> np.ndarray:
        if "K" not in self._cache:
            if self.from_factor:  # G over the records only: n x n, asked for by a dense path
                K = self.W @ self.W.T
                K /= self.denominator
                self._cache["K"] = K
            else:
                self._cache["K"] = np.asarray(self.relationship.matrix[np.ix_(self._p, self._p)], dtype=np.float64)
        return self._cache["K"]

    def thin_factor(self) -> tuple[np.ndarray, float] | None:
        return (self.W, 1.0 / np.sqrt(self.denominator)) if self.from_factor else None

    def thin_targets(self) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        if not self._u.size:
            return {}
        _, squares = self._row_squares()
        return {"unphenotyped": (self.W_unphenotyped / self.denominator, squares / self.denominator)}

    def msx(self, rank: int, spectrum: Spectral | None = None) -> float:
        """BGLR RKHS's ``mean(d)``: the mean non-zero eigenvalue of G over the individuals with a record.

        From G's own eigenvalues where the model has them, else ``trace(G) / rank(G)`` (the same number:
        a rescaled kernel ``S G S`` has the rank of G since S is invertible).
        """
        if spectrum is not None:
            return spectrum.mean_nonzero
        trace = self._row_squares()[0].sum() / self.denominator if self.from_factor else np.trace(self.matrix())
        return float(trace) / max(rank, 1)

    def diagonal(self) -> np.ndarray:
        if self.from_factor:
            return np.concatenate(self._row_squares()) / self.denominator
        return np.diag(self.relationship.matrix)[self.every]

    def targets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if not self._u.size:
            return {}
        if self.from_factor:  # G_21 = W_u W' / denominator: n_u x n, never G
            Wu = self.W_unphenotyped
            return {"unphenotyped": (Wu @ self.W.T / self.denominator, self._row_squares()[1] / self.denominator)}
        G = self.relationship.matrix
        return {"unphenotyped": (G[np.ix_(self._u, self._p)], np.diag(G)[self._u])}

    def unphenotyped_matrix(self) -> np.ndarray:
        if self.from_factor:
            Wu = self.W_unphenotyped
            return Wu @ Wu.T / self.denominator
        return np.asarray(self.relationship.matrix[np.ix_(self._u, self._u)], dtype=np.float64)

    def _thin_all(self) -> bool:
        """W over every individual has fewer columns than rows: it is a thinner factor than G's eigen-factor."""
        return self.from_factor and self.n_markers < self.every.size

    def factor_all(self) -> np.ndarray:
        if "L" not in self._cache and self._thin_all():
            self._cache["L"] = self.W_all / np.sqrt(self.denominator)
        if "L" not in self._cache:
            every = self.every
            G = np.asarray(self.relationship.matrix[np.ix_(every, every)], dtype=np.float64)
            where = "G" if self.name is None else f"G of set {self.name!r}"
            sp = self.spectrum = _quiet_eigendecompose(G, rtol=self.eigen_rtol, name=where)
            keep = sp.values > 0
            self._cache["L"] = sp.vectors[:, keep] * np.sqrt(sp.values[keep])
        return self._cache["L"]

    def latent_factor(self, spectrum: Spectral | None = None):
        """The eigen-factor of G over every individual (``spectrum``: G's own, when the model has it).

        Given W with fewer markers than individuals, ``W / sqrt(denominator)`` itself (no decomposition).
        """
        if self._thin_all():
            dim = "factor" if self.name is None else f"factor_{self.name}"
            return dim, np.arange(self.n_markers), self.factor_all()
        if spectrum is not None:
            keep = spectrum.values > 0
            L = spectrum.vectors[:, keep] * np.sqrt(spectrum.values[keep])
        else:
            L = self.factor_all()
        dim = "factor" if self.name is None else f"factor_{self.name}"
        return dim, np.arange(L.shape[1]), L

    def training_scale(self, training):
        scaling = self.genotypes.scaling if self.from_factor else self.relationship.marker_scaling
        if scaling is None:
            raise InputError(
                "this G carries no marker scaling (it was read from a file), so genotypes cannot be put on its "
                "scale: build G with bayesblup.genomic_relationship, or include the new individuals in G and fit "
                "them without records."
            )
        if training is None:
            raise InputError("G-BLUP needs the training genotypes here: pass training=genotypes (after QC).")
        rows = _positions(training.ids, self.ids[self._p], "the training genotypes (fitted individuals)")
        W = scaling.transform_block(scaling.align(training)[rows], slice(None))
        return scaling, W, scaling.denominator


class MarkerKernel(_MarkerRows, Kernel):
    """M-BLUP's kernel: marker effects on W (from :func:`bayesblup.genotype_matrix`), ``K = W W'``."""

    variance_base = SIGMA2_B
    model_label = "mblup"
    reports_equivalent = True
    label = "W W'"
    source_label = "the marker matrix W"
    symbol = "W"

    def __init__(self, genotypes: GenotypeMatrix, *, name: str | None = None):
        if not isinstance(genotypes, GenotypeMatrix):
            raise InputError("MBLUP needs W as a GenotypeMatrix: bayesblup.genotype_matrix(genotypes, scaling=...).")
        super().__init__(name=name)
        self.genotypes = genotypes

    @property
    def ids(self) -> np.ndarray:
        return self.genotypes.ids

    @property
    def c(self) -> float:
        return float(self.genotypes.scaling.denominator)

    @property
    def n_markers(self) -> int:
        return int(self.genotypes.values.shape[1])

    @property
    def scaling(self) -> str:
        return self.genotypes.scaling.scaling

    @property
    def denominator(self) -> float:
        return self.c

    @property
    def markers(self) -> np.ndarray:
        return self.genotypes.markers

    def matrix(self) -> np.ndarray:
        if "K" not in self._cache:
            self._cache["K"] = self.W @ self.W.T  # BLAS syrk (numpy spots the transpose)
        return self._cache["K"]

    def relationship_matrix(self) -> np.ndarray:
        if "G" not in self._cache:
            K = self._cache.get("K")
            # W W' through BLAS syrk, then G = W W' / c in place: one n x n matrix.
            G = self.W @ self.W.T if K is None else K.copy()
            G /= self.c
            self._cache["G"] = G
        return self._cache["G"]

    def msx(self, rank: int = 0, spectrum: Spectral | None = None) -> float:
        """Sum of the column variances of W (divisor n), BGLR BRR's ``sum(x2)/n - sum(colMeans^2)``."""
        if "msx" not in self._cache:
            W = self.W
            n = W.shape[0]
            self._cache["msx"] = float((np.einsum("ij,ij->j", W, W) / n - W.mean(0) ** 2).sum())  # no n x m temporary
        return self._cache["msx"]

    def diagonal(self) -> np.ndarray:
        return np.concatenate(self._row_squares())

    def targets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {"markers": (self.W.T, np.ones(self.n_markers))}
        if self.W_unphenotyped.shape[0]:
            Wu = self.W_unphenotyped
            out["unphenotyped"] = (Wu @ self.W.T, (Wu**2).sum(1))  # Cov(W_u b, y) = sigma2_b W_u W'
        return out

    def unphenotyped_matrix(self) -> np.ndarray:
        Wu = self.W_unphenotyped
        return Wu @ Wu.T

    def thin_factor(self) -> tuple[np.ndarray, float] | None:
        return self.W, 1.0 / np.sqrt(self.c)

    def thin_targets(self) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        out = {"markers": (None, np.ones(self.n_markers))}
        if self.W_unphenotyped.shape[0]:
            out["unphenotyped"] = (self.W_unphenotyped, self._row_squares()[1])
        return out

    def factor_all(self) -> np.ndarray:
        if "L" not in self._cache:
            W = self.W_all
            if W.shape[1] <= W.shape[0]:
                self._cache["L"] = W  # b itself is the factor's coefficient vector
            else:
                # More markers than individuals: the same kernel from an n x n eigendecomposition of W W'.
                where = "W W'" if self.name is None else f"W W' of set {self.name!r}"
                sp = self.spectrum = _quiet_eigendecompose(W @ W.T, rtol=self.eigen_rtol, name=where)
                keep = sp.values > 0
                self._cache["L"] = sp.vectors[:, keep] * np.sqrt(sp.values[keep])
        return self._cache["L"]

    def effects_factor(self) -> np.ndarray:
        return self.W_all

    def latent_factor(self, spectrum: Spectral | None = None):
        return MARKER, self.markers.astype(str), self.W_all

    def training_scale(self, training):
        return self.genotypes.scaling, self.W, 1.0


def as_kernel(source, *, name: str | None = None) -> Kernel:
    """A kernel from a Relationship (G-BLUP), a GenotypeMatrix (M-BLUP) or a Kernel."""
    if isinstance(source, Kernel):
        return source if name is None or source.name == name else _renamed(source, name)
    if isinstance(source, Relationship):
        return RelationshipKernel(source, name=name)
    if isinstance(source, GenotypeMatrix):
        return MarkerKernel(source, name=name)
    raise InputError(
        "a kernel is a bayesblup.Relationship (G, for G-BLUP) or a GenotypeMatrix (W, for M-BLUP); got "
        f"{type(source).__name__}."
    )


def _renamed(kernel: Kernel, name: str) -> Kernel:
    out = copy.copy(kernel)
    out.name = name
    return out


def kernel_ids(kernels: list[Kernel]) -> np.ndarray:
    """The individual IDs every kernel's matrix shares, in the same order; refused otherwise."""
    ids = kernels[0].ids
    for kernel in kernels[1:]:
        if kernel.ids.size != ids.size or (kernel.ids != ids).any():
            raise InputError(
                f"{kernel.source_label} of set {kernel.name!r} has other individuals (or another order) than the first "
                f"set's; build every set's {kernel.symbol} from the same genotypes."
            )
    return ids
