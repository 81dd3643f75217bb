"""Reading genotypes and relationship matrices, and writing outputs without losing anything.

Readers turn files into :class:`~bayesblup.genotypes.Genotypes` (CSV, CSV.gz, PLINK .bed/.bim/.fam, and
VCF, VCF.gz, BCF through :mod:`bayesblup.genotypes.vcf`) or
:class:`~bayesblup.genotypes.relationship.Relationship` (CSV or NPZ). Writers refuse to replace an existing file
unless told to (``force=True``), and write to a temporary file that is renamed into place, so an interrupted
write never leaves a half-written output under the final name.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..files import atomic_output, check_input_file, check_new_output, delimiter_hint, open_text
from ..names import ADDITIVE
from .calls import MARKER_MAP_COLUMNS, Genotypes
from .relationship import Relationship, check_relationship
from .vcf import is_vcf, read_vcf

__all__ = [
    "read_allele_freq",
    "read_genotypes",
    "read_genotypes_csv",
    "read_plink",
    "read_relationship",
    "read_vcf",
    "write_relationship",
]

_PLINK_SUFFIXES = (".bed", ".bim", ".fam")


def is_csv(path: Path) -> bool:
    return path.name.lower().endswith((".csv", ".csv.gz"))


def read_genotypes(path: str | os.PathLike, *, coding: str = "auto", vcf_field: str = "auto") -> Genotypes:
    """Read genotypes from a CSV/CSV.gz file, a PLINK .bed/.bim/.fam set, or a VCF/VCF.gz/BCF file.

    Parameters
    ----------
    path : path-like
        A ``.csv`` or ``.csv.gz`` file (see :func:`read_genotypes_csv`), a PLINK ``.bed``
        file or the prefix of a ``.bed/.bim/.fam`` set (see :func:`read_plink`), or a ``.vcf``,
        ``.vcf.gz`` or ``.bcf`` file (see :func:`read_vcf`; needs ``pip install "bayesblup[vcf]"``).
    coding : {"auto", "additive", "presence-absence"}
        Genotype coding of a CSV file; PLINK and VCF calls are always additive 0/1/2 counts.
    vcf_field : {"auto", "GT", "DS"}
        What a VCF's calls are read from (:func:`read_vcf`'s ``field``); GT or DS for another format is refused,
        as ``coding`` is for PLINK.
    """
    path = Path(path)
    if vcf_field != "auto" and not is_vcf(path):
        raise InputError(
            f"vcf_field={vcf_field!r} (--vcf-field) chooses a VCF's GT calls or DS dosages; {path} is not a .vcf, "
            ".vcf.gz or .bcf file: drop it."
        )
    if is_csv(path):
        return read_genotypes_csv(path, coding=coding)
    if is_vcf(path):
        if coding not in ("auto", ADDITIVE):
            raise InputError(f"VCF files hold ALT allele counts 0/1/2 (or dosages); coding={coding!r} does not apply.")
        return read_vcf(path, field=vcf_field)
    if is_plink(path):
        if coding not in ("auto", ADDITIVE):
            raise InputError(f"PLINK files hold 0/1/2 allele counts; coding={coding!r} does not apply.")
        return read_plink(path)
    raise InputError(
        f"cannot tell the format of {path}: give a .csv or .csv.gz genotype file, a PLINK .bed "
        "file (or the prefix of its .bed/.bim/.fam set), or a .vcf, .vcf.gz or .bcf file."
    )


def is_plink(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a PLINK set: a .bed/.bim/.fam file, or a prefix with a .bed beside it."""
    path = Path(path)
    return (
        not is_csv(path)
        and not is_vcf(path)
        and (path.suffix.lower() in _PLINK_SUFFIXES or Path(f"{path}.bed").exists())
    )


def plink_files(path: str | os.PathLike) -> dict[str, Path]:
    """The ``.bed``, ``.bim`` and ``.fam`` files of a PLINK set, given one of them or their prefix.

    Raises
    ------
    InputError
        If any of the three is missing.
    """
    path = Path(path)
    prefix = path.with_suffix("") if path.suffix.lower() in _PLINK_SUFFIXES else path
    files = {suffix: Path(f"{prefix}{suffix}") for suffix in _PLINK_SUFFIXES}
    absent = [str(f) for f in files.values() if not f.is_file()]
    if absent:
        raise InputError(
            f"PLINK set {prefix}: missing file(s) {', '.join(absent)}; a set needs .bed, .bim and .fam with one "
            "prefix: put the missing file(s) beside the others."
        )
    return files


