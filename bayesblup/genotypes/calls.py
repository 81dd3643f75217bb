"""Genotype calls with their labels: the container every later layer reads.

Calls are held as ``int8`` (one byte a call), with :data:`MISSING` for a missing call, so that a
50,000-marker panel on 5,000 individuals takes 250 MB rather than 2 GB as float64. Conversion to
floating point happens one block of markers at a time, in :mod:`bayesblup.genotypes.scaling`.

Fractional dosages (expected allele counts from imputation, a VCF's DS field) are held as ``float32``
in [0, 2], ``NaN`` for a missing call: four bytes a call. QC and the scalings read either kind through
:func:`marker_stats`, the per-marker sums they need.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..names import ADDITIVE, CODINGS, MAX_COUNT, PRESENCE_ABSENCE

__all__ = [
    "MARKER_MAP_COLUMNS",
    "MISSING",
    "Genotypes",
    "MarkerStats",
    "allele_counts",
    "dosage_r2",
    "marker_blocks",
    "marker_stats",
    "missing_mask",
]

#: Sentinel for a missing call in ``Genotypes.calls`` (the value bed-reader uses for int8).
MISSING = np.int8(-127)

#: Columns of :attr:`Genotypes.marker_map`: where each marker lies, and which allele its calls count.
MARKER_MAP_COLUMNS = ("chromosome", "position", "counted_allele", "other_allele")

# Markers per block when scanning calls; small enough that an n x block float64 slab stays
# well under the size of one n x n matrix for any n we expect.
_SCAN_BLOCK = 4096


def _labels(values: Sequence | np.ndarray, *, what: str, expected: int, source: str | None = None) -> np.ndarray:
    """Turn IDs or marker names into a 1-D object array of unique, non-empty strings."""
    arr = np.asarray([str(v) for v in values], dtype=object)
    what = what if source is None else f"{source}: {what}"
    if arr.ndim != 1 or arr.size != expected:
        raise InputError(
            f"{what}: expected {expected} labels (one per {'row' if what.endswith('ids') else 'column'} "
            f"of the genotype matrix), got {arr.size}."
        )
    label = "individual ID" if what.endswith("ids") else "marker name"
    empty = np.flatnonzero(np.char.str_len(arr.astype(str)) == 0)
    if empty.size:
        raise InputError(f"{what}: empty label at position(s) {preview(empty)}; give every {label} a non-empty name.")
    uniq, counts = np.unique(arr.astype(str), return_counts=True)
    if (counts > 1).any():
        raise InputError(
            f"{what}: duplicated label(s) {preview(uniq[counts > 1])} ({label}s); each must be unique: "
            "merge or rename the duplicates before reading."
        )
    return arr


@dataclass(frozen=True, eq=False)
class Genotypes:
    """Genotype calls for ``n`` individuals at ``m`` markers, with their labels.

    Parameters
    ----------
    calls : ndarray of int8 or float32, shape (n, m)
        Allele counts (0/1/2 for ``coding="additive"``, 0/1 for ``"presence-absence"``) as int8, with
        :data:`MISSING` (-127) for a missing call; or fractional dosages in [0, 2] as float32
        (``coding="additive"`` only), with ``NaN`` for a missing call.
    ids : ndarray of str, shape (n,)
        Individual IDs, unique.
    markers : ndarray of str, shape (m,)
        Marker names, unique.
    coding : {"additive", "presence-absence"}
        How the calls are coded; sets ``k`` in ``E[x] = k p``.
    source : str
        Where the calls came from, for reports.
    counted : str, optional
        What a call counts, for reports (e.g. ``"ALT alleles, from the VCF's GT field"``).
    marker_map : pandas.DataFrame, optional
        One row per marker, in column order, indexed by marker name, with the columns of
        :data:`MARKER_MAP_COLUMNS`: chromosome (str), position (int), the allele the calls count and the
        other one. Readers of files that place markers (PLINK, VCF) fill it.

    Use :meth:`from_array` to build one from a NumPy array; the readers in :mod:`bayesblup.genotypes.readers`
    build one from CSV or PLINK files.
    """

    calls: np.ndarray
    ids: np.ndarray
    markers: np.ndarray
    coding: str
    source: str = "array"
    counted: str | None = None
    marker_map: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if (
            not isinstance(self.calls, np.ndarray)
            or self.calls.dtype not in (np.int8, np.float32)
            or self.calls.ndim != 2
        ):
            raise InputError(
                "Genotypes.calls must be a 2-D int8 array of counts (or float32 of dosages); use "
                "Genotypes.from_array() to convert counts given in another type."
            )
        if self.coding not in CODINGS:
            raise InputError(f"coding must be one of {sorted(CODINGS)}, got {self.coding!r}.")
        if self.is_dosage and self.coding != ADDITIVE:
            raise InputError(f"{self.source}: fractional dosages count alleles: their coding is 'additive'.")
        n, m = self.calls.shape
        if n == 0 or m == 0:
            raise InputError(f"the genotype matrix from {self.source} is empty ({n} individuals x {m} markers).")
        object.__setattr__(self, "ids", _labels(self.ids, what="ids", expected=n, source=self.source))
        object.__setattr__(self, "markers", _labels(self.markers, what="markers", expected=m, source=self.source))
        _check_codes(self.calls, self.coding, self.ids, self.markers, self.source)
        if self.marker_map is not None:
            object.__setattr__(self, "marker_map", _check_marker_map(self.marker_map, self.markers, self.source))

    @classmethod
    def from_array(
        cls,
        calls: np.ndarray,
        *,
        ids: Sequence,
        markers: Sequence | None = None,
        coding: str = "auto",
        source: str = "array",
    ) -> Genotypes:
        """Build genotypes from an array of allele counts.

        Parameters
        ----------
        calls : array_like, shape (n, m)
            Allele counts, integers or floats; ``NaN`` marks a missing call.
        ids : sequence, length n
            Individual IDs (converted to str).
        markers : sequence, length m, optional
            Marker names; ``marker_1 .. marker_m`` when omitted.
        coding : {"auto", "additive", "presence-absence"}
            ``"auto"`` picks ``"additive"`` if any call equals 2, else ``"presence-absence"``; the
            choice is reported by :func:`bayesblup.quality_control`. Give it explicitly for 0/1/2
            data in which no 2 happens to occur.
        source : str
            A name for reports and error messages.

        Raises
        ------
        InputError
            If a call is not an integer, lies outside the coding's range, or labels do not fit.
        """
        arr = np.asarray(calls)
        if arr.ndim != 2:
            raise InputError(
                f"{source}: genotype calls must be a 2-D array (individuals x markers), got shape {arr.shape}."
            )
        if markers is None:
            markers = [f"marker_{j + 1}" for j in range(arr.shape[1])]
        if arr.dtype == np.int8:
            out = arr.copy()
        elif arr.dtype.kind in "iubf":
            out = _counts_to_int8(arr, ids, markers, source)
        else:
            raise InputError(
                f"{source}: genotype calls must be numbers (allele counts), got dtype {arr.dtype}. "
                "Convert text codes (e.g. 'AA', 'AB') to counts 0/1/2 first."
            )
        if coding == "auto":
            coding = ADDITIVE if (out == 2).any() else PRESENCE_ABSENCE
        return cls(calls=out, ids=ids, markers=markers, coding=coding, source=source)

    @property
    def n_individuals(self) -> int:
        return self.calls.shape[0]

    @property
    def n_markers(self) -> int:
        return self.calls.shape[1]

    @property
    def is_dosage(self) -> bool:
        """Whether the calls are fractional dosages (float32, NaN missing) rather than int8 counts."""
        return self.calls.dtype == np.float32

    @property
    def max_count(self) -> int:
        """Allele draws per call: 2 for additive 0/1/2 coding, 1 for presence/absence."""
        return MAX_COUNT[self.coding]

    @property
    def n_missing(self) -> int:
        """Number of missing calls."""
        return int(sum(int(missing_mask(blk).sum()) for _, blk in marker_blocks(self.calls)))

    def select(self, *, individuals: np.ndarray | None = None, markers: np.ndarray | None = None) -> Genotypes:
        """Subset by boolean masks or integer indices over individuals and/or markers."""
        rows = slice(None) if individuals is None else np.asarray(individuals)
        cols = slice(None) if markers is None else np.asarray(markers)
        calls = self.calls
        if individuals is not None:
            calls = calls[rows]
        if markers is not None:
            calls = calls[:, cols]
        return Genotypes(
            calls=calls,
            ids=self.ids[rows],
            markers=self.markers[cols],
            coding=self.coding,
            source=self.source,
            counted=self.counted,
            marker_map=None if self.marker_map is None else self.marker_map.iloc[cols],
        )

    def __repr__(self) -> str:
        return (
            f"Genotypes({self.n_individuals} individuals x {self.n_markers} markers, "
            f"coding={self.coding!r}{', dosages' if self.is_dosage else ''}, missing calls={self.n_missing}, "
            f"source={self.source!r})"
        )


def marker_blocks(calls: np.ndarray, block: int = _SCAN_BLOCK) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(columns, calls[:, columns])`` over consecutive blocks of markers."""
    m = calls.shape[1]
    for j0 in range(0, m, block):
        cols = slice(j0, min(m, j0 + block))
        yield cols, calls[:, cols]


