"""Marker maps: where each marker lies on the genome (chromosome and position), to draw effects along it.

A map is a PLINK ``.bim`` (chromosome, marker, cM, base-pair position, alleles; whitespace-separated, no header)
or a CSV with the columns ``marker,chromosome,position`` (others ignored), or a DataFrame with those columns.
:func:`read_marker_map` reads and checks one; :func:`place_markers` gives the map's rows for a fit's markers in
the fit's order, refusing markers the map lacks; :func:`chromosome_order` sorts chromosome names as a geneticist
reads them (1, 2, ..., 10, X, Y, MT; wheat's 1A, 1B, 1D, 2A, ...; unplaced 0 last).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, preview

__all__ = ["MAP_COLUMNS", "check_marker_map", "chromosome_order", "place_markers", "read_marker_map"]

#: The columns of a map: the marker's name, its chromosome (a label: 1, 2, X, 1A ...) and its position on it.
MAP_COLUMNS = ("marker", "chromosome", "position")

_EXPECTED = "a PLINK .bim, or a CSV with columns marker,chromosome,position"


def read_marker_map(path: str | os.PathLike) -> pd.DataFrame:
    """Read a marker map: a PLINK ``.bim`` (base-pair positions) or a CSV ``marker,chromosome,position``.

    Returns
    -------
    pandas.DataFrame
        Columns ``marker`` (str), ``chromosome`` (str) and ``position`` (float), one row per marker, in file order.

    Raises
    ------
    InputError
        In one line, naming the file: unreadable, a missing column, a blank marker or chromosome, a duplicated
        marker, or a position that is not a number (or is negative).
    """
    from ..files import check_input_file

    path = Path(path)
    check_input_file(path, "marker map", _EXPECTED)
    bim = path.suffix.lower() == ".bim"
    try:
        if bim:  # chromosome, marker, cM, bp, A1, A2
            table = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False, usecols=[0, 1, 3])
            table.columns = ["chromosome", "marker", "position"]
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        layout = "six whitespace-separated columns per marker" if bim else "a header marker,chromosome,position"
        raise InputError(
            f"{path}: cannot be read as a marker map ({type(exc).__name__}: {exc}); expected {layout}."
        ) from exc
    return check_marker_map(table, source=str(path), line_offset=1 if bim else 2)


def check_marker_map(table: pd.DataFrame, *, source: str = "the marker map", line_offset: int = 2) -> pd.DataFrame:
    """Check a map's columns and values; returns ``marker, chromosome, position`` as str, str, float.

    ``line_offset`` turns a row index into the file's line number in messages (2: a header line; 1: none).
    """
    table = pd.DataFrame(table)
    missing = [c for c in MAP_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"{source}: a marker map needs the columns marker, chromosome and position; it lacks "
            f"{', '.join(missing)} (it has {', '.join(map(str, table.columns))}). Give {_EXPECTED}."
        )
    if table.empty:
        raise InputError(f"{source}: the marker map has no rows; expected one row per marker.")
    out = pd.DataFrame({"marker": table["marker"], "chromosome": table["chromosome"]}).astype(str)
    for column in ("marker", "chromosome"):
        blank = out[column].str.strip().isin(["", "nan", "NA", "None"]) | table[column].isna().to_numpy()
        if blank.any():
            lines = np.flatnonzero(blank.to_numpy()) + line_offset
            raise InputError(f"{source}: {int(blank.sum())} row(s) have no {column} (lines {preview(lines)}).")
        out[column] = out[column].str.strip()
    position = pd.to_numeric(table["position"], errors="coerce")
    bad = position.isna().to_numpy() | ~np.isfinite(position.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{source}: position {table['position'].iloc[row]!r} of marker {out['marker'].iloc[row]} (line "
            f"{row + line_offset}) is not a number; {int(bad.sum())} such row(s). Positions are numbers (base pairs "
            "or cM)."
        )
    if (position < 0).any():
        row = int(np.flatnonzero((position < 0).to_numpy())[0])
        raise InputError(
            f"{source}: position {position.iloc[row]:g} of marker {out['marker'].iloc[row]} is negative; positions "
            "count from the start of the chromosome."
        )
    duplicated = out["marker"].duplicated()
    if duplicated.any():
        raise InputError(
            f"{source}: marker(s) listed twice: {preview(out['marker'][duplicated].unique())}; a map gives each "
            "marker one place."
        )
    out["position"] = position.to_numpy(dtype=np.float64)
    out.attrs["source"] = source
    return out.reset_index(drop=True)


def place_markers(markers, marker_map: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """The map's rows for ``markers``, in their order; the map's other markers (e.g. dropped by QC) are left out.

    Parameters
    ----------
    markers : sequence of str
        The fit's markers (``fit.marker_effects["marker"]``, or the genotypes' kept markers).
    marker_map : DataFrame or path
        A map with columns ``marker, chromosome, position``, or a file for :func:`read_marker_map`.

    Raises
    ------
    InputError
        If the map lacks any of ``markers``, saying how many and naming the first few.
    """
    if isinstance(marker_map, (str, os.PathLike)):
        marker_map = read_marker_map(marker_map)
    elif "source" not in marker_map.attrs:
        marker_map = check_marker_map(marker_map)
    source = marker_map.attrs.get("source", "the marker map")
    markers = pd.Index(np.asarray(markers, dtype=str))
    unique = markers.unique()
    where = pd.Index(marker_map["marker"]).get_indexer(unique)
    absent = unique[where < 0]
    if absent.size:
        raise InputError(
            f"{source} lacks {absent.size} of the fit's {unique.size} markers ({preview(absent, 5)}); give a map "
            "with every marker of the fit (the genotypes' marker names)."
        )
    placed = marker_map.iloc[pd.Index(marker_map["marker"]).get_indexer(markers)].reset_index(drop=True)
    placed.attrs["source"] = source
    return placed


#: Sex and organelle chromosomes after the autosomes, in this order.
_NAMED = ("X", "Y", "XY", "Z", "W", "MT", "M")
_LEADING = re.compile(r"^(\d+)(.*)$")


def _chromosome_key(name: str) -> tuple:
    bare = re.sub(r"^(chr|chrom|chromosome)[_ ]?", "", str(name), flags=re.IGNORECASE)
    number = _LEADING.match(bare)
    if number and int(number.group(1)) == 0 and not number.group(2):
        return (3, 0, "")  # PLINK's 0: unplaced, last
    if number:
        return (0, int(number.group(1)), number.group(2).upper())
    upper = bare.upper()
    if upper in _NAMED:
        return (1, _NAMED.index(upper), "")
    return (2, 0, upper)


def chromosome_order(names) -> list[str]:
    """The distinct chromosome names in natural order: 1, 2, ..., 10 (1A, 1B, 1D, 2A ...), X, Y, MT, others, 0."""
    return sorted({str(n) for n in names}, key=_chromosome_key)