def _count_lines(path: Path) -> int:
    """Non-blank lines of a text file, read in binary chunks (a .bim can hold millions)."""
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def check_plink_set(files: dict[str, Path]) -> None:
    """Refuse a set whose .bed does not hold exactly the calls of the .fam's individuals at the .bim's markers.

    The .bed's size must be ``3 + m ceil(n / 4)`` (SNP-major). Where n is not a multiple of 4, the unused
    bits closing each marker's block must be zero, as PLINK writes them: set bits mean calls of individuals
    the .fam does not list, whose IDs would otherwise shift silently.
    """
    bed, fam, bim = files[".bed"], files[".fam"], files[".bim"]
    n, m = _count_lines(fam), _count_lines(bim)
    per_marker = -(-n // 4)
    expected, size = 3 + m * per_marker, bed.stat().st_size
    same_set = "the three files must come from the same set: re-export them together (plink --make-bed)."
    if size != expected:
        raise InputError(
            f"PLINK set {bed.with_suffix('')}: cannot be read: {bim.name} lists {m} markers and {fam.name} {n} "
            f"individuals, so {bed.name} should hold 3 + {m} x {per_marker} = {expected} bytes (SNP-major), but it "
            f"holds {size}; {same_set}"
        )
    used = n % 4
    if used and m:
        last = np.memmap(bed, dtype=np.uint8, mode="r", offset=3, shape=(m, per_marker))[:, -1]
        spill = int(np.count_nonzero(np.asarray(last) >> (2 * used)))
        if spill:
            raise InputError(
                f"PLINK set {bed.with_suffix('')}: {fam.name} lists {n} individuals, but {bed.name} holds calls for "
                f"more (the unused bits after individual {n} are set at {spill} of {m} markers; PLINK writes them "
                f"as zeros), so the .fam is missing individuals; {same_set}"
            )


def check_plink_iids(iid: np.ndarray, fam: Path) -> None:
    """Refuse a .fam whose within-family IDs repeat: they label the rows of G."""
    names, counts = np.unique(iid, return_counts=True)
    if (counts > 1).any():
        raise InputError(
            f"{fam}: within-family IDs (IID, column 2) repeat across families: "
            f"{preview(names[counts > 1])}. Make IIDs unique (e.g. FID_IID) before reading."
        )


def _csv_header(path: Path) -> list[str]:
    check_input_file(path, "genotype", "a .csv or .csv.gz file, a PLINK .bed file or prefix, or a VCF")
    try:
        with open_text(path) as handle:
            header = next(csv.reader(handle), None)
    except PermissionError as exc:
        raise InputError(f"{path}: permission denied; give yourself read access to it (chmod u+r).") from exc
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(
            f"{path} cannot be read as a text CSV ({exc}); expected comma-separated text, gzip-compressed when the "
            "name ends in .gz: save it as such (for binary genotypes, give a PLINK .bed)."
        ) from exc
    layout = "an ID column name, then one marker name per column"
    if not header:
        raise InputError(
            f"{path} is empty or starts with a blank line; expected a header line ({layout}) and one row per "
            "individual."
        )
    if len(header) < 2:
        raise InputError(
            f"{path}: the header holds a single column{delimiter_hint(header[0])}; expected {layout}, "
            "comma-separated: save the file as CSV (comma-separated)."
        )
    markers = header[1:]
    names, counts = np.unique(markers, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"{path}: duplicated marker name(s) in the header: {preview(names[counts > 1])}.")
    return header


def _first_bad_cell(path: Path, header: list[str]) -> str:
    """Find the first cell that is neither a number nor missing, for the error message."""
    raw = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=True)
    for j, name in enumerate(raw.columns):
        values = raw[name]
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna() & values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            return f"{values.iloc[row]!r} at individual {raw.index[row]}, marker {header[j + 1]} (data row {row + 1})"
    return "a value pandas could not parse"