def missing_mask(calls: np.ndarray) -> np.ndarray:
    """Where ``calls`` (int8 counts or float32 dosages) are missing."""
    return np.isnan(calls) if calls.dtype.kind == "f" else calls == MISSING


def allele_counts(calls: np.ndarray) -> np.ndarray:
    """Count the calls of each code per marker.

    Returns
    -------
    ndarray of int64, shape (m, 3)
        Columns hold the number of calls equal to 0, 1 and 2 at each marker. Missing calls are
        in none of them, so ``counts.sum(1)`` is the number of observed calls.
    """
    out = np.empty((calls.shape[1], 3), dtype=np.int64)
    for cols, blk in marker_blocks(calls):
        for code in range(3):
            out[cols, code] = (blk == code).sum(axis=0)
    return out


@dataclass(frozen=True, eq=False)
class MarkerStats:
    """Per-marker sums over the observed calls: all that QC and the three scalings need.

    Attributes
    ----------
    n_obs : ndarray of int64, shape (m,)
        Observed (non-missing) calls.
    total : ndarray of float64, shape (m,)
        Sum of the observed calls.
    ss : ndarray of float64, shape (m,)
        Sum of squared deviations of the observed calls from their mean (0 without an observed call). Kept as
        such, not as a sum of squares: ``sum x^2 - (sum x)^2 / n`` cancels catastrophically for dosages that
        differ in their last bits (it came out negative, and W's column NaN).
    polymorphic : ndarray of bool, shape (m,)
        Whether at least two different values are observed.
    """

    n_obs: np.ndarray
    total: np.ndarray
    ss: np.ndarray
    polymorphic: np.ndarray

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> MarkerStats:
        """The sums of 0/1/2 calls from their counts (:func:`allele_counts`): integers in float64, exactly."""
        n_obs = counts.sum(axis=1)
        total = counts[:, 1] + 2.0 * counts[:, 2]
        total_sq = counts[:, 1] + 4.0 * counts[:, 2]
        # whole numbers: a polymorphic marker's ss is at least about 1/2, far above the rounding of these sums
        ss = total_sq - np.divide(total**2, n_obs, out=np.zeros_like(total), where=n_obs > 0)
        return cls(n_obs=n_obs, total=total, ss=ss, polymorphic=(counts > 0).sum(axis=1) >= 2)

    def subset(self, index) -> MarkerStats:
        """The sums of the markers selected by a mask or integer index."""
        return MarkerStats(self.n_obs[index], self.total[index], self.ss[index], self.polymorphic[index])


