"""Small VCF files for the tests: text written here, VCF.gz and BCF written by cyvcf2, and cut-off copies."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

HEADER = [
    "##fileformat=VCFv4.2",
    "##contig=<ID=1>",
    "##contig=<ID=2>",
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT allele dosage">',
]
COLUMNS = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]


def record(pos: int, name: str, calls: Sequence[str], *, fmt: str = "GT", alt: str = "G", chrom: str = "1") -> str:
    """One record line: ``chrom pos name A alt . . . fmt calls...``."""
    return "\t".join([chrom, str(pos), name, "A", alt, ".", ".", ".", fmt, *calls])


def vcf_text(records: Sequence[str], samples: Sequence[str], header: Sequence[str] = HEADER) -> str:
    """A VCF: the header lines, the column line with ``samples`` (none: a sites-only file), then ``records``."""
    columns = "\t".join(COLUMNS + list(samples)) if samples else "\t".join(COLUMNS[:8])
    return "\n".join([*header, columns, *records]) + "\n"


def write_vcf(path: Path, records: Sequence[str], samples: Sequence[str] = ("s1", "s2", "s3", "s4")) -> Path:
    path.write_text(vcf_text(records, samples))
    return path


def convert(source: Path, target: Path, mode: str) -> Path:
    """``source`` rewritten by cyvcf2 (htslib): ``"wz"`` a bgzip-compressed VCF, ``"wb"`` a BCF."""
    import cyvcf2

    reader = cyvcf2.VCF(str(source))
    writer = cyvcf2.Writer(str(target), reader, mode=mode)
    for variant in reader:
        writer.write_record(variant)
    writer.close()
    reader.close()
    return target


def gzip_plain(source: Path, target: Path) -> Path:
    """``source`` compressed by Python's gzip: one gzip member, not BGZF."""
    target.write_bytes(gzip.compress(source.read_bytes()))
    return target


def many_records(n_records: int = 3000, samples: Sequence[str] = tuple(f"s{k}" for k in range(10))) -> str:
    """A VCF large enough for a BGZF file of several blocks (a block holds 64 KiB of text)."""
    calls = ("0/0", "0/1", "1/1", "1|0")
    rows = [record(j + 1, f"m{j}", [calls[(j + i) % 4] for i in range(len(samples))]) for j in range(n_records)]
    return vcf_text(rows, samples)


def bgzf_block_starts(data: bytes) -> list[int]:
    """Offsets of the BGZF blocks of ``data`` (each block's size is in its BC extra field, SAM spec 4.1)."""
    starts, offset = [], 0
    while offset < len(data):
        starts.append(offset)
        offset += int.from_bytes(data[offset + 16 : offset + 18], "little") + 1
    return starts


def cut_at_a_block(path: Path) -> int:
    """Cut the BGZF file ``path`` at the start of its second-to-last data block (before the closing EOF block
    and the data block before it): what htslib reads as a whole, shorter file. Returns the blocks kept."""
    data = path.read_bytes()
    starts = bgzf_block_starts(data)
    assert len(starts) >= 3, "a file of one data block cannot be cut between blocks"
    path.write_bytes(data[: starts[-2]])
    return len(starts) - 2


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