def read_genotypes_csv(path: str | os.PathLike, *, coding: str = "auto") -> Genotypes:
    """Read allele counts from a CSV or CSV.gz file.

    The first column holds the individual ID; the header holds an ID column name followed by
    the marker names; each cell is an allele count (0/1/2, or 0/1 for presence/absence). An empty
    cell or ``NA`` (or any pandas default missing marker) is a missing call.

    Raises
    ------
    InputError
        Naming the file and the first offending cell for text, non-integer or out-of-range codes,
        a missing or duplicated ID, or a ragged row.
    """
    path = Path(path)
    header = _csv_header(path)
    raw = _file_bytes(path)  # read once: the fast parse, pandas' parse and the row-length check all use it
    fast = _read_plain_calls(path, len(header) - 1, raw)
    if fast is not None:
        ids, calls = fast
        return Genotypes.from_array(calls, ids=ids, markers=header[1:], coding=coding, source=str(path))
    try:
        resolved = list(pd.read_csv(io.BytesIO(raw), nrows=0).columns)  # pandas' names for the same header
        dtypes = {resolved[0]: str} | dict.fromkeys(resolved[1:], "float32")
        frame = pd.read_csv(io.BytesIO(raw), index_col=0, dtype=dtypes, keep_default_na=True)
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: malformed CSV ({exc}). Every row needs one ID and one call per marker.") from exc
    except (ValueError, TypeError) as exc:  # (a truncated gzip was refused as its bytes were read)
        raise InputError(
            f"{path}: genotype calls must be numbers; found {_first_bad_cell(path, header)}. Mark missing "
            "calls with an empty cell or NA."
        ) from exc
    if frame.shape[0] == 0:
        raise InputError(
            f"{path}: no data rows under the header; expected one row per individual (its ID, then one call per "
            "marker)."
        )
    no_id = np.flatnonzero(frame.index.isna())
    if no_id.size:
        raise InputError(f"{path}: data row(s) {preview(no_id + 1)} have no individual ID in the first column.")
    _check_row_lengths(path, raw, len(header), frame.shape[0])
    return Genotypes.from_array(
        frame.to_numpy(dtype=np.float32), ids=frame.index, markers=header[1:], coding=coding, source=str(path)
    )


#: What pandas reads as a missing value (its default ``na_values``, and the empty field): an ID among them is no ID.
_PANDAS_NA = frozenset(
    "#N/A #N/A N/A #NA -1.#IND -1.#QNAN -NaN -nan 1.#IND 1.#QNAN <NA> N/A NA NULL NaN None n/a nan null".split()
) | {""}


def _read_plain_calls(path: Path, n_markers: int, raw: bytes | None = None) -> tuple[list[str], np.ndarray] | None:
    """The IDs and int8 calls of a CSV whose every data row is an ID then single-digit calls 0, 1 or 2; else None.

    Such a file (what genotype tables mostly are) is parsed straight from its bytes, checked cell by cell: each
    row after its ID has exactly ``2 m - 1`` bytes, a comma at every second one and a digit 0-2 at the others.
    Anything else (a missing call, a quoted ID, a decimal, a short row) returns None, and pandas reads the file
    with the checks and messages of :func:`read_genotypes_csv`. Measured on 1814 x 10,346 calls (a 7 MB .csv.gz):
    0.3 s against 3.4 s through pandas with float32 columns.
    """
    if raw is None:  # the caller has not read the file's bytes
        try:
            raw = _file_bytes(path)
        except OSError:
            return None
    lines = raw.split(b"\n")
    if lines and lines[-1] in (b"", b"\r"):
        lines.pop()
    body = lines[1:]
    width = 2 * n_markers - 1
    ids, rest = [], []
    for line in body:
        line = line.removesuffix(b"\r")
        cut = line.find(b",")
        if cut <= 0 or len(line) - cut - 1 != width or line.startswith(b'"'):
            return None
        ids.append(line[:cut])
        rest.append(line[cut + 1 :])
    if not body:
        return None
    cells = np.frombuffer(b"".join(rest), dtype=np.uint8).reshape(len(body), width)
    digits = cells[:, 0::2] - np.uint8(ord("0"))
    if not (cells[:, 1::2] == ord(",")).all() or (digits > 2).any():
        return None
    try:
        names = [i.decode("utf-8") for i in ids]
    except UnicodeDecodeError:
        return None
    if any(name.strip() in _PANDAS_NA for name in names):  # pandas' path names the row without an ID
        return None
    return names, digits.astype(np.int8)