def marker_stats(calls: np.ndarray) -> MarkerStats:
    """:class:`MarkerStats` of int8 counts (through :func:`allele_counts`) or float32 dosages, block by block."""
    if calls.dtype.kind != "f":
        return MarkerStats.from_counts(allele_counts(calls))
    m = calls.shape[1]
    n_obs, total, ss = np.empty(m, dtype=np.int64), np.empty(m), np.empty(m)
    polymorphic = np.empty(m, dtype=bool)
    for cols, blk in marker_blocks(calls):
        x = blk.astype(np.float64)
        seen = ~np.isnan(x)
        n_obs[cols] = seen.sum(axis=0)
        total[cols] = np.where(seen, x, 0.0).sum(axis=0)
        mean = np.divide(total[cols], n_obs[cols], out=np.zeros(x.shape[1]), where=n_obs[cols] > 0)
        ss[cols] = np.where(seen, (x - mean[None, :]) ** 2, 0.0).sum(axis=0)  # two passes: no cancellation
        # a marker of whole dosages: the counts' formula, on the same integers, so W is that of the counts bit for bit
        whole = np.where(seen, x == np.round(x), True).all(axis=0)
        if whole.any():
            k = np.flatnonzero(whole)
            total_sq = np.where(seen[:, k], x[:, k] ** 2, 0.0).sum(axis=0)
            n_k = n_obs[cols][k]
            ss[cols.start + k] = total_sq - np.divide(total[cols][k] ** 2, n_k, out=np.zeros(k.size), where=n_k > 0)
        # two different observed values: max > min over the observed calls (inf fills the missing ones)
        polymorphic[cols] = np.where(seen, x, -np.inf).max(axis=0) > np.where(seen, x, np.inf).min(axis=0)
    return MarkerStats(n_obs, total, ss, polymorphic)


