"""G straight from a PLINK .bed, a block of markers per Dask task: out of core, on one machine or a cluster.

Needs the optional extra ``bayesblup[dask]``; importing :mod:`bayesblup` never imports Dask.

The computation is the in-memory path's (:func:`bayesblup.quality_control`, then
:func:`bayesblup.genomic_relationship`) cut into two passes over blocks of markers, each block read
from the .bed inside its own task, so that no process ever holds all the calls:

1. per block, the number of calls equal to 0, 1 and 2 at each marker (and, for the individual
   call-rate filter, the missing calls per individual). These fix the QC, the allele frequencies
   and every constant of the scaling (:func:`bayesblup.genotypes.scaling.scaling_from_stats`);
2. per block, ``W_b W_b'`` with BLAS ``syrk`` (:func:`bayesblup.relationship_matrix`, missing calls
   imputed to the marker mean as in memory), summed over blocks by a tree reduction, then divided
   by ``m`` or ``nu_p`` once on the caller's side.

The result equals the in-memory G up to the order of floating-point summation (about 1e-15 of
``max |G|`` in float64).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InputError
from ..names import ADDITIVE, MAX_COUNT, STANDARDIZED
from .calls import MISSING, MarkerStats, _labels, allele_counts
from .qc import QCReport, check_thresholds, individual_filter, marker_filter
from .readers import check_plink_iids, plink_files
from .relationship import Relationship, relationship_matrix
from .scaling import MarkerScaling, check_scaling, scaling_from_stats, subset_scaling

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["genomic_relationship_bed"]

# Default bytes of int8 calls read by one task (n x block_size). The float slab that the task
# scales them into is capped separately (64 MB, in relationship_matrix), so this sets the I/O
# size and the number of n x n partial sums, not the float memory. Every task's n x n partial is
# added (and, on a cluster, sent) once: at least 4096 markers a task keeps that cost to a few
# percent of the task's n^2 x block products; at most 65,536 leaves work for several workers.
_BLOCK_BYTES = 64 * 2**20
_BLOCK_MIN, _BLOCK_MAX = 4096, 65536


def genomic_relationship_bed(
    path: str | os.PathLike,
    *,
    scaling: str = STANDARDIZED,
    allele_freq: np.ndarray | pd.Series | None = None,
    min_maf: float | None = None,
    min_call_rate: float | None = None,
    min_individual_call_rate: float | None = None,
    block_size: int | None = None,
    split_every: int = 4,
    client: Client | str | None = None,
    dtype: type | np.dtype = np.float64,
) -> Relationship:
    """Quality control and G of a PLINK .bed, computed in blocks of markers with Dask.

    The same result as ``genomic_relationship(quality_control(read_plink(path), ...)[0], ...)``
    (to about 1e-15 of ``max |G|``: only the order of summation differs), without ever holding the
    genotype matrix in memory, and on a ``dask.distributed`` cluster if one is given.

    Parameters
    ----------
    path : path-like
        The ``.bed`` file, or the prefix of the ``.bed/.bim/.fam`` set. On a cluster, every worker
        must be able to read it at this path (a shared filesystem); the path is made absolute.
    scaling : {"standardized", "standardized-hwe", "centered"}
        As in :func:`bayesblup.genomic_relationship`.
    allele_freq : array_like or pandas.Series, optional
        Base-population frequencies of the counted (A1) allele (``"standardized-hwe"`` and
        ``"centered"``): a Series indexed by marker name, or an array with one value per marker of
        the ``.bim`` (markers dropped by QC are ignored).
    min_maf, min_call_rate, min_individual_call_rate : float, optional
        The optional filters of :func:`bayesblup.quality_control`; markers with no observed call
        and monomorphic markers are always dropped, as there. The individual filter costs one more
        pass over the file when it drops someone.
    block_size : int, optional
        Markers per task. Default: 64 MiB of int8 calls (``64 MiB / n`` markers), within [4096, 65536].
    split_every : int
        How many n x n partial sums one reduction task adds (the fan-in of the tree).
    client : distributed.Client or str, optional
        Where to run. A ``Client`` is used as given. A string is a scheduler address (e.g.
        ``"tcp://scheduler:8786"``): a ``Client`` is connected for this call and closed after.
        ``None`` uses Dask's current scheduler: the one set with ``dask.config.set(scheduler=...)``
        if any, else the default ``distributed.Client`` if one is active in this process (the last
        one created, or the one made current with ``Client.as_current()``). With neither, the tasks
        run one after another in this process (Dask's synchronous scheduler), each using every core
        through BLAS: the memory of one task, and no cluster needed.
    dtype : {numpy.float64, numpy.float32}
        Precision of the scaled calls, of the partial sums and of G.

    Returns
    -------
    Relationship
        G with the .fam IDs (IID) of the individuals kept, ``n_markers`` and ``denominator``,
        ``marker_scaling`` (per-marker constants of the kept markers) and ``qc_report`` (the
        :class:`bayesblup.QCReport` of the markers and individuals dropped, by name).

    Raises
    ------
    InputError
        If Dask is not installed (``pip install 'bayesblup[dask]'``), the PLINK set is incomplete
        or its .bed has the wrong size, an option is invalid, or nothing passes QC.

    Notes
    -----
    Memory. A task holds ``n x block_size`` int8 calls, one float slab of at most 64 MB, and the
    n x n partial sum it accumulates (``8 n^2`` bytes in float64); a reduction task holds
    ``split_every`` partial sums and their total. A worker therefore needs about
    ``threads x (n block_size + 64 MB + 8 n^2) + (split_every + 1) x 8 n^2`` bytes at most, whatever
    the number of markers; e.g. 1.1 GB at n = 4000 with one thread and the defaults. Lower
    ``split_every`` (down to 2) and ``block_size`` when memory is tight. The caller's process
    receives G (``8 n^2`` bytes) and per-marker vectors, never the calls.

    Workers of ``dask.distributed`` started by a nanny run BLAS on one thread, so give them one
    thread per core. Without a cluster the tasks run one at a time rather than on Dask's default
    thread pool, which would hold one n x n partial per core.

    Examples
    --------
    >>> from pathlib import Path
    >>> from distributed import Client, LocalCluster
    >>> import bayesblup as bb
    >>> bed = Path(bb.__file__).parents[1] / "tests" / "data" / "plink_sample" / "sample.bed"
    >>> with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
    ...                   dashboard_address=":0") as cluster, Client(cluster) as client:
    ...     G = bb.genomic_relationship_bed(bed, scaling="centered", block_size=8, client=client)
    >>> G
    Relationship(120 x 120, scaling='centered', m=20)
    """
    dask = _import_dask()
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise InputError(f"dtype must be float64 or float32, got {dtype}.")
    check_scaling(scaling, allele_freq=allele_freq)
    min_maf, min_call_rate, min_individual_call_rate, _ = check_thresholds(
        min_maf=min_maf, min_call_rate=min_call_rate, min_individual_call_rate=min_individual_call_rate
    )
    if block_size is not None and block_size < 1:
        raise InputError(f"block_size must be a positive number of markers, got {block_size}.")
    if split_every < 2:
        raise InputError(f"split_every must be at least 2, got {split_every}.")

    source, bed, iid, sid = _plink_metadata(path)
    n, m = iid.size, sid.size
    block_size = block_size or default_block_size(n)
    delayed = dask.delayed

    with _scheduler(client) as scheduler:
        # In-process and one task at a time: bed-reader may decode on every core. Elsewhere, one
        # thread a task, as Dask runs tasks side by side.
        read = _Reader(bed, n, m, threads=None if scheduler == "sync" else 1)

        def compute(*objs):
            # The graph carries the per-marker constants (~40 bytes a marker): large by design.
            with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1TB"}):
                return dask.compute(*objs, scheduler=scheduler)

        # Pass 1: per-marker counts (and missing calls per individual if that filter is on).
        per_individual = min_individual_call_rate is not None
        stats = compute(*[delayed(_block_stats)(read, None, cols, per_individual) for cols in _blocks(m, block_size)])
        counts = np.concatenate([c for c, _ in stats])
        n_missing_in = int(n * m - counts.sum())
        rows, dropped_ids = None, ()
        if per_individual:
            missing = np.sum([miss for _, miss in stats], axis=0)
            keep = individual_filter(
                missing, n_markers=m, min_individual_call_rate=min_individual_call_rate, source=source
            )
            if not keep.all():  # the counts must be those of the individuals kept: one more pass
                rows, dropped_ids = np.flatnonzero(keep), tuple(iid[~keep])
                stats = compute(*[delayed(_block_stats)(read, rows, c, False) for c in _blocks(m, block_size)])
                counts = np.concatenate([c for c, _ in stats])
        del stats
        n_kept = n if rows is None else rows.size

        keep_markers, dropped = marker_filter(
            MarkerStats.from_counts(counts),
            sid,
            n_individuals=n_kept,
            max_count=MAX_COUNT[ADDITIVE],
            min_call_rate=min_call_rate,
            min_maf=min_maf,
            source=source,
        )
        if n_kept < 2:
            raise InputError(f"{source}: at least 2 individuals are needed, {n_kept} left after QC.")
        kept = np.flatnonzero(keep_markers)
        counts = counts[kept]
        report = QCReport(
            source=source,
            coding=ADDITIVE,
            n_individuals_in=n,
            n_markers_in=m,
            n_missing_in=n_missing_in,
            min_maf=min_maf,
            min_call_rate=min_call_rate,
            min_individual_call_rate=min_individual_call_rate,
            dropped_individuals=dropped_ids,
            dropped_markers=dropped,
            n_missing_out=int((n_kept - counts.sum(axis=1)).sum()),
        )
        fitted = scaling_from_stats(
            MarkerStats.from_counts(counts),
            scaling=scaling,
            markers=sid[kept],
            coding=ADDITIVE,
            n_individuals=n_kept,
            allele_freq=_file_allele_freq(allele_freq, m, kept),
            source=source,
        )

        # Pass 2: W_b W_b' per block of kept markers, summed by a tree of reductions.
        partials = [
            delayed(_block_gram)(
                read,
                rows,
                _as_slice(kept[cols]),
                dataclasses.replace(subset_scaling(fitted, cols), denominator=1.0),  # each task: plain W_b W_b'
                dtype,
            )
            for cols in _blocks(kept.size, block_size)
        ]
        (G,) = compute(_tree_sum(partials, split_every, delayed))

    if not G.flags.writeable:  # arrays that arrive from a worker may be read-only views of a buffer
        G = G.copy()
    G /= dtype.type(fitted.denominator)  # once, at the end, as in memory
    return Relationship(
        matrix=G,
        ids=iid if rows is None else iid[rows],
        scaling=scaling,
        n_markers=kept.size,
        denominator=fitted.denominator,
        marker_scaling=fitted,
        qc_report=report,
    )


def default_block_size(n: int) -> int:
    """Markers per task when ``block_size`` is not given, for ``n`` individuals."""
    return int(np.clip(_BLOCK_BYTES // n, _BLOCK_MIN, _BLOCK_MAX))


def _import_dask():
    try:
        import dask
    except ImportError as exc:
        raise InputError(
            "computing G from a .bed with Dask needs the optional extra: pip install 'bayesblup[dask]'"
        ) from exc
    return dask


@contextlib.contextmanager
def _scheduler(client) -> Iterator:
    """Yield what ``dask.compute(scheduler=...)`` takes, connecting to an address if given one."""
    if client is None:
        from dask.base import get_scheduler

        # The configured scheduler or the active distributed Client; else one task at a time here.
        yield get_scheduler() or "sync"
        return
    if not isinstance(client, str):
        yield client
        return
    try:
        from distributed import Client
    except ImportError as exc:
        raise InputError("a scheduler address needs dask.distributed: pip install 'bayesblup[dask]'") from exc
    try:
        # Not the default client: the caller's own default (if any) is left as it was.
        connected = Client(client, set_as_default=False)
    except (OSError, ValueError) as exc:  # TimeoutError is an OSError; a malformed address a ValueError
        raise InputError(f"cannot connect to the Dask scheduler at {client} ({type(exc).__name__}: {exc}).") from exc
    with connected:
        yield connected


def _plink_metadata(path) -> tuple[str, str, np.ndarray, np.ndarray]:
    """The .bed as named (for reports) and absolute (for workers), IIDs and marker names.

    The .bed's size is checked against the counts of IIDs and markers.
    """
    from bed_reader import open_bed

    files = plink_files(path)
    bed = files[".bed"].resolve()
    try:
        with open_bed(bed, count_A1=True) as reader:  # reads the .fam and .bim, not the calls
            iid, sid = reader.iid, reader.sid
    except Exception as exc:  # bed-reader raises several types for a corrupt set
        raise InputError(f"PLINK set {bed.with_suffix('')}: cannot be read ({type(exc).__name__}: {exc}).") from exc
    check_plink_iids(iid, files[".fam"])
    n, m = iid.size, sid.size
    # SNP-major layout: 3 magic bytes, then ceil(n/4) bytes per marker. A mismatch would otherwise
    # surface as an error inside a worker, in the middle of the computation.
    expected = 3 + m * -(-n // 4)
    size = bed.stat().st_size
    if size != expected:
        raise InputError(
            f"{bed}: {size} bytes where {n} individuals x {m} markers (.fam x .bim) need {expected} in SNP-major "
            "order; the .bed is truncated, individual-major, or from another set. Rewrite it with plink --make-bed."
        )
    return str(files[".bed"]), str(bed), _labels(iid, what="ids", expected=n), _labels(sid, what="markers", expected=m)


def _file_allele_freq(allele_freq, m: int, kept: np.ndarray):
    """Base frequencies for the kept markers: a Series passes through (aligned by name later)."""
    if allele_freq is None or isinstance(allele_freq, pd.Series):
        return allele_freq
    p = np.asarray(allele_freq, dtype=float)
    if p.shape != (m,):
        raise InputError(
            f"allele_freq must hold one frequency per marker of the .bim ({m}), got shape {p.shape}. "
            "Pass a pandas Series indexed by marker name to align by name."
        )
    return p[kept]


def _blocks(m: int, block_size: int) -> list[slice]:
    return [slice(j, min(m, j + block_size)) for j in range(0, m, block_size)]


def _as_slice(columns: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive markers as a slice: cheaper to ship to a worker and to read."""
    if columns[-1] - columns[0] + 1 == columns.size:
        return slice(int(columns[0]), int(columns[-1]) + 1)
    return columns