def _file_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed for a .gz; a truncated or damaged gzip refused in one line."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            return handle.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(_truncated(path, exc)) from exc


def _truncated(path: Path, exc: Exception) -> str:
    return (
        f"{path}: the compressed file ends early or is damaged ({type(exc).__name__}: {exc}); it was probably cut "
        "off in a copy or download: copy it again (gzip -t checks a .gz)."
    )


def _check_row_lengths(path: Path, raw: bytes, n_fields: int, n_rows: int) -> None:
    """Refuse a row with fewer fields than the header (pandas fills them as missing calls, which would be imputed).

    A file cut off mid-row, or a call without its comma, is such a row. The quick test counts the commas (each
    row, header included, holds ``n_fields - 1``); only when that count is off are the rows parsed one by one,
    so that quoted fields holding commas are not taken for extra ones.
    """
    if raw.count(b",") == (n_rows + 1) * (n_fields - 1):
        return
    rows = csv.reader(raw.decode("utf-8-sig", errors="replace").splitlines())
    next(rows, None)
    for k, row in enumerate((r for r in rows if r), start=1):
        if len(row) < n_fields:
            cut = "; the file may be cut off there" if k == n_rows else ""
            raise InputError(
                f"{path}: data row {k} (individual {row[0]}) has {len(row)} fields where the header has {n_fields}"
                f"{cut}. Every row needs one ID and one call per marker; mark a missing call with an empty cell "
                "(two commas) or NA."
            )


def read_plink(path: str | os.PathLike) -> Genotypes:
    """Read a PLINK binary set (.bed/.bim/.fam) with bed-reader.

    Calls count the A1 allele (the PLINK convention); PLINK's missing code becomes a missing call.
    Individual IDs are the .fam within-family IDs (IID); ``marker_map`` holds the .bim's chromosome, position
    and alleles (A1 counted, A2 the other).

    Parameters
    ----------
    path : path-like
        The ``.bed`` file, or the prefix shared by the ``.bed``, ``.bim`` and ``.fam`` files.
    """
    from bed_reader import open_bed  # a compiled reader; imported only when needed

    files = plink_files(path)
    check_plink_set(files)
    try:
        with open_bed(files[".bed"], count_A1=True) as bed:
            calls = bed.read(dtype="int8")  # missing calls come back as -127, our MISSING
            iid, sid = bed.iid, bed.sid
            bim = (bed.chromosome, bed.bp_position.astype(np.int64), bed.allele_1, bed.allele_2)
    except Exception as exc:  # bed-reader raises several types for a corrupt set
        prefix = files[".bed"].with_suffix("")
        raise InputError(f"PLINK set {prefix}: cannot be read ({type(exc).__name__}: {exc}).") from exc
    check_plink_iids(iid, files[".fam"])
    marker_map = pd.DataFrame(dict(zip(MARKER_MAP_COLUMNS, bim, strict=True)))
    return Genotypes(
        calls=calls, ids=iid, markers=sid, coding=ADDITIVE, source=str(files[".bed"]), marker_map=marker_map
    )