def dosage_r2(stats: MarkerStats) -> np.ndarray:
    """MaCH dosage r2 of each marker: the variance of its dosages over that of hard calls at the same frequency.

    ``r2 = var(d) / (2 p (1 - p))`` with ``p = mean(d) / 2`` and ``var`` the population variance (``ss / n_obs``),
    both over the observed dosages: the estimator of PLINK 2's ``--mach-r2-filter`` (minimac's R2 and Beagle's
    DR2 estimate the same quantity). Imputation shrinks an uncertain dosage towards the marker's mean ``2p``, so
    r2 falls from about 1 (as good as called) towards 0 (nothing known beyond ``p``). The denominator assumes
    Hardy-Weinberg proportions: fewer heterozygotes than those (inbred lines) raise r2 above 1, up to 2 for calls
    that are all homozygous; more heterozygotes lower it. For whole 0/1/2 counts it is the observed over the
    Hardy-Weinberg variance.

    Parameters
    ----------
    stats : MarkerStats
        Sums of the observed calls (:func:`marker_stats`) of additive 0/1/2 counts or dosages in [0, 2].

    Returns
    -------
    ndarray of float64, shape (m,)
        The r2 of each marker; NaN where it is undefined: no observed call, or a monomorphic marker (with two
        different values in [0, 2] observed, ``0 < p < 1``, so every polymorphic marker has one).
    """
    n_obs = stats.n_obs.astype(np.float64)
    defined = stats.polymorphic & (stats.n_obs > 0)
    p = np.divide(stats.total, 2.0 * n_obs, out=np.full(n_obs.shape, np.nan), where=defined)
    hard_call_variance = 2.0 * p * (1.0 - p)
    defined &= hard_call_variance > 0  # guards rounding at p = 0 or 1; polymorphic markers are strictly inside
    return np.divide(
        stats.ss / np.maximum(n_obs, 1.0), hard_call_variance, out=np.full(n_obs.shape, np.nan), where=defined
    )