@dataclasses.dataclass(frozen=True)
class _Reader:
    """What a task needs to read a block of calls from the .bed: small, so it travels in the graph."""

    bed: str
    n: int
    m: int
    threads: int | None  # bed-reader's decoding threads; None = every core

    def read(self, rows: np.ndarray | None, cols) -> np.ndarray:
        """The int8 calls of ``rows`` (None: all) x ``cols`` (missing = -127, our MISSING)."""
        from bed_reader import open_bed

        # With the counts given, bed-reader opens the .bed alone, not the .fam/.bim (large for big m).
        with open_bed(self.bed, iid_count=self.n, sid_count=self.m, count_A1=True, num_threads=self.threads) as bed:
            return bed.read(index=(rows, cols), dtype="int8", order="F", num_threads=self.threads)


def _block_stats(read: _Reader, rows, cols, per_individual: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Pass 1 task: counts of 0/1/2 per marker, and missing calls per individual if asked."""
    calls = read.read(rows, cols)
    missing = (calls == MISSING).sum(axis=1) if per_individual else None
    return allele_counts(calls), missing


def _block_gram(read: _Reader, rows, cols, scaling: MarkerScaling, dtype: np.dtype) -> np.ndarray:
    """Pass 2 task: ``W_b W_b'`` (n x n) of one block, scaled and imputed exactly as in memory."""
    return relationship_matrix(read.read(rows, cols), scaling, dtype=dtype)


def _add(*parts: np.ndarray) -> np.ndarray:
    # A new array rather than adding into an input: a retried task must find its inputs intact.
    total = parts[0] + parts[1]
    for part in parts[2:]:
        total += part
    return total


def _tree_sum(parts: list, split_every: int, delayed):
    """Sum delayed arrays by a tree of reductions, ``split_every`` at a time."""
    while len(parts) > 1:
        parts = [
            delayed(_add)(*parts[i : i + split_every]) if len(parts[i : i + split_every]) > 1 else parts[i]
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]
