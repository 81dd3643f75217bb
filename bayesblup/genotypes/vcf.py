"""Reading genotypes from VCF, VCF.gz and BCF files with cyvcf2 (htslib), an optional extra.

Each record is a marker; each sample an individual. A call counts the record's ALT allele: 0/1/2 from the
diploid GT call (phased or not; ``./.``, ``.`` or a half-missing call such as ``./1`` is a missing call),
or the DS field's dosage, the expected ALT count in [0, 2]. Whole dosages are held as counts (int8), fractional
ones as float32 (:class:`~bayesblup.genotypes.Genotypes`).

Refused, in one line naming the file and the record: a multi-allelic record (split or drop those first, as
for PLINK, which holds two alleles a marker), a non-diploid call, duplicate sample or marker IDs, a file
without samples or records, a compressed file cut short, and a dosage outside [0, 2].
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..files import check_input_file
from ..names import ADDITIVE
from .calls import MARKER_MAP_COLUMNS, MISSING, Genotypes

__all__ = ["VCF_FIELDS", "VCF_SUFFIXES", "is_vcf", "read_vcf"]

VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")
#: What ``field=`` takes: ``"auto"`` reads DS when every record has it, else GT.
VCF_FIELDS = ("auto", "GT", "DS")

# The empty block that closes every BGZF file (SAM/BAM specification, section 4.1.2). htslib reads a BGZF file
# cut at a block boundary as a shorter, valid one (it only warns), so its absence is refused here.
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_SPLIT = "split them into biallelic records (bcftools norm -m -any) or keep biallelic ones (bcftools view -m2 -M2)"


def is_vcf(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a VCF, VCF.gz (or .vcf.bgz) or BCF file, by its suffix."""
    return Path(path).name.lower().endswith(VCF_SUFFIXES)


def read_vcf(path: str | os.PathLike, *, field: str = "auto") -> Genotypes:
    """Read genotype calls (GT) or dosages (DS) from a VCF, VCF.gz or BCF file.

    Parameters
    ----------
    path : path-like
        A ``.vcf``, ``.vcf.gz`` (bgzip or gzip) or ``.bcf`` file.
    field : {"auto", "GT", "DS"}
        ``"GT"``: ALT allele counts 0/1/2 from the diploid calls. ``"DS"``: ALT dosages in [0, 2]. ``"auto"``:
        DS when every record has it, else GT; :attr:`Genotypes.counted` (and the QC report) says which.

    Returns
    -------
    Genotypes
        Individuals are the samples, markers the records' IDs (``CHROM:POS:REF:ALT`` where the ID is ``.``),
        coding additive; int8 counts, or float32 dosages where a DS value is fractional. ``marker_map``
        holds each record's chromosome and position, its ALT (the counted allele) and REF.

    Raises
    ------
    InputError
        Naming the file and record, for a multi-allelic record, a non-diploid call, a missing or non-numeric
        field, a dosage outside [0, 2], duplicate sample or marker IDs, no samples or records, or a
        compressed file that ends early; or when cyvcf2 is not installed (``pip install "bayesblup[vcf]"``).

    Notes
    -----
    Multi-allelic records are refused rather than split or dropped silently: as with PLINK 1 files, a marker
    holds two alleles here; bcftools splits them (``norm -m -any``) or keeps only biallelic records
    (``view -m2 -M2``). DS is expected to be one value per sample (``Number=A`` or ``1``, ``Type=Float``).
    """
    path = Path(path)
    check_input_file(path, "genotype", "a .vcf, .vcf.gz or .bcf file")
    if field not in VCF_FIELDS:
        raise InputError(f"field must be one of {', '.join(VCF_FIELDS)}; got {field!r}.")
    try:
        import cyvcf2  # htslib; an optional extra, imported only when a VCF is read
    except ImportError as exc:
        raise InputError(f'reading {path} needs cyvcf2, which is not installed: pip install "bayesblup[vcf]".') from exc
    _check_complete(path)
    with _htslib_messages() as htslib:
        try:
            reader = cyvcf2.VCF(str(path))
        except Exception as exc:  # cyvcf2 raises OSError or a bare Exception for a bad header
            raise InputError(_unreadable(path, "its header", htslib(), exc)) from exc
        try:
            return _read_records(reader, path, field, htslib)
        finally:
            reader.close()


# Records whose calls are checked and converted together: numpy's cost per call, spread over many records
# (one record at a time, the checks took longer than htslib's parsing).
_BATCH = 512