def _check_marker_map(frame: pd.DataFrame, markers: np.ndarray, source: str) -> pd.DataFrame:
    """A marker map with the expected columns and one row per marker, indexed by marker name."""
    if not isinstance(frame, pd.DataFrame) or list(frame.columns) != list(MARKER_MAP_COLUMNS):
        raise InputError(f"{source}: marker_map must be a DataFrame with columns {', '.join(MARKER_MAP_COLUMNS)}.")
    if len(frame) != markers.size:
        raise InputError(f"{source}: marker_map has {len(frame)} rows for {markers.size} markers.")
    out = frame.copy()
    out.index = pd.Index(markers.astype(str), name="marker")
    return out


def _locate(mask: np.ndarray, ids, markers) -> str:
    """Describe the first few (individual, marker) cells where ``mask`` is true."""
    rows, cols = np.nonzero(mask)
    cells = [f"(individual {ids[r]!s}, marker {markers[c]!s})" for r, c in zip(rows[:3], cols[:3], strict=True)]
    more = f" and {rows.size - 3} more" if rows.size > 3 else ""
    return ", ".join(cells) + more


def _counts_to_int8(arr: np.ndarray, ids, markers, source: str) -> np.ndarray:
    """Integer or float counts (NaN = missing) to int8 calls, refusing anything but 0, 1, 2."""
    is_float = arr.dtype.kind == "f"
    missing = np.isnan(arr) if is_float else np.zeros(arr.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        bad = ~missing & ((arr < 0) | (arr > 2) | ((arr != np.round(arr)) if is_float else False))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        value = float(arr[r, c])
        if not np.isfinite(value):
            hint = "An infinite value is no call: fix the cell, or mark a missing call as NaN / NA."
        elif value != round(value):
            hint = (
                "Fractional dosages are read from a VCF's DS field (--vcf-field DS), or given as "
                "Genotypes(calls=<float32 array>, coding='additive'), not from a CSV or from_array: round or recode "
                "them there; mark missing calls as NaN / NA."
            )
        else:
            hint = "If that code marks a missing call, replace it with NaN (or an empty cell / NA in a CSV)."
        raise InputError(
            f"{source}: genotype calls must be allele counts 0/1/2 (or 0/1 for presence/absence), "
            f"found {value:g} at {_locate(bad, list(ids), list(markers))}. {hint}"
        )
    return np.where(missing, MISSING, np.nan_to_num(arr) if is_float else arr).astype(np.int8)


def _check_codes(calls: np.ndarray, coding: str, ids, markers, source: str) -> None:
    """Every call must be a valid code for the coding (a dosage: a number in [0, 2]), or missing."""
    top = MAX_COUNT[coding]
    for cols, blk in marker_blocks(calls):
        if blk.dtype.kind == "f":
            bad = np.isinf(blk) | (blk < 0) | (blk > top)  # NaN compares False: a missing call
            if bad.any():
                r, c = np.argwhere(bad)[0]
                raise InputError(
                    f"{source}: dosage {float(blk[r, c]):g} lies outside [0, {top}] at "
                    f"{_locate(bad, ids, markers[cols])}; a dosage is an expected count of alleles."
                )
            continue
        bad = ((blk < 0) | (blk > top)) & (blk != MISSING)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            hint = (
                " The data hold 2s, so they look like 0/1/2 counts: use coding='additive'."
                if coding == PRESENCE_ABSENCE and blk[r, c] == 2
                else ""
            )
            raise InputError(
                f"{source}: call {int(blk[r, c])} is not valid for coding {coding!r} (allowed 0..{top} "
                f"or missing) at {_locate(bad, ids, markers[cols])}.{hint}"
            )
