"""Genomic relationship matrices: G = WW'/m and VanRaden's G* = W*W*'/nu_p.

G is accumulated one block of markers at a time with BLAS ``syrk`` (a symmetric rank-k update
that computes one triangle only), into a single n x n buffer updated in place. Peak memory is
therefore one n x n matrix plus one n x block slab, on top of the int8 calls, and never a dense
float copy of all of W.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import blas

from ..errors import InputError, preview
from ..names import STANDARDIZED
from ..resources import check_memory
from .calls import Genotypes
from .scaling import MarkerScaling, fit_scaling

if TYPE_CHECKING:
    from .qc import QCReport

__all__ = ["Relationship", "check_relationship", "genomic_relationship", "relationship_matrix"]

# Target size of one float slab of scaled calls. Large enough for BLAS to run at full speed,
# small next to an n x n matrix once n is in the thousands.
_SLAB_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class Relationship:
    """A genomic relationship matrix with its individual IDs.

    Attributes
    ----------
    matrix : ndarray, shape (n, n)
        The relationship matrix, symmetric.
    ids : ndarray of str, shape (n,)
        Individual IDs labelling rows and columns.
    scaling : str
        The scaling that built it, or ``"user"`` for a matrix read from a file without that record.
    n_markers : int or None
        Markers behind it (``m``), if known.
    denominator : float or None
        ``m`` for G, ``nu_p`` for G*, if known.
    marker_scaling : MarkerScaling or None
        Per-marker constants of the training data, to place new individuals on the same scale.
    qc_report : QCReport or None
        What quality control dropped, when G was built straight from a file
        (:func:`~bayesblup.genomic_relationship_bed`); None when the caller ran the QC.
    """

    matrix: np.ndarray
    ids: np.ndarray
    scaling: str
    n_markers: int | None = None
    denominator: float | None = None
    marker_scaling: MarkerScaling | None = None
    qc_report: QCReport | None = None

    def __post_init__(self) -> None:
        G = self.matrix
        if G.ndim != 2 or G.shape[0] != G.shape[1]:
            raise InputError(f"a relationship matrix must be square, got shape {G.shape}.")
        if len(self.ids) != G.shape[0]:
            raise InputError(f"{len(self.ids)} IDs given for a {G.shape[0]} x {G.shape[0]} relationship matrix.")
        object.__setattr__(self, "ids", np.asarray([str(i) for i in self.ids], dtype=object))

    @classmethod
    def from_matrix(cls, matrix, ids: Sequence, *, symmetry_tol: float = 1e-8) -> Relationship:
        """A relationship matrix of your own (a pedigree A, a G from other software, any kernel), with its IDs.

        The matrix is checked as a file's would be (square, one ID per row, finite, symmetric to
        ``symmetry_tol`` of its largest value); its scaling is recorded as ``"user"``. BGLR's
        ``ETA = list(list(K = G, model = "RKHS"))`` is ``bb.GBLUP(y, bb.Relationship.from_matrix(G, ids))``.

        Examples
        --------
        >>> import numpy as np
        >>> from bayesblup import Relationship
        >>> A = Relationship.from_matrix(np.array([[1.0, 0.5], [0.5, 1.0]]), ["sire", "son"])
        >>> A.scaling, A.relationship_coefficient("sire", "son")
        ('user', 0.5)
        """
        G = np.asarray(matrix, dtype=np.float64)
        ids = [str(i) for i in ids]
        if G.ndim != 2 or G.shape[0] != G.shape[1]:
            raise InputError(f"a relationship matrix must be square, got shape {G.shape}.")
        if len(ids) != G.shape[0]:
            raise InputError(f"{len(ids)} IDs given for a {G.shape[0]} x {G.shape[0]} relationship matrix.")
        if len(set(ids)) != len(ids):
            names, counts = np.unique(ids, return_counts=True)
            raise InputError(f"the relationship matrix's IDs repeat: {preview(names[counts > 1])}.")
        check_relationship(G, np.asarray(ids, dtype=object), "the relationship matrix", symmetry_tol=symmetry_tol)
        return cls(matrix=G, ids=np.asarray(ids, dtype=object), scaling="user")

    @property
    def n_individuals(self) -> int:
        return self.matrix.shape[0]

    def index(self, ids: Sequence) -> np.ndarray:
        """Row positions of ``ids`` in the matrix.

        Raises
        ------
        InputError
            Naming the IDs that the matrix does not hold.
        """
        position = {name: i for i, name in enumerate(self.ids)}
        absent = [str(i) for i in ids if str(i) not in position]
        if absent:
            raise InputError(f"{len(absent)} IDs are not in the relationship matrix: {preview(absent)}.")
        return np.array([position[str(i)] for i in ids], dtype=np.intp)

    def inbreeding(self) -> np.ndarray:
        """Genomic inbreeding ``F_i = G_ii - 1``.

        On the pedigree scale (``scaling="centered"``, VanRaden's G*) this is the genomic analogue
        of the pedigree inbreeding coefficient. Under the standardised scalings the diagonal is
        centred on 1 by construction, so ``G_ii - 1`` is inbreeding relative to the sample.
        """
        return np.diag(self.matrix) - 1.0

    def relationship_coefficient(self, a, b) -> float:
        """Genomic relationship between two individuals, ``G_ab / sqrt(G_aa G_bb)``.

        Notes
        -----
        The lecture notes print the denominator as ``sqrt(G_aa + G_bb)``: a typo. With the product, the
        coefficient of an individual with itself is 1 and the measure is a correlation, as
        Wright's coefficient of relationship is.
        """
        i, j = self.index([a, b])
        G = self.matrix
        return float(G[i, j] / np.sqrt(G[i, i] * G[j, j]))

    def summary(self) -> dict:
        """n, m, the mean diagonal and the mean and range of the off-diagonal elements."""
        G = self.matrix
        n = G.shape[0]
        trace = float(np.trace(G, dtype=np.float64))
        out = {"n_individuals": n, "n_markers": self.n_markers, "scaling": self.scaling, "mean_diagonal": trace / n}
        if n > 1:
            lo, hi = np.inf, -np.inf
            for r0 in range(0, n, 1024):  # row blocks: the diagonal masked without an n x n copy
                rows = G[r0 : r0 + 1024]
                off = np.ones(rows.shape, dtype=bool)
                off[np.arange(rows.shape[0]), np.arange(r0, r0 + rows.shape[0])] = False
                lo, hi = min(lo, float(rows[off].min())), max(hi, float(rows[off].max()))
            out |= {
                "mean_off_diagonal": (float(G.sum(dtype=np.float64)) - trace) / (n * (n - 1)),
                "min_off_diagonal": lo,
                "max_off_diagonal": hi,
            }
        return out

    def to_dataarray(self):
        """G as an ``xarray.DataArray`` with dims ``(individual_0, individual_1)``.

        xarray forbids a repeated dim name, hence the suffixes (as sgkit does).
        """
        import xarray as xr

        ids = self.ids.astype(str)
        return xr.DataArray(
            self.matrix,
            dims=("individual_0", "individual_1"),
            coords={"individual_0": ids, "individual_1": ids},
            name="G",
            attrs={
                "scaling": self.scaling,
                "n_markers": self.n_markers or -1,
                "denominator": self.denominator or np.nan,
            },
        )

    def __repr__(self) -> str:
        return (
            f"Relationship({self.n_individuals} x {self.n_individuals}, scaling={self.scaling!r}, m={self.n_markers})"
        )


def check_relationship(G: np.ndarray, ids, where: str, *, symmetry_tol: float = 1e-8, block: int = 1024) -> None:
    """Refuse a relationship matrix with a non-finite value or asymmetric beyond rounding, naming the cell.

    The eigendecomposition reads one triangle only, so an asymmetric G would be used without a word. The
    tolerance is ``symmetry_tol`` (at least 64 machine epsilons of G's dtype) times G's largest absolute
    value. Checked a block of rows at a time: no n x n temporary.
    """
    n = G.shape[0]
    scale, worst, at = 0.0, 0.0, (0, 0)
    for r0 in range(0, n, block):
        rows = G[r0 : r0 + block]
        bad = ~np.isfinite(rows)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise InputError(
                f"{where}: non-finite value at ({ids[r0 + r]}, {ids[c]}); expected a number in every cell: fill it, "
                "or rebuild G from the genotypes (bayesblup.genomic_relationship, or `bayesblup grm`)."
            )
        scale = max(scale, float(np.abs(rows).max()))
        asym = np.abs(rows - G[:, r0 : r0 + block].T)
        if asym.max() > worst:
            worst, at = float(asym.max()), (r0 + int(np.argmax(asym) // n), int(np.argmax(asym) % n))
    eps = np.finfo(G.dtype).eps if np.issubdtype(G.dtype, np.floating) else 0.0
    tol = max(symmetry_tol, 64 * eps)
    if worst > tol * max(scale, 1e-300):
        a, b = ids[at[0]], ids[at[1]]
        raise InputError(
            f"{where}: the matrix is not symmetric: G[{a}, {b}] and G[{b}, {a}] differ by {worst:.3g}, more than "
            f"{tol:.0e} x its largest value; expected a symmetric matrix: if the difference is rounding, use "
            "(G + G') / 2, else check how the matrix was built."
        )


def _mirror_upper(G: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle onto the lower one, in place, a block of columns at a time."""
    n = G.shape[0]
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        G[i1:, i0:i1] = G[i0:i1, i1:].T
        diag = G[i0:i1, i0:i1]
        lower = np.tril_indices(i1 - i0, -1)
        diag[lower] = diag.T[lower]


def relationship_matrix(
    calls: np.ndarray, scaling: MarkerScaling, *, dtype=np.float64, block_size: int | None = None
) -> np.ndarray:
    """Compute ``W W' / denominator`` from int8 counts (or float32 dosages), in blocks of markers.

    Parameters
    ----------
    calls : ndarray of int8 or float32, shape (n, m)
        Calls in the marker order of ``scaling``; missing calls are filled by ``scaling``.
    scaling : MarkerScaling
        Per-marker centre, multiplier and denominator.
    dtype : {numpy.float64, numpy.float32}
        Precision of the slab and of the accumulated G. float32 halves memory and is about twice
        as fast; its relative rounding error, accumulated over m markers, is about 1e-6 sqrt(m).
    block_size : int, optional
        Markers per slab; by default enough to fill about 64 MB.

    Returns
    -------
    ndarray, shape (n, n)
        The symmetric relationship matrix, C-contiguous.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise InputError(f"dtype must be float64 or float32, got {dtype}.")
    n, m = calls.shape
    if m != scaling.n_markers:
        raise InputError(f"calls have {m} markers but the scaling was fitted on {scaling.n_markers}.")
    if block_size is None:
        block_size = max(256, _SLAB_BYTES // (n * dtype.itemsize))
    elif block_size < 1:
        raise InputError(f"block_size must be a positive number of markers, got {block_size}.")
    syrk = blas.dsyrk if dtype == np.float64 else blas.ssyrk
    G = np.zeros((n, n), dtype=dtype, order="F")
    for j0 in range(0, m, block_size):
        cols = slice(j0, min(m, j0 + block_size))
        slab = scaling.transform_block(calls[:, cols], cols, dtype=dtype)
        # Upper triangle only, updated in place (overwrite_c): no n x n temporary per block.
        out = syrk(1.0, slab, beta=1.0, c=G, trans=0, lower=0, overwrite_c=1)
        if out is not G:  # f2py had to copy; keep the result rather than lose the update
            G = out
    _mirror_upper(G)
    G /= dtype.type(scaling.denominator)
    # G is symmetric, so its transpose (a free view) is the same matrix in C order.
    return G.T


def genomic_relationship(
    genotypes: Genotypes,
    *,
    scaling: str = STANDARDIZED,
    allele_freq=None,
    dtype=np.float64,
    block_size: int | None = None,
) -> Relationship:
    """Genomic relationship matrix of quality-controlled genotypes.

    Parameters
    ----------
    genotypes : Genotypes
        Calls after :func:`bayesblup.quality_control` (no monomorphic marker).
    scaling : {"standardized", "standardized-hwe", "centered"}
        ``"standardized"`` (eq 11a) and ``"standardized-hwe"`` (eq 11b) give ``G = WW'/m``;
        ``"centered"`` gives VanRaden's ``G* = W*W*'/nu_p`` with ``nu_p = 2 sum p(1-p)`` for 0/1/2
        counts (``sum p(1-p)`` for 0/1 presence/absence calls), on the pedigree scale.
    allele_freq : array_like or pandas.Series, optional
        Base-population frequencies of the counted allele (``"standardized-hwe"``/``"centered"``).
    dtype : {numpy.float64, numpy.float32}
        Precision of the computation and of the result.
    block_size : int, optional
        Markers per block; see :func:`relationship_matrix`.

    Returns
    -------
    Relationship
        G with IDs and the marker scaling used.

    Examples
    --------
    >>> from bayesblup import datasets, genomic_relationship, quality_control
    >>> geno, report = quality_control(datasets.load_wheat().genotypes)
    >>> G = genomic_relationship(geno, scaling="standardized")
    >>> round(G.summary()["mean_diagonal"] * 599 / 598, 12)  # trace(G) = n - 1 exactly (ddof=1)
    1.0
    """
    n = genotypes.n_individuals
    itemsize = np.dtype(dtype).itemsize
    check_memory(  # G is n x n: refused with the figure before NumPy's MemoryError or the system's kill
        n * n * itemsize,
        what=f"G of {n} individuals ({np.dtype(dtype).name})",
        instead="" if itemsize == 4 else "dtype=numpy.float32 (--float32) halves it.",
    )
    fitted = fit_scaling(genotypes, scaling=scaling, allele_freq=allele_freq)
    G = relationship_matrix(genotypes.calls, fitted, dtype=dtype, block_size=block_size)
    return Relationship(
        matrix=G,
        ids=genotypes.ids,
        scaling=scaling,
        n_markers=genotypes.n_markers,
        denominator=fitted.denominator,
        marker_scaling=fitted,
    )