class _Record:
    """Where a record is, for messages: its number, its line in a text file, its position and ID."""

    def __init__(self, k: int, line: int | None, record) -> None:
        self.k, self.line = k, line
        self.site = f"{record.CHROM}:{record.POS}" + (f" {record.ID}" if record.ID else "")
        self.has_alt = bool(record.ALT)

    def __str__(self) -> str:
        line = f", line {self.line}" if self.line is not None else ""
        return f"record {self.k} ({self.site}{line})"


class _Field:
    """One FORMAT field's values over the records, converted a batch at a time; its first problem kept."""

    def __init__(self, convert, samples: list[str]) -> None:
        self.convert, self.samples = convert, samples
        self.blocks: list[np.ndarray] = []  # converted batches, records x samples
        self.pending: list[np.ndarray] = []
        self.sites: list[_Record] = []
        self.error: str | None = None

    def add(self, raw: np.ndarray, site: _Record) -> None:
        if self.pending and raw.shape != self.pending[0].shape:  # e.g. GT of another ploidy: its own batch
            self.flush()
        self.pending.append(raw)
        self.sites.append(site)
        if len(self.pending) >= _BATCH:
            self.flush()

    def refuse(self, problem: str) -> None:
        """A record without the field (or with an unusable one): a problem, after any in earlier records."""
        self.flush()
        self.error = self.error or problem

    def flush(self) -> None:
        if self.pending and self.error is None:
            values, problem = self.convert(np.stack(self.pending), self.sites, self.samples)
            self.blocks.append(values)
            self.error = problem
        self.pending, self.sites = [], []

    def matrix(self) -> np.ndarray:
        """Individuals x markers: the transpose of records x samples, each marker's calls contiguous."""
        return np.concatenate(self.blocks, axis=0).T


def _read_records(reader, path: Path, field: str, htslib) -> Genotypes:
    samples = list(reader.samples)
    if not samples:
        raise InputError(
            f"{path}: no samples: the file holds sites only (no FORMAT and sample columns), so no individual has "
            "genotypes; give a VCF with one column per genotyped individual."
        )
    header_lines = _header_lines(path)
    gt = _Field(_gt_counts, samples) if field in ("auto", "GT") else None
    ds = _Field(_dosages, samples) if field in ("auto", "DS") else None
    ds_absent = False  # a record without DS: "auto" reads GT
    keys_seen: set[str] = set()  # FORMAT keys of the records read, for a hint at the other field
    names, chrom, pos, ref, alt = [], [], [], [], []
    seen: dict[str, _Record] = {}
    records = iter(reader)
    k = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except Exception as exc:  # htslib could not parse (or decompress) the next record
            raise InputError(_unreadable(path, f"record {k + 1}", htslib(), exc)) from exc
        k += 1
        where = _Record(k, None if header_lines is None else header_lines + k, record)
        name = record.ID or f"{record.CHROM}:{record.POS}:{record.REF}:{record.ALT[0] if record.ALT else '.'}"
        wrong = None
        if len(record.ALT) > 1:
            wrong = (
                f"{where} is multi-allelic (ALT {','.join(record.ALT)}); a marker here holds two alleles, as in "
                f"PLINK: {_SPLIT}"
            )
        elif name in seen:
            wrong = (
                f"marker ID {name} repeats at {seen[name]} and {where}; marker IDs must be unique: drop the "
                "duplicate record (bcftools norm -d exact) or rename it"
            )
        if wrong is not None:
            for part in (gt, ds):  # a problem in an earlier record's calls comes first
                if part is not None:
                    part.flush()
            if _choice(field, gt, ds, ds_absent, final=False) is None:
                _refuse(field, gt, ds, ds_absent, keys_seen, path)
            raise InputError(f"{path}: {wrong}.")
        seen[name] = where
        names.append(name)
        chrom.append(str(record.CHROM))
        pos.append(int(record.POS))
        ref.append(str(record.REF))
        alt.append(record.ALT[0] if record.ALT else ".")
        keys = record.FORMAT or []
        keys_seen.update(keys)
        if gt is not None and gt.error is None:
            if "GT" in keys:
                gt.add(record.genotype.array(), where)
            else:
                gt.refuse(f"{where} has no GT field (FORMAT {':'.join(keys) or 'absent'})")
        if ds is not None and not ds_absent:
            if "DS" not in keys:
                ds_absent = True  # "auto" reads GT now; "DS" is refused
                ds.refuse(f"{where} has no DS field (FORMAT {':'.join(keys) or 'absent'})")
            elif ds.error is None:
                values = record.format("DS")
                if values is None or values.dtype.kind != "f" or values.ndim != 2 or values.shape[1] != 1:
                    ds.refuse(f"{where}: {_ds_layout(values)}")
                else:
                    ds.add(values[:, 0], where)
        if _choice(field, gt, ds, ds_absent, final=False) is None:
            break  # the field to be read has a problem: refuse it now, without reading on
    if k == 0:
        raise InputError(f"{path}: no variant records after the header; expected one record (line) per marker.")
    for part in (gt, ds):
        if part is not None:
            part.flush()
    chosen = _choice(field, gt, ds, ds_absent, final=True)
    if chosen is None:
        _refuse(field, gt, ds, ds_absent, keys_seen, path)
    if chosen == "DS":
        calls = _whole_as_counts(ds.matrix())
        counted = "ALT allele dosages, from the VCF's DS field"
    else:
        calls = gt.matrix()
        counted = "ALT allele counts, from the VCF's GT calls"
    if field == "auto":
        counted += " (auto: every record has DS)" if chosen == "DS" else " (auto: not every record has DS)"
    columns = (chrom, np.asarray(pos, dtype=np.int64), alt, ref)
    marker_map = pd.DataFrame(dict(zip(MARKER_MAP_COLUMNS, columns, strict=True)))
    return Genotypes(
        calls=calls,
        ids=samples,
        markers=names,
        coding=ADDITIVE,
        source=str(path),
        counted=counted,
        marker_map=marker_map,
    )


