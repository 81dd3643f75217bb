"""VCF, VCF.gz and BCF genotypes (cyvcf2): GT calls and DS dosages, against the PLINK sample; every refusal.

tests/data/vcf/sample.vcf is the PLINK sample written as a VCF (tests/data/make_sample_vcf.py) with ALT = A1 and
REF = A2: PLINK counts A1 alleles and the VCF reader ALT alleles, so the two count the same allele and the calls
agree without flipping any marker.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from vcf_files import (
    convert,
    cut_at_a_block,
    cut_in_half,
    gzip_plain,
    many_records,
    record,
    vcf_text,
    write_vcf,
)

import bayesblup as bb
from bayesblup.genotypes.calls import MISSING

SAMPLE_VCF = Path(__file__).parents[1] / "data" / "vcf" / "sample.vcf"
BASES = {"1": "A", "2": "C", "3": "G", "4": "T"}  # PLINK 1's numeric allele codes


@pytest.fixture(scope="module")
def plink(plink_bed):
    return bb.read_plink(plink_bed)


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    """The sample as bgzip VCF.gz and BCF (both written by htslib through cyvcf2) and as plain-gzip VCF.gz."""
    d = tmp_path_factory.mktemp("vcf")
    return {
        "vcf.gz": convert(SAMPLE_VCF, d / "sample.vcf.gz", "wz"),
        "bcf": convert(SAMPLE_VCF, d / "sample.bcf", "wb"),
        "gzip": gzip_plain(SAMPLE_VCF, d / "plain.vcf.gz"),
    }


def same_genotypes(a: bb.Genotypes, b: bb.Genotypes) -> bool:
    return (
        np.array_equal(a.calls, b.calls, equal_nan=a.is_dosage)
        and list(a.ids) == list(b.ids)
        and list(a.markers) == list(b.markers)
        and a.marker_map.equals(b.marker_map)
    )


# --- the PLINK sample as a VCF -------------------------------------------------------------------------------


@pytest.mark.exact
@pytest.mark.parametrize("field", ["GT", "DS", "auto"])
def test_the_vcf_of_the_plink_sample_reads_as_the_plink_set(plink, field):
    """Calls (141 missing included), IDs, marker names and positions agree; the counted allele is A1 = ALT."""
    vcf = bb.read_vcf(SAMPLE_VCF, field=field)
    assert vcf.calls.dtype == np.int8 and np.array_equal(vcf.calls, plink.calls)
    assert vcf.n_missing == 141
    assert list(vcf.ids) == list(plink.ids) and list(vcf.markers) == list(plink.markers)
    assert list(vcf.marker_map["chromosome"]) == list(plink.marker_map["chromosome"])
    assert list(vcf.marker_map["position"]) == list(plink.marker_map["position"])
    assert list(vcf.marker_map["counted_allele"]) == [BASES[a] for a in plink.marker_map["counted_allele"]]
    assert list(vcf.marker_map["other_allele"]) == [BASES[a] for a in plink.marker_map["other_allele"]]


@pytest.mark.exact
@pytest.mark.parametrize("scaling", ["standardized", "standardized-hwe", "centered"])
def test_the_vcf_gives_the_g_of_the_plink_set(plink, scaling):
    """Same int8 calls, so QC and G agree bit for bit."""
    vcf_geno, vcf_report = bb.quality_control(bb.read_vcf(SAMPLE_VCF), min_maf=0.05)
    bed_geno, bed_report = bb.quality_control(plink, min_maf=0.05)
    assert vcf_report.dropped_markers == bed_report.dropped_markers
    assert vcf_report.n_missing_out == bed_report.n_missing_out
    G_vcf = bb.genomic_relationship(vcf_geno, scaling=scaling).matrix
    assert np.array_equal(G_vcf, bb.genomic_relationship(bed_geno, scaling=scaling).matrix)


@pytest.mark.exact
@pytest.mark.parametrize("kind", ["vcf.gz", "bcf", "gzip"])
def test_vcf_gz_and_bcf_read_as_the_vcf(compressed, kind):
    text = bb.read_vcf(SAMPLE_VCF)
    other = bb.read_genotypes(compressed[kind])  # dispatched on the suffix
    assert same_genotypes(text, other) and other.counted == text.counted


@pytest.mark.exact
def test_gt_and_ds_agree_and_auto_reads_ds_when_every_record_has_it():
    gt, ds, auto = (bb.read_vcf(SAMPLE_VCF, field=f) for f in ("GT", "DS", "auto"))
    assert same_genotypes(gt, ds) and same_genotypes(gt, auto)
    assert gt.counted == "ALT allele counts, from the VCF's GT calls"
    assert auto.counted == "ALT allele dosages, from the VCF's DS field (auto: every record has DS)"
    _, report = bb.quality_control(auto)
    assert "calls: ALT allele dosages, from the VCF's DS field (auto: every record has DS)" in report.lines()


# --- calls, dosages and names ----------------------------------------------------------------------------------


@pytest.mark.exact
def test_phased_unphased_and_missing_calls(tmp_path):
    calls = ["0/0", "0/1", "1/0", "0|1", "1|0", "1/1", "1|1", "./.", ".", ".|.", "./1", "1|."]
    expected = [0, 1, 1, 1, 1, 2, 2, MISSING, MISSING, MISSING, MISSING, MISSING]
    samples = [f"s{k}" for k in range(len(calls))]
    path = tmp_path / "calls.vcf"
    path.write_text(vcf_text([record(10, "rs1", calls), record(20, "rs2", calls[::-1])], samples))
    geno = bb.read_vcf(path)
    assert geno.calls[:, 0].tolist() == expected and geno.calls[:, 1].tolist() == expected[::-1]
    assert geno.counted == "ALT allele counts, from the VCF's GT calls (auto: not every record has DS)"


@pytest.mark.exact
def test_fractional_ds_are_read_as_dosages(tmp_path):
    path = write_vcf(
        tmp_path / "ds.vcf",
        [record(10, "rs1", ["0.25", "1", ".", "2"], fmt="DS"), record(20, "rs2", ["0.999", "0", "1.5", "0"], fmt="DS")],
    )
    geno = bb.read_vcf(path)
    assert geno.is_dosage and geno.calls.dtype == np.float32
    expected = np.array([[0.25, 0.999], [1, 0], [np.nan, 1.5], [2, 0]], dtype=np.float32)
    assert np.array_equal(geno.calls, expected, equal_nan=True)


@pytest.mark.exact
def test_auto_reads_gt_when_a_record_lacks_ds(tmp_path):
    path = write_vcf(
        tmp_path / "mixed.vcf",
        [record(10, "rs1", ["0/0:0.1", "0/1:0.9", "1/1:1.8", "0/1:1.1"], fmt="GT:DS"),
         record(20, "rs2", ["0/1", "0/0", "1/1", "./."])],
    )  # fmt: skip
    geno = bb.read_vcf(path)
    assert not geno.is_dosage and geno.calls.tolist() == [[0, 1], [1, 0], [2, 2], [1, MISSING]]
    assert "auto: not every record has DS" in geno.counted


@pytest.mark.structural
def test_a_record_without_id_is_named_by_its_site(tmp_path):
    path = write_vcf(tmp_path / "ids.vcf", [record(10, ".", ["0/1"] * 4), record(7, "rs2", ["0/0", "0/1", "1/1", "0/0"],
                                                                               chrom="2")])  # fmt: skip
    geno = bb.read_vcf(path)
    assert list(geno.markers) == ["1:10:A:G", "rs2"]
    assert geno.marker_map.loc["rs2", "chromosome"] == "2" and geno.marker_map.loc["rs2", "position"] == 7


# --- refusals ------------------------------------------------------------------------------------------------

GOOD = [record(10, "rs1", ["0/0", "0/1", "1/1", "0/1"]), record(20, "rs2", ["0/1", "0/0", "1/1", "./."])]


@pytest.mark.structural
@pytest.mark.parametrize(
    ("records", "samples", "field", "expect"),
    [
        ([GOOD[0], record(30, "rs3", ["0/1", "0/2", "1/1", "0/0"], alt="G,T")], None, "auto",
         ["record 2 (1:30 rs3, line 8) is multi-allelic (ALT G,T)", "bcftools norm -m -any"]),
        ([GOOD[0], record(30, "rs3", ["0/1", "0", "1/1", "0/0"])], None, "auto",
         ["reading GT: record 2 (1:30 rs3, line 8): sample s2 has a call of ploidy 1", "only diploid calls"]),
        ([GOOD[0], record(30, "rs3", ["0/1", "0/0/1", "1/1", "0/0"])], None, "GT",
         ["record 2 (1:30 rs3, line 8): sample s2 has a call of ploidy 3"]),
        ([GOOD[0], GOOD[1].replace("rs2", "rs1")], None, "auto",
         ["marker ID rs1 repeats at record 1 (1:10 rs1, line 7) and record 2 (1:20 rs1, line 8)"]),
        (GOOD, ["s1", "s2", "s1", "s4"], "auto", ["sample ID s1 repeats in the header"]),
        (GOOD, [], "auto", ["no samples: the file holds sites only"]),
        ([], None, "auto", ["no variant records after the header"]),
        ([record(10, "rs1", ["0/0:0", "0/1:2.5", "1/1:2", "0/1:1"], fmt="GT:DS")], None, "DS",
         ["reading DS: record 1 (1:10 rs1, line 7): sample s2 has dosage 2.5, outside [0, 2]",
          "Read GT instead"]),
        ([record(10, "rs1", ["0/0:-0.1", "0/1:1", "1/1:2", "0/1:1"], fmt="GT:DS")], None, "auto",
         ["sample s1 has dosage -0.1, outside [0, 2]", "Read GT instead"]),
        (GOOD, None, "DS", ["reading DS: record 1 (1:10 rs1, line 7) has no DS field (FORMAT GT)"]),
        ([record(10, "rs1", ["0.5", "1", "1", "0"], fmt="DS")], None, "GT",
         ["reading GT: record 1 (1:10 rs1, line 7) has no GT field (FORMAT DS)", "Read DS instead"]),
        ([record(10, "rs1", ["0/1", "0/2", "1/1", "0/0"])], None, "auto",
         ["sample s2 calls allele 2, which the record's ALT does not list"]),
        ([record(10, "rs1", ["0/1", "x", "1/1", "0/0"], fmt="DS")], None, "DS",
         ["record 1 cannot be read as VCF/BCF (htslib:"]),
    ],
    ids=["multi_allelic", "haploid", "triploid", "duplicate_marker", "duplicate_sample", "no_samples", "no_records",
         "ds_above_2", "ds_negative_auto", "ds_absent", "gt_absent", "allele_not_listed", "ds_not_a_number"],
)  # fmt: skip
def test_a_bad_vcf_is_refused_in_one_line_naming_file_and_record(tmp_path, records, samples, field, expect):
    path = tmp_path / "bad.vcf"
    path.write_text(vcf_text(records, ["s1", "s2", "s3", "s4"] if samples is None else samples))
    with pytest.raises(bb.InputError) as info:
        bb.read_vcf(path, field=field)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    for fragment in expect:
        assert fragment in message, message


@pytest.mark.structural
def test_a_bgzf_file_cut_between_blocks_is_refused_not_read_short(tmp_path):
    """htslib reads a BGZF file cut at a block boundary as a valid, shorter file (it only warns); the reader must
    refuse it rather than return fewer markers."""
    import cyvcf2

    source = tmp_path / "many.vcf"
    source.write_text(many_records())
    for kind, mode in (("vcf.gz", "wz"), ("bcf", "wb")):
        path = convert(source, tmp_path / f"cut.{kind}", mode)
        assert bb.read_vcf(path).n_markers == 3000
        cut_at_a_block(path)
        if kind == "vcf.gz":  # what a reader without the check gets: fewer records, and a warning from htslib
            assert 0 < sum(1 for _ in cyvcf2.VCF(str(path))) < 3000
        with pytest.raises(bb.InputError, match=rf"{path}: the compressed file ends early: its closing BGZF block"):
            bb.read_vcf(path)


@pytest.mark.structural
@pytest.mark.parametrize("kind", ["vcf.gz", "bcf", "gzip"])
def test_a_compressed_file_cut_mid_stream_is_refused(tmp_path, kind, capfd):
    source = tmp_path / "many.vcf"
    source.write_text(many_records())
    if kind == "gzip":
        path = gzip_plain(source, tmp_path / "cut.vcf.gz")
    else:
        path = convert(source, tmp_path / f"cut.{kind}", "wz" if kind == "vcf.gz" else "wb")
    cut_in_half(path)
    with pytest.raises(bb.InputError, match=r"ends early|cut off") as info:
        bb.read_vcf(path)
    assert "\n" not in str(info.value)
    assert capfd.readouterr().err == ""  # htslib's own messages go into the error, not to the terminal


@pytest.mark.structural
def test_a_text_vcf_cut_mid_line_is_refused(tmp_path):
    path = write_vcf(tmp_path / "cut.vcf", GOOD)
    path.write_bytes(path.read_bytes()[:-3])  # "0/1\t./.\n" -> "0/1\t."
    with pytest.raises(bb.InputError, match="does not end with a newline, so its last line may be cut off"):
        bb.read_vcf(path)


@pytest.mark.structural
def test_missing_cyvcf2_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cyvcf2", None)  # import cyvcf2 raises ImportError
    with pytest.raises(bb.InputError, match=r'needs cyvcf2, which is not installed: pip install "bayesblup\[vcf\]"'):
        bb.read_genotypes(write_vcf(tmp_path / "g.vcf", GOOD))


@pytest.mark.structural
def test_options_that_do_not_apply_are_refused(tmp_path):
    path = write_vcf(tmp_path / "g.vcf", GOOD)
    with pytest.raises(bb.InputError, match=r"VCF files hold ALT allele counts 0/1/2.*coding='presence-absence'"):
        bb.read_genotypes(path, coding="presence-absence")
    with pytest.raises(bb.InputError, match="field must be one of auto, GT, DS; got 'gt'"):
        bb.read_vcf(path, field="gt")
    with pytest.raises(bb.InputError, match=r"genotype file not found: .*absent\.vcf\.gz"):
        bb.read_vcf(tmp_path / "absent.vcf.gz")
    (tmp_path / "table.vcf").write_text("id,m1\na,1\n")
    with pytest.raises(bb.InputError, match=r"table\.vcf: its header cannot be read as VCF/BCF \(htslib: "):
        bb.read_vcf(tmp_path / "table.vcf")