def _read_table(path: Path, what: str, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` whose failures on unreadable text become an :class:`InputError`."""
    try:
        return pd.read_csv(path, **kwargs)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot be read as a CSV {what} ({type(exc).__name__}: {exc}).") from exc


def read_allele_freq(path: str | os.PathLike) -> pd.Series:
    """Read base-population allele frequencies: a CSV with columns ``marker,p``.

    Returns
    -------
    pandas.Series
        Frequencies indexed by marker name, to pass as ``allele_freq=``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"allele frequency file not found: {path}")
    frame = _read_table(path, "of allele frequencies", dtype={"marker": str})
    if list(frame.columns[:2]) != ["marker", "p"]:
        raise InputError(f"{path}: expected a header 'marker,p', got {','.join(map(str, frame.columns))}.")
    p = pd.to_numeric(frame["p"], errors="coerce")
    if p.isna().any():
        row = int(np.flatnonzero(p.isna().to_numpy())[0])
        raise InputError(
            f"{path}: frequency {frame['p'].iloc[row]!r} for marker {frame['marker'].iloc[row]} is not a number."
        )
    if frame["marker"].duplicated().any():
        raise InputError(f"{path}: duplicated marker(s) {preview(frame['marker'][frame['marker'].duplicated()])}.")
    return pd.Series(p.to_numpy(), index=frame["marker"].to_numpy(), name="p")


RELATIONSHIP_SUFFIXES = (".csv", ".csv.gz", ".npz")


def write_relationship(relationship: Relationship, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write G with its IDs.

    ``.csv`` / ``.csv.gz``: a header ``id,<id_1>,...,<id_n>`` and one row per individual, starting
    with its ID, at full precision (17 significant digits for float64). ``.npz``: arrays ``G`` and
    ``ids``, plus ``scaling``, ``n_markers``, ``denominator`` and, where known, ``markers`` and
    ``allele_freq``; the faster and smaller choice for large n.

    Raises
    ------
    InputError
        If ``path`` exists and ``force`` is false, or its suffix is not one of the above.
    """
    path = Path(path)
    check_new_output(path, force=force, suffixes=RELATIONSHIP_SUFFIXES)
    G = relationship.matrix
    ids = relationship.ids.astype(str)
    with atomic_output(path, force=force) as tmp:
        if path.name.lower().endswith(".npz"):
            extra = {}
            if relationship.marker_scaling is not None:
                extra = {
                    "markers": relationship.marker_scaling.markers.astype(str),
                    "allele_freq": relationship.marker_scaling.allele_freq,
                }
            with open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    G=G,
                    ids=ids,
                    scaling=np.array(relationship.scaling),
                    n_markers=np.array(relationship.n_markers or -1),
                    denominator=np.array(relationship.denominator or np.nan),
                    **extra,
                )
        else:
            digits = "%.17g" if G.dtype == np.float64 else "%.9g"
            frame = pd.DataFrame(G, index=pd.Index(ids, name="id"), columns=ids)
            frame.to_csv(tmp, float_format=digits, compression="gzip" if path.name.lower().endswith(".gz") else None)
    return path


def read_relationship(path: str | os.PathLike, *, symmetry_tol: float = 1e-8) -> Relationship:
    """Read a relationship matrix written by :func:`write_relationship` (or any CSV in that layout).

    Raises
    ------
    InputError
        If the file is missing, the matrix is not square, row and column IDs differ, a value is not
        finite, or the matrix is not symmetric within ``symmetry_tol`` (relative to its largest value).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"relationship file not found: {path}")
    if path.name.lower().endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            if "G" not in data or "ids" not in data:
                raise InputError(f"{path}: an .npz relationship file needs arrays 'G' and 'ids'.")
            G, ids = data["G"], data["ids"]
            scaling = str(data["scaling"]) if "scaling" in data else "user"
            n_markers = int(data["n_markers"]) if "n_markers" in data else -1
            denominator = float(data["denominator"]) if "denominator" in data else np.nan
    elif is_csv(path):
        id_column = _read_table(path, "relationship matrix", nrows=0).columns[0]
        frame = _read_table(path, "relationship matrix", index_col=0, dtype={id_column: str})
        G, ids = frame.to_numpy(dtype=np.float64), frame.index.astype(str).to_numpy()
        if list(frame.columns.astype(str)) != list(ids):
            raise InputError(f"{path}: the column IDs in the header differ from the row IDs (or their order).")
        scaling, n_markers, denominator = "user", -1, np.nan
    else:
        raise InputError(f"{path}: a relationship file must end in .csv, .csv.gz or .npz.")
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] != len(ids):
        raise InputError(f"{path}: expected a square matrix with one ID per row, got {G.shape} and {len(ids)} IDs.")
    check_relationship(G, ids, str(path), symmetry_tol=symmetry_tol)
    return Relationship(
        matrix=G,
        ids=ids,
        scaling=scaling,
        n_markers=None if n_markers < 0 else n_markers,
        denominator=None if np.isnan(denominator) else denominator,
    )