def _choice(field: str, gt: _Field | None, ds: _Field | None, ds_absent: bool, *, final: bool) -> str | None:
    """The field read ("GT" or "DS"), or None once it has a problem.

    ``"auto"`` reads DS unless a record lacks it; DS that every record has but one holds badly is refused, not
    replaced by GT. Before the last record (``final=False``), ``"auto"`` stays undecided (returns ``"auto"``)
    while a record without DS may still come.
    """
    if field == "auto":
        if ds_absent:
            field = "GT"
        elif final:
            field = "DS"
        else:
            return None if gt.error is not None and ds.error is not None else "auto"
    problem = (ds if field == "DS" else gt).error
    return None if problem is not None else field


def _refuse(field: str, gt: _Field | None, ds: _Field | None, ds_absent: bool, keys_seen: set[str], path: Path) -> None:
    """Raise the first problem of the field read, pointing at the other field where the file has it."""
    read = field if field != "auto" else ("GT" if ds_absent else "DS")
    problem, other_name, other = (ds.error, "GT", gt) if read == "DS" else (gt.error, "DS", ds)
    # read and usable (auto), or not read but present in the records read (an explicit field)
    usable = other.error is None and not ds_absent if other is not None else other_name in keys_seen
    hint = f" Read {other_name} instead (field='{other_name}', --vcf-field {other_name})." if usable else ""
    raise InputError(f"{path}: reading {read}: {problem}.{hint}")


def _gt_counts(gt: np.ndarray, sites: list[_Record], samples: list[str]) -> tuple[np.ndarray, str | None]:
    """ALT counts (int8, MISSING for a missing call) of a batch of records' GT arrays from cyvcf2, and a problem.

    ``gt`` is ``(records, samples, ploidy + 1)``: allele indices (-1 missing, -2 past the sample's ploidy),
    then the phase. A lone ``.`` is a missing call, not a haploid one. Elementwise on the first two alleles,
    which is what keeps this fast.
    """
    first = gt[..., 0]
    second = gt[..., 1] if gt.shape[-1] > 2 else np.full_like(first, -2)
    bad = (second == -2) & (first != -1)  # haploid: one allele, not a lone "."
    if gt.shape[-1] > 3:  # a third allele anywhere: polyploid
        bad |= (gt[..., 2:-1] != -2).any(axis=-1)
    if bad.any():
        b, i = np.argwhere(bad)[0]
        ploidy = int((gt[b, i, :-1] != -2).sum())
        return np.empty((0, len(samples)), np.int8), (
            f"{sites[b]}: sample {samples[i]} has a call of ploidy {ploidy}; only diploid calls are read (0/0, 0/1, "
            "1/1, phased or not): drop non-diploid records (e.g. chrY, or chrX in males) or recode them"
        )
    top = np.array([1 if site.has_alt else 0 for site in sites], dtype=gt.dtype)[:, None]
    beyond = np.maximum(first, second) > top
    if beyond.any():
        b, i = np.argwhere(beyond)[0]
        return np.empty((0, len(samples)), np.int8), (
            f"{sites[b]}: sample {samples[i]} calls allele {int(max(first[b, i], second[b, i]))}, which the "
            "record's ALT does not list"
        )
    counts = (first == 1).astype(np.int8) + (second == 1)
    counts[(first < 0) | (second < 0)] = MISSING  # ./., . or a half-missing call such as ./1
    return counts, None


