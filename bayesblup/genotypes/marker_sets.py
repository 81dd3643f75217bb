"""Marker sets: which markers form which genetic term, and W or G per set.

Several marker sets split the genetic value into one term per set (the lecture notes' section 6):
``y = mu + W_1 b_1 + W_2 b_2 + e`` (M-BLUP) or ``y = mu + g_1 + g_2 + e`` with ``g_k ~ N(0, G_k
sigma2_gk)`` (G-BLUP; GFBLUP, genomic feature BLUP, with a feature set and the rest). Each set's W_k
is the set's columns of the whole W, so the per-marker centring and scaling are those of the
single-set model; each set's own denominator makes ``G_k = W_k W_k' / c_k``: ``c_k = m_k`` for the
standardised scalings and ``nu_p`` over the set's markers for ``centered``, so that ``sigma2_gk =
c_k sigma2_bk``.

Sets are given as a CSV with columns ``marker,set``, a mapping ``{set: [marker names or column
indices]}``, or a pandas Series (index marker, value set). Markers in no set go to the set named by
``rest`` (default ``"rest"``), or are left out of the model with ``rest=None``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..names import STANDARDIZED
from .calls import Genotypes
from .relationship import Relationship, relationship_matrix
from .scaling import GenotypeMatrix, fit_scaling, subset_scaling

__all__ = [
    "MarkerSets",
    "genotype_matrices_by_set",
    "marker_sets",
    "read_marker_sets",
    "relationships_by_set",
    "subset_scaling",
]

_SET_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class MarkerSets:
    """Marker sets resolved against a marker list: ``{set: column indices}``, in order.

    Attributes
    ----------
    columns : dict of str to ndarray of int
        Column positions (into ``markers``) of each set, in the order the sets were given; the
        ``rest`` set, if any, comes last.
    markers : ndarray of str
        The marker names the positions refer to.
    unused : ndarray of str
        Markers in no set and left out of the model (``rest=None``).
    dropped : ndarray of str
        Markers named by a set but removed by quality control before the split.
    """

    columns: dict[str, np.ndarray]
    markers: np.ndarray
    unused: np.ndarray
    dropped: np.ndarray

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def sizes(self) -> dict[str, int]:
        """``m_k``, the number of markers of each set."""
        return {name: int(cols.size) for name, cols in self.columns.items()}

    def to_dict(self) -> dict:
        return {
            "sizes": self.sizes,
            "n_unused": int(self.unused.size),
            "n_dropped_by_qc": int(self.dropped.size),
        }


def read_marker_sets(path: str | os.PathLike) -> pd.Series:
    """Read a CSV with columns ``marker`` and ``set`` into a Series (index marker, value set).

    Raises
    ------
    InputError
        If the file lacks either column, a marker appears twice, or a set or marker is blank.
    """
    from ..files import check_input_file

    path = Path(path)
    check_input_file(path, "marker sets", "a CSV file with columns marker,set")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the marker sets {path}: {exc}; expected a CSV file with a header 'marker,set' and one "
            "row per marker."
        ) from exc
    missing = {"marker", "set"} - set(table.columns)
    if missing:
        raise InputError(
            f"{path}: the marker sets file needs columns 'marker' and 'set' (one row per marker); it lacks "
            f"{', '.join(sorted(missing))} (it has {', '.join(map(str, table.columns))})."
        )
    for column in ("set", "marker"):
        blank = table[column].str.strip() == ""
        if blank.any():
            rows = (np.flatnonzero(blank.to_numpy()) + 2).tolist()  # +2: header line, 1-based
            raise InputError(
                f"{path}: {int(blank.sum())} rows have no {column} (lines {preview(rows)}); fill or drop them."
            )
    return _as_series(table.set_index("marker")["set"], source=str(path))


def _as_series(mapping: pd.Series, *, source: str) -> pd.Series:
    mapping = mapping.astype(str).str.strip()
    mapping.index = mapping.index.astype(str).str.strip()
    counts = mapping.index.value_counts()
    twice = counts.index[counts > 1]
    if len(twice):
        raise InputError(
            f"{source}: {len(twice)} markers are in more than one row: {preview(sorted(twice))}; each marker "
            "belongs to one set (the terms must not share markers)."
        )
    return mapping


def _check_name(name: str, source: str) -> str:
    if not _SET_NAME.match(name):
        raise InputError(
            f"{source}: set name {name!r} must be letters, digits, '_', '.' or '-' (it names output columns and "
            "parameters such as sigma2_g_<set>)."
        )
    return name


def marker_sets(
    sets,
    markers,
    *,
    rest: str | None = "rest",
    dropped=(),
) -> MarkerSets:
    """Resolve marker sets against the markers of the (quality-controlled) genotypes.

    Parameters
    ----------
    sets : str, path, pandas.Series or mapping
        A CSV path with columns ``marker,set``; a Series indexed by marker with the set as value; or
        ``{set: markers}`` with marker names or integer column positions.
    markers : sequence of str
        Marker names of the genotypes, in column order.
    rest : str or None
        Name of the set that takes every marker in no set; ``None`` leaves those markers out.
    dropped : sequence of str
        Markers removed by quality control; a set may name them (they are reported, not used).

    Returns
    -------
    MarkerSets

    Raises
    ------
    InputError
        On unknown markers, a marker in two sets, an empty set, fewer than two sets, or a bad name.

    Examples
    --------
    >>> s = marker_sets({"feature": ["m1", "m3"]}, ["m1", "m2", "m3", "m4"])
    >>> {k: v.tolist() for k, v in s.columns.items()}
    {'feature': [0, 2], 'rest': [1, 3]}
    """
    markers = np.asarray([str(m) for m in markers], dtype=object)
    position = {name: j for j, name in enumerate(markers)}
    dropped_set = {str(m) for m in dropped}
    source = "marker sets"
    if isinstance(sets, (str, os.PathLike)):
        source = str(sets)
        sets = read_marker_sets(sets)
    if isinstance(sets, pd.Series):
        sets = _as_series(sets, source=source)
        grouped = {str(k): list(v.index) for k, v in sets.groupby(sets, sort=False)}
    elif isinstance(sets, Mapping):
        grouped = {str(k): list(np.atleast_1d(np.asarray(v, dtype=object))) for k, v in sets.items()}
    else:
        raise InputError(
            "sets must be a CSV path (marker,set), a pandas Series or a dict of marker lists; "
            f"got {type(sets).__name__}."
        )
    columns: dict[str, np.ndarray] = {}
    owner = np.full(markers.size, -1)
    unknown: list[str] = []
    used_dropped: dict[str, list[str]] = {}
    for k, (name, members) in enumerate(grouped.items()):
        _check_name(name, source)
        cols = []
        for item in members:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if not 0 <= int(item) < markers.size:
                    raise InputError(f"{source}: set {name!r} has column {int(item)}, outside 0..{markers.size - 1}.")
                cols.append(int(item))
            elif str(item) in position:
                cols.append(position[str(item)])
            elif str(item) in dropped_set:
                used_dropped.setdefault(name, []).append(str(item))
            else:
                unknown.append(str(item))
        cols = np.array(sorted(set(cols)), dtype=np.intp)
        shared = cols[owner[cols] >= 0]
        if shared.size:
            other = list(grouped)[owner[shared[0]]]
            raise InputError(
                f"{source}: {shared.size} markers are in both {other!r} and {name!r}: {preview(markers[shared])}. "
                "Each marker belongs to one set."
            )
        owner[cols] = k
        columns[name] = cols
    if unknown:
        raise InputError(
            f"{source}: {len(unknown)} markers are not in the genotypes: {preview(unknown)}. Check the marker names "
            "(they must match the genotype file's header exactly)."
        )
    empty = [name for name, cols in columns.items() if not cols.size]
    if empty:
        gone = [m for name in empty for m in used_dropped.get(name, [])]
        why = f" (its markers {preview(gone)} were dropped by quality control)" if gone else " (it names no marker)"
        raise InputError(
            f"{source}: set(s) {preview(empty)} have no marker left in the genotypes{why}; add markers to the set "
            "or drop it."
        )
    left = np.flatnonzero(owner < 0)
    unused = np.empty(0, dtype=object)
    if left.size and rest is not None:
        _check_name(rest, "rest")
        if rest in columns:
            raise InputError(
                f"{source}: a set is already called {rest!r}, and {left.size} markers are in no set; name the "
                "remainder otherwise (rest=...) or assign every marker."
            )
        columns[rest] = left
    elif left.size:
        unused = markers[left]
    if len(columns) < 2:
        raise InputError(
            f"{source}: {len(columns)} set(s) ({preview(list(columns))}); several marker sets need at least two. "
            "With every marker in one set, fit the single-kernel model instead."
        )
    dropped_named = {m for names in used_dropped.values() for m in names}
    return MarkerSets(columns, markers, unused, np.asarray(sorted(dropped_named), dtype=object))


def _resolve(genotypes: Genotypes, sets, *, scaling, allele_freq, rest, dropped):
    if not isinstance(genotypes, Genotypes):
        raise InputError("genotypes must be bayesblup.Genotypes (after quality_control).")
    if isinstance(sets, MarkerSets):
        resolved = sets
    else:
        resolved = marker_sets(sets, genotypes.markers, rest=rest, dropped=dropped)
    if resolved.markers.size != genotypes.n_markers or (resolved.markers != genotypes.markers).any():
        raise InputError("the marker sets were resolved against other markers than these genotypes'.")
    return resolved, fit_scaling(genotypes, scaling=scaling, allele_freq=allele_freq)


def genotype_matrices_by_set(
    genotypes: Genotypes,
    sets,
    *,
    scaling: str = STANDARDIZED,
    allele_freq=None,
    rest: str | None = "rest",
    dropped=(),
) -> dict[str, GenotypeMatrix]:
    """``{set: W_k}``: each set's columns of W, with the set's own denominator (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesblup import Genotypes
    >>> geno = Genotypes.from_array(np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]]), ids=["a", "b", "c"])
    >>> parts = genotype_matrices_by_set(geno, {"first": [0]})
    >>> {k: (W.values.shape, W.scaling.denominator) for k, W in parts.items()}
    {'first': ((3, 1), 1.0), 'rest': ((3, 2), 2.0)}
    """
    resolved, fitted = _resolve(genotypes, sets, scaling=scaling, allele_freq=allele_freq, rest=rest, dropped=dropped)
    out = {}
    for name, cols in resolved.columns.items():
        part = subset_scaling(fitted, cols)
        # The subset's per-marker constants are already cut, so its block is all of its columns.
        values = part.transform_block(genotypes.calls[:, cols], slice(None))
        out[name] = GenotypeMatrix(values, genotypes.ids, part)
    return out


def relationships_by_set(
    genotypes: Genotypes,
    sets,
    *,
    scaling: str = STANDARDIZED,
    allele_freq=None,
    rest: str | None = "rest",
    dropped=(),
    dtype=np.float64,
) -> dict[str, Relationship]:
    """``{set: G_k}`` with ``G_k = W_k W_k' / c_k`` (see the module docstring).

    With the standardised scalings the sets' kernels add up to the whole G weighted by their marker
    shares: ``sum_k m_k G_k = m G``.
    """
    resolved, fitted = _resolve(genotypes, sets, scaling=scaling, allele_freq=allele_freq, rest=rest, dropped=dropped)
    out = {}
    for name, cols in resolved.columns.items():
        part = subset_scaling(fitted, cols)
        G = relationship_matrix(np.ascontiguousarray(genotypes.calls[:, cols]), part, dtype=dtype)
        out[name] = Relationship(G, genotypes.ids, scaling, int(cols.size), part.denominator, part)
    return out
