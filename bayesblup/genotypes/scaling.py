"""From allele counts to the marker matrix W: the three scalings, and imputation.

Each marker column ``x`` (a call per individual) becomes ``w = (x_filled - c) * s`` with

===================== ========================== ============================== ================
scaling               centre ``c``               multiplier ``s``               G denominator
===================== ========================== ============================== ================
``standardized``      sample mean of ``x``       1 / sample sd (ddof=1)         m   (eq 11a)
``standardized-hwe``  ``k p``                    1 / sqrt(k p (1-p))            m   (eq 11b)
``centered``          ``k p``                    1                              nu_p = k sum p(1-p)  (eq 13-14)
===================== ========================== ============================== ================

where ``k`` is 2 for 0/1/2 allele counts and 1 for 0/1 presence/absence calls (one Bernoulli draw),
so that ``E[x] = k p`` and ``Var[x] = k p (1-p)`` in both codings. ``p`` is the frequency of the
counted allele: from the observed calls of the data (the default) or from a base population
(``allele_freq=``, the lecture notes' footnote 3).

A missing call is filled with the marker's observed mean (``k p`` from the observed calls) before
centring. With ``standardized``, the sample sd is that of the filled column, as if the data had
been imputed first and then passed to R's ``scale()``; a filled call therefore contributes 0 to W.

The per-marker centre, multiplier and fill value are kept in a :class:`MarkerScaling`, so that
genotypes of new individuals can be put on the training scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..names import MAX_COUNT, SCALINGS, STANDARDIZED, STANDARDIZED_HWE
from .calls import MISSING, Genotypes, MarkerStats, marker_stats, missing_mask

__all__ = ["GenotypeMatrix", "MarkerScaling", "fit_scaling", "genotype_matrix", "subset_scaling"]


@dataclass(frozen=True, eq=False)
class MarkerScaling:
    """Per-marker constants that turn calls into a column of W.

    Attributes
    ----------
    scaling : str
        One of ``"standardized"``, ``"standardized-hwe"``, ``"centered"``.
    markers : ndarray of str, shape (m,)
        Marker names, in column order.
    coding : str
        Genotype coding of the training calls.
    allele_freq : ndarray, shape (m,)
        ``p`` per marker: from the training sample, or the base population given.
    allele_freq_source : {"sample", "base"}
        Where ``allele_freq`` came from.
    fill : ndarray, shape (m,)
        Value given to a missing call: the observed mean of the training calls.
    center, multiplier : ndarray, shape (m,)
        ``w = (x - center) * multiplier``.
    denominator : float
        ``m`` for the standardised scalings, ``nu_p = k sum p(1-p)`` for ``centered``; G = WW'/denominator.
    """

    scaling: str
    markers: np.ndarray
    coding: str
    allele_freq: np.ndarray
    allele_freq_source: str
    fill: np.ndarray
    center: np.ndarray
    multiplier: np.ndarray
    denominator: float

    @property
    def n_markers(self) -> int:
        return self.markers.size

    def transform_block(self, calls: np.ndarray, columns: slice, *, dtype=np.float64) -> np.ndarray:
        """Scale the calls of the markers in ``columns`` into a Fortran-ordered float slab.

        Fortran order keeps each marker column contiguous, which is what BLAS ``syrk`` reads
        without a copy.
        """
        multiplier = self.multiplier[columns]
        slab = np.empty(calls.shape, dtype=dtype, order="F")
        # w = x s - c s: the int8 -> float cast happens inside the multiply, so the slab is written
        # twice rather than four times (measured: 0.2 s instead of 0.5 s at 2000 x 50,000).
        np.multiply(calls, multiplier.astype(dtype), out=slab)
        slab -= (self.center[columns] * multiplier).astype(dtype)
        # a min is far cheaper than a mask when none is missing (MISSING is the least int8; NaN makes min NaN)
        lowest = calls.min() if calls.size else 0
        if lowest == MISSING or np.isnan(lowest):
            filled = ((self.fill[columns] - self.center[columns]) * multiplier).astype(dtype)
            np.copyto(slab, filled[None, :], where=missing_mask(calls))
        return slab

    def align(self, genotypes: Genotypes) -> np.ndarray:
        """Return the calls of ``genotypes`` with columns in this scaling's marker order.

        Raises
        ------
        InputError
            If a training marker is absent from ``genotypes`` or the codings differ.
        """
        if genotypes.coding != self.coding:
            raise InputError(
                f"{genotypes.source}: coding {genotypes.coding!r} differs from the training coding "
                f"{self.coding!r}; read the new genotypes with coding={self.coding!r}."
            )
        if genotypes.n_markers == self.n_markers and (genotypes.markers == self.markers).all():
            return genotypes.calls
        position = {name: j for j, name in enumerate(genotypes.markers)}
        absent = [name for name in self.markers if name not in position]
        if absent:
            raise InputError(
                f"{genotypes.source}: {len(absent)} training markers are absent: {preview(absent)}. "
                "New genotypes must cover every marker kept at training."
            )
        return genotypes.calls[:, [position[name] for name in self.markers]]


@dataclass(frozen=True, eq=False)
class GenotypeMatrix:
    """The marker matrix W with its labels and the scaling that made it."""

    values: np.ndarray
    ids: np.ndarray
    scaling: MarkerScaling

    @property
    def markers(self) -> np.ndarray:
        return self.scaling.markers

    def to_dataarray(self):
        """W as an ``xarray.DataArray`` with dims ``(individual, marker)``."""
        import xarray as xr

        from ..names import INDIVIDUAL, MARKER

        return xr.DataArray(
            self.values,
            dims=(INDIVIDUAL, MARKER),
            coords={INDIVIDUAL: self.ids.astype(str), MARKER: self.markers.astype(str)},
            name="W",
            attrs={"scaling": self.scaling.scaling, "denominator": self.scaling.denominator},
        )


def _base_frequencies(allele_freq, markers: np.ndarray) -> np.ndarray:
    """Validate base-population frequencies: one per marker, by name if labelled."""
    if isinstance(allele_freq, pd.Series):  # labelled by marker name
        lookup = dict(zip(map(str, allele_freq.index), allele_freq.to_numpy(dtype=float), strict=True))
        absent = [m for m in markers if m not in lookup]
        if absent:
            raise InputError(f"allele_freq has no value for {len(absent)} markers: {preview(absent)}.")
        p = np.array([lookup[m] for m in markers], dtype=float)
    else:
        p = np.asarray(allele_freq, dtype=float)
        if p.shape != (len(markers),):
            raise InputError(
                f"allele_freq must hold one frequency per marker ({len(markers)}), got shape "
                f"{p.shape}. Pass a pandas Series indexed by marker name to align by name."
            )
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        raise InputError(f"allele_freq must lie in [0, 1]; markers {preview(markers[bad])} have {preview(p[bad])}.")
    return p


def fit_scaling(genotypes: Genotypes, *, scaling: str, allele_freq=None) -> MarkerScaling:
    """Compute the per-marker centre and multiplier of a scaling from the data.

    Parameters
    ----------
    genotypes : Genotypes
        Quality-controlled calls: no monomorphic marker (run :func:`bayesblup.quality_control`).
    scaling : {"standardized", "standardized-hwe", "centered"}
        See the module docstring.
    allele_freq : array_like or pandas.Series, optional
        Base-population frequencies of the counted allele, one per marker (a Series is aligned
        by marker name). Only for ``"standardized-hwe"`` and ``"centered"``; the default
        ``None`` uses the frequencies of the observed calls.

    Raises
    ------
    InputError
        On an unknown scaling, a monomorphic marker, or unusable base frequencies.
    """
    check_scaling(scaling, allele_freq=allele_freq)
    return scaling_from_stats(
        marker_stats(genotypes.calls),
        scaling=scaling,
        markers=genotypes.markers,
        coding=genotypes.coding,
        n_individuals=genotypes.n_individuals,
        allele_freq=allele_freq,
        source=genotypes.source,
    )


def check_scaling(scaling: str, *, allele_freq=None) -> None:
    """Refuse an unknown scaling, and base-population frequencies with ``"standardized"``."""
    if scaling not in SCALINGS:
        raise InputError(f"scaling must be one of {', '.join(SCALINGS)}; got {scaling!r}.")
    if scaling == STANDARDIZED and allele_freq is not None:
        raise InputError(
            "allele_freq applies to 'standardized-hwe' and 'centered' only: 'standardized' centres "
            "each marker on its sample mean by definition (eq 11a)."
        )


def scaling_from_stats(
    stats: MarkerStats,
    *,
    scaling: str,
    markers: np.ndarray,
    coding: str,
    n_individuals: int,
    allele_freq=None,
    source: str = "array",
) -> MarkerScaling:
    """:func:`fit_scaling` from per-marker sums of the observed calls, without the calls.

    Parameters
    ----------
    stats : MarkerStats
        Observed calls, their sum and sum of squared deviations, and whether they vary, at each marker
        (:func:`~bayesblup.genotypes.calls.marker_stats`, or ``MarkerStats.from_counts`` of the counts of
        each code); every constant of the three scalings is a function of these and ``n_individuals``.
    scaling, allele_freq
        As in :func:`fit_scaling`.
    markers : ndarray of str, shape (m,)
        Marker names.
    coding : {"additive", "presence-absence"}
        Genotype coding of the calls.
    n_individuals : int
        Individuals behind the counts, missing calls included.
    source : str
        Where the calls came from, for error messages.
    """
    check_scaling(scaling, allele_freq=allele_freq)
    k = MAX_COUNT[coding]
    n = n_individuals
    n_obs = stats.n_obs
    poly = stats.polymorphic
    if not poly.all():
        raise InputError(
            f"{source}: {int((~poly).sum())} markers are monomorphic or have no observed call "
            f"({preview(markers[~poly])}); they have no variance and would divide by zero in "
            "the scaling. Run bayesblup.quality_control() first (the command line does)."
        )
    total = stats.total
    fill = total / n_obs
    p_sample = fill / k

    if scaling == STANDARDIZED:
        # Sum of squared deviations of the filled column: filled calls sit on the mean and add 0.
        sd = np.sqrt(stats.ss / (n - 1))
        return MarkerScaling(
            scaling,
            markers,
            coding,
            p_sample,
            "sample",
            fill,
            fill,
            1.0 / sd,
            float(len(markers)),
        )

    freq_source = "sample" if allele_freq is None else "base"
    p = p_sample if allele_freq is None else _base_frequencies(allele_freq, markers)
    het = k * p * (1.0 - p)
    if scaling == STANDARDIZED_HWE:
        zero = het <= 0
        if zero.any():
            raise InputError(
                f"allele_freq is 0 or 1 at {int(zero.sum())} markers ({preview(markers[zero])}); "
                "'standardized-hwe' divides by sqrt(k p (1-p)). Drop those markers or use 'centered'."
            )
        return MarkerScaling(
            scaling,
            markers,
            coding,
            p,
            freq_source,
            fill,
            k * p,
            1.0 / np.sqrt(het),
            float(len(markers)),
        )
    nu = float(het.sum())
    if nu <= 0:
        raise InputError("every allele frequency is 0 or 1, so nu_p = k sum p(1-p) is 0 and G* is undefined.")
    return MarkerScaling(scaling, markers, coding, p, freq_source, fill, k * p, np.ones_like(p), nu)


def genotype_matrix(
    genotypes: Genotypes, *, scaling: str = STANDARDIZED, allele_freq=None, dtype=np.float64
) -> GenotypeMatrix:
    """Build the dense marker matrix W (n x m) under one of the three scalings.

    Parameters
    ----------
    genotypes : Genotypes
        Quality-controlled calls.
    scaling : {"standardized", "standardized-hwe", "centered"}
        See :mod:`bayesblup.genotypes.scaling`.
    allele_freq : array_like or pandas.Series, optional
        Base-population allele frequencies (not for ``"standardized"``).
    dtype : {numpy.float64, numpy.float32}
        Precision of W.

    Returns
    -------
    GenotypeMatrix
        ``values`` is W; ``scaling`` holds what is needed to scale new individuals alike.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesblup import Genotypes, genotype_matrix
    >>> geno = Genotypes.from_array(np.array([[0, 1], [1, 2], [2, 0]]), ids=["a", "b", "c"])
    >>> genotype_matrix(geno, scaling="centered").values
    array([[-1.,  0.],
           [ 0.,  1.],
           [ 1., -1.]])
    """
    fitted = fit_scaling(genotypes, scaling=scaling, allele_freq=allele_freq)
    values = fitted.transform_block(genotypes.calls, slice(None), dtype=np.dtype(dtype))
    # Kept in Fortran (marker-major) order: a C-order copy would double peak memory.
    return GenotypeMatrix(values=values, ids=genotypes.ids, scaling=fitted)


def subset_scaling(scaling: MarkerScaling, columns: np.ndarray) -> MarkerScaling:
    """The scaling of a subset of markers, with the subset's own G denominator ``c_k``.

    The per-marker centre and multiplier are unchanged, so ``W_k`` is the subset's columns of W;
    the denominator is ``m_k`` (standardised scalings) or the subset's share of ``nu_p``
    (``centered``: ``k sum p(1-p)`` over the set's markers).
    """
    columns = np.arange(scaling.markers.size)[columns]  # an index array or a slice
    if scaling.scaling == "centered":
        het = scaling.allele_freq * (1.0 - scaling.allele_freq)
        denominator = float(scaling.denominator * het[columns].sum() / het.sum())
    else:
        denominator = float(columns.size)
    return dataclasses.replace(
        scaling,
        markers=scaling.markers[columns],
        allele_freq=scaling.allele_freq[columns],
        fill=scaling.fill[columns],
        center=scaling.center[columns],
        multiplier=scaling.multiplier[columns],
        denominator=denominator,
    )