def _ds_layout(values: np.ndarray | None) -> str:
    if values is None or values.dtype.kind != "f":
        return "DS is not a number; declare it in the header as ##FORMAT=<ID=DS,Number=A,Type=Float,...>"
    return f"DS holds {values.shape[-1]} values a sample; expected one, the ALT dosage"


def _dosages(ds: np.ndarray, sites: list[_Record], samples: list[str]) -> tuple[np.ndarray, str | None]:
    """A batch of records' DS values (float32, NaN missing), and a problem."""
    values = ds.astype(np.float32, copy=False)
    bad = np.isinf(values) | (values < 0) | (values > 2)  # NaN: a missing value, not a bad one
    if bad.any():
        b, i = np.argwhere(bad)[0]
        return values, (
            f"{sites[b]}: sample {samples[i]} has dosage {float(values[b, i]):g}, outside [0, 2] (an expected count "
            "of ALT alleles)"
        )
    return values, None


def _whole_as_counts(dosages: np.ndarray) -> np.ndarray:
    """Dosages as int8 counts when every one is whole (as GT's), else as they are (float32)."""
    missing = np.isnan(dosages)
    seen = dosages[~missing]
    if np.array_equal(seen, np.round(seen)):
        return np.where(missing, MISSING, np.nan_to_num(dosages)).astype(np.int8)
    return dosages


def _header_lines(path: Path) -> int | None:
    """Lines of a text VCF's header (htslib's copy of it adds lines), for the line numbers of messages; None for BCF."""
    if path.name.lower().endswith(".bcf"):
        return None
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
        with (gzip.open if compressed else open)(path, "rb") as handle:
            count = 0
            for line in handle:
                if not line.startswith(b"#"):
                    break
                count += 1
            return count
    except (OSError, EOFError, zlib.error):  # a damaged file: htslib's error says more, without line numbers
        return None


def _check_complete(path: Path) -> None:
    """Refuse a BGZF file (bgzip's .vcf.gz, a BCF) without its closing EOF block, or a text VCF cut mid-line.

    htslib reads a BGZF file cut at a block boundary as a valid shorter one, so a cut-off copy would lose markers
    silently; a plain gzip file cut short fails in htslib itself, with its message.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(18)
        handle.seek(max(0, size - len(_BGZF_EOF)))
        tail = handle.read()
    bgzf = head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"
    if bgzf and tail != _BGZF_EOF:
        raise InputError(
            f"{path}: the compressed file ends early: its closing BGZF block is missing, so it was probably cut off "
            "in a copy or download: copy it again (bgzip -t checks it)."
        )
    if head[:2] != b"\x1f\x8b" and head[:3] != b"BCF" and tail and not tail.endswith(b"\n"):
        raise InputError(
            f"{path}: the file does not end with a newline, so its last line may be cut off; copy it again, or end "
            "it with a newline if it is complete."
        )


@contextmanager
def _htslib_messages() -> Iterator:
    """Send what htslib prints on stderr (file descriptor 2) to a temporary file while a VCF is read.

    Yields a function returning the text so far, which goes into the error message of a file htslib cannot read;
    otherwise its messages (such as contigs missing from the header) are dropped, and nothing reaches the
    terminal past the one-line error. Whatever else writes to stderr meanwhile (another thread) lands there too:
    the read holds the redirection for no longer than htslib works.
    """
    with tempfile.TemporaryFile() as log:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to redirect
            yield lambda: ""
            return
        sys.stderr.flush()
        os.dup2(log.fileno(), 2)

        def text() -> str:
            log.seek(0)
            return log.read().decode("utf-8", errors="replace")

        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _unreadable(path: Path, what: str, messages: str, exc: Exception) -> str:
    """One line for a file htslib refused: its error messages (``[E::...]``), else its last line, else cyvcf2's."""
    lines = [line.strip() for line in messages.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("[E::")]
    said = "; ".join(errors) if errors else (lines or [str(exc)])[-1]
    if "Duplicated sample name" in said:
        name = said.split("Duplicated sample name", 1)[1].strip(" :'\"")
        return f"{path}: sample ID {name} repeats in the header; sample IDs label the individuals and must be unique."
    truncated = "truncated" in said.lower() or "failed to read" in said.lower()
    hint = " The file seems cut off: copy it again." if truncated else ""
    return f"{path}: {what} cannot be read as VCF/BCF (htslib: {said}).{hint}"
