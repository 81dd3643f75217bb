"""Write tests/data/vcf/sample.vcf from the PLINK sample (tests/data/README.md): the same calls as a VCF.

Run from the repository root: ``python tests/data/make_sample_vcf.py``. Deterministic; needs bed-reader only.

ALT is the PLINK A1 allele and REF A2, so that the VCF's ALT count equals PLINK's A1 count call for call (PLINK's
numeric allele codes 1-4 are written as A, C, G, T). Each record carries GT and DS: heterozygous calls are written
unphased (0/1) or phased (0|1, 1|0) by turns, missing calls as ./., . or .|. by turns, and DS is the ALT count
("." where missing). Chromosome 0 (unplaced, in the .bim) is kept as contig "0".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bed_reader import open_bed

DATA = Path(__file__).parent
BASES = {"1": "A", "2": "C", "3": "G", "4": "T"}
HET = ("0/1", "0|1", "1|0")
MISSING = ("./.", ".", ".|.")


def main() -> None:
    with open_bed(DATA / "plink_sample" / "sample.bed", count_A1=True) as bed:
        calls = bed.read(dtype="int8")  # A1 counts, -127 missing
        iid, sid = bed.iid, bed.sid
        chrom, pos, a1, a2 = bed.chromosome, bed.bp_position, bed.allele_1, bed.allele_2
    header = [
        "##fileformat=VCFv4.2",
        "##source=tests/data/make_sample_vcf.py (BGLR's PLINK sample; ALT = A1, REF = A2)",
        *(f"##contig=<ID={c}>" for c in dict.fromkeys(chrom)),
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT allele dosage">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *iid]),
    ]
    lines = []
    for j in range(calls.shape[1]):
        cells = []
        for i, count in enumerate(calls[:, j]):
            if count < 0:
                cells.append(f"{MISSING[(i + j) % 3]}:.")
            else:
                gt = ("0/0", HET[(i + j) % 3], "1/1")[int(count)]
                cells.append(f"{gt}:{int(count)}")
        site = [chrom[j], str(int(pos[j])), sid[j], BASES[a2[j]], BASES[a1[j]], ".", ".", ".", "GT:DS"]
        lines.append("\t".join(site + cells))
    out = DATA / "vcf" / "sample.vcf"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(header + lines) + "\n")
    print(f"wrote {out}: {len(iid)} samples x {len(lines)} records, {int((calls < 0).sum())} missing calls")
    assert np.isin(calls, [-127, 0, 1, 2]).all()


if __name__ == "__main__":
    main()
