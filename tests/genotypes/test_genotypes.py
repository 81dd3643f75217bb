"""Genotype input: arrays, CSV/CSV.gz and PLINK; codings; missing calls; one test per error."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import bayesblup as bb
from bayesblup.genotypes.calls import MISSING


def write_csv(path, rows, header="line_id,m1,m2,m3"):
    text = header + "\n" + "\n".join(rows) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


# --- arrays ----------------------------------------------------------------------------------


@pytest.mark.structural
def test_from_array__float_with_nan_is_missing():
    geno = bb.Genotypes.from_array(np.array([[0, np.nan], [2.0, 1]]), ids=["a", "b"])
    assert geno.calls.dtype == np.int8
    assert geno.calls[0, 1] == MISSING
    assert geno.n_missing == 1
    assert list(geno.markers) == ["marker_1", "marker_2"]


@pytest.mark.structural
def test_from_array__auto_coding():
    assert bb.Genotypes.from_array(np.array([[0, 1], [1, 2]]), ids=["a", "b"]).coding == "additive"
    assert bb.Genotypes.from_array(np.array([[0, 1], [1, 0]]), ids=["a", "b"]).coding == "presence-absence"
    explicit = bb.Genotypes.from_array(np.array([[0, 1], [1, 0]]), ids=["a", "b"], coding="additive")
    assert explicit.coding == "additive" and explicit.max_count == 2


@pytest.mark.structural
def test_from_array__ids_become_strings():
    geno = bb.Genotypes.from_array(np.array([[0, 1], [1, 0]]), ids=[775, 2166])
    assert list(geno.ids) == ["775", "2166"]


@pytest.mark.structural
def test_from_array__raise_on_code_outside_coding():
    with pytest.raises(
        bb.InputError,
        match=r"call 2 is not valid for coding 'presence-absence'.*individual b, marker m2.*coding='additive'",
    ):
        bb.Genotypes.from_array(
            np.array([[0, 1], [1, 2]]), ids=["a", "b"], markers=["m1", "m2"], coding="presence-absence"
        )


@pytest.mark.structural
def test_from_array__raise_on_negative_missing_code():
    with pytest.raises(bb.InputError, match=r"found -9 at \(individual b, marker m1\).*replace it with NaN"):
        bb.Genotypes.from_array(np.array([[0, 1], [-9, 2]]), ids=["a", "b"], markers=["m1", "m2"])


@pytest.mark.structural
def test_from_array__raise_on_dosage():
    """Counts only here; the message points to where dosages are read (it once said they were not supported)."""
    match = r"found 0\.5 at \(individual a, marker m2\).*Fractional dosages are read from a VCF's DS field"
    with pytest.raises(bb.InputError, match=match + r".*Genotypes\(calls=<float32 array>"):
        bb.Genotypes.from_array(np.array([[0, 0.5], [1, 2]]), ids=["a", "b"], markers=["m1", "m2"])


@pytest.mark.structural
def test_from_array__raise_on_text():
    with pytest.raises(bb.InputError, match=r"must be numbers.*'AA', 'AB'"):
        bb.Genotypes.from_array(np.array([["AA", "AB"], ["BB", "AA"]]), ids=["a", "b"])


@pytest.mark.structural
def test_from_array__raise_on_wrong_shape():
    with pytest.raises(bb.InputError, match=r"2-D array \(individuals x markers\), got shape \(3,\)"):
        bb.Genotypes.from_array(np.array([0, 1, 2]), ids=["a"])


@pytest.mark.structural
def test_from_array__raise_on_id_count():
    with pytest.raises(bb.InputError, match=r"ids: expected 2 labels \(one per row.*got 3"):
        bb.Genotypes.from_array(np.zeros((2, 2)), ids=["a", "b", "c"])


@pytest.mark.structural
def test_from_array__raise_on_duplicated_ids():
    with pytest.raises(bb.InputError, match=r"ids: duplicated label\(s\) a"):
        bb.Genotypes.from_array(np.zeros((2, 2)), ids=["a", "a"])


@pytest.mark.structural
def test_from_array__raise_on_duplicated_markers():
    with pytest.raises(bb.InputError, match=r"markers: duplicated label\(s\) x"):
        bb.Genotypes.from_array(np.zeros((2, 2)), ids=["a", "b"], markers=["x", "x"])


@pytest.mark.structural
def test_from_array__raise_on_empty_id():
    with pytest.raises(bb.InputError, match=r"ids: empty label at position\(s\) 1"):
        bb.Genotypes.from_array(np.zeros((2, 2)), ids=["a", ""])


@pytest.mark.structural
def test_genotypes__raise_on_empty_matrix():
    with pytest.raises(bb.InputError, match=r"is empty \(0 individuals x 2 markers\)"):
        bb.Genotypes.from_array(np.zeros((0, 2)), ids=[])


@pytest.mark.structural
def test_genotypes__select():
    geno = bb.Genotypes.from_array(np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0]]), ids=list("abc"), markers=list("xyz"))
    sub = geno.select(individuals=[2, 0], markers=np.array([True, False, True]))
    assert list(sub.ids) == ["c", "a"] and list(sub.markers) == ["x", "z"]
    np.testing.assert_array_equal(sub.calls, [[2, 0], [0, 2]])


# --- CSV -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.structural
def test_read_csv__values_ids_and_missing(tmp_path, suffix):
    path = write_csv(tmp_path / f"g{suffix}", ["a,0,1,2", "b,NA,2,1", "c,2,,0"])
    geno = bb.read_genotypes(path)
    assert list(geno.ids) == ["a", "b", "c"]
    assert list(geno.markers) == ["m1", "m2", "m3"]
    assert geno.coding == "additive"
    assert geno.n_missing == 2
    assert geno.calls[1, 0] == MISSING and geno.calls[2, 1] == MISSING
    assert geno.calls[0].tolist() == [0, 1, 2]


@pytest.mark.structural
def test_read_csv__numeric_ids_are_kept_as_text(tmp_path):
    path = write_csv(tmp_path / "g.csv", ["007,0,1,2", "8,1,2,1"])
    assert list(bb.read_genotypes(path).ids) == ["007", "8"]


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (
            ["a,0,1,2", "b,0,AB,1"],
            None,
            r"g\.csv: genotype calls must be numbers; found 'AB' at individual b, marker m2 \(data row 2\)",
        ),
        (["a,0,1,2", "b,0,3,1"], None, r"found 3 at \(individual b, marker m2\)"),
        (["a,0,1,2", "b,0,1,1,2"], None, r"g\.csv: malformed CSV"),
        (["a,0,1,2"], "id,m1,m1,m3", r"duplicated marker name\(s\) in the header: m1"),
        (["a,0,1,2", ",0,1,1"], None, r"data row\(s\) 2 have no individual ID"),
    ],
    ids=["text_cell", "out_of_range_code", "ragged_row", "duplicated_marker", "missing_id"],
)
@pytest.mark.structural
def test_read_csv__raise_on_bad_file(tmp_path, rows, header, message):
    path = write_csv(tmp_path / "g.csv", rows, **({"header": header} if header else {}))
    with pytest.raises(bb.InputError, match=message):
        bb.read_genotypes(path)


@pytest.mark.structural
def test_read_csv__raise_on_header_only(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("id,m1,m2\n")
    with pytest.raises(bb.InputError, match=r"no data rows under the header"):
        bb.read_genotypes(path)


@pytest.mark.structural
def test_read_csv__raise_on_missing_file(tmp_path):
    with pytest.raises(bb.InputError, match=r"genotype file not found: .*nope\.csv"):
        bb.read_genotypes(tmp_path / "nope.csv")


@pytest.mark.structural
def test_read_genotypes__raise_on_unknown_format(tmp_path):
    with pytest.raises(bb.InputError, match=r"cannot tell the format of .*g\.xlsx"):
        bb.read_genotypes(tmp_path / "g.xlsx")


# --- PLINK -----------------------------------------------------------------------------------


@pytest.mark.structural
def test_read_plink__sample_counts_141_missing_calls(plink_bed):
    geno = bb.read_genotypes(plink_bed)
    assert (geno.n_individuals, geno.n_markers) == (120, 20)
    assert geno.n_missing == 141  # tests/data/README.md: 141 calls with 2-bit code 01
    assert geno.coding == "additive"
    assert geno.ids[:3].tolist() == ["430", "412", "431"]  # .fam column 2 (IID)
    assert geno.markers[0] == "IGR1118a_1"  # .bim column 2


@pytest.mark.structural
def test_read_plink__prefix_or_any_member_of_the_set(plink_bed):
    reference = bb.read_plink(plink_bed).calls
    for path in (plink_bed.with_suffix(""), plink_bed.with_suffix(".bim")):
        np.testing.assert_array_equal(bb.read_genotypes(path).calls, reference)


@pytest.mark.exact
def test_read_plink__matches_bed_decoding_by_hand(plink_bed):
    """Decode the SNP-major .bed bytes by the PLINK 1 spec, as an independent oracle of the reader.

    Each 2-bit code, lowest bits first, per individual: 00 = homozygous A1 (2 copies of A1),
    01 = missing, 10 = heterozygous, 11 = homozygous A2 (0 copies of A1).
    """
    raw = plink_bed.read_bytes()
    assert raw[:3] == bytes([0x6C, 0x1B, 0x01])  # magic number, SNP-major
    n, m = 120, 20
    per_snp = (n + 3) // 4
    copies_of_a1 = {0b00: 2, 0b01: int(MISSING), 0b10: 1, 0b11: 0}
    expected = np.empty((n, m), dtype=np.int8)
    for j in range(m):
        chunk = raw[3 + j * per_snp : 3 + (j + 1) * per_snp]
        for i in range(n):
            expected[i, j] = copies_of_a1[(chunk[i // 4] >> (2 * (i % 4))) & 0b11]
    np.testing.assert_array_equal(bb.read_plink(plink_bed).calls, expected)


def copy_plink(plink_bed, folder, suffixes):
    """Copy members of the sample set to ``folder/s.*``."""
    for suffix in suffixes:
        shutil.copy(plink_bed.with_suffix(suffix), folder / f"s{suffix}")


@pytest.mark.structural
def test_read_plink__raise_on_missing_member(tmp_path, plink_bed):
    copy_plink(plink_bed, tmp_path, [".bed", ".fam"])
    with pytest.raises(bb.InputError, match=r"missing file\(s\) .*s\.bim"):
        bb.read_genotypes(tmp_path / "s.bed")


@pytest.mark.structural
def test_read_plink__raise_on_duplicated_iid(tmp_path, plink_bed):
    copy_plink(plink_bed, tmp_path, [".bed", ".bim"])
    lines = plink_bed.with_suffix(".fam").read_text().splitlines()
    fields = lines[1].split()
    fields[1] = lines[0].split()[1]  # second individual takes the first one's IID
    lines[1] = " ".join(fields)
    (tmp_path / "s.fam").write_text("\n".join(lines) + "\n")
    with pytest.raises(bb.InputError, match=r"IDs \(IID, column 2\) repeat across families: 430"):
        bb.read_genotypes(tmp_path / "s.bed")


@pytest.mark.structural
def test_read_plink__raise_on_corrupt_bed(tmp_path, plink_bed):
    copy_plink(plink_bed, tmp_path, [".bim", ".fam"])
    (tmp_path / "s.bed").write_bytes(b"not a bed file")
    with pytest.raises(bb.InputError, match=r"PLINK set .*s: cannot be read"):
        bb.read_genotypes(tmp_path / "s.bed")


@pytest.mark.structural
def test_read_plink__raise_on_non_additive_coding(plink_bed):
    with pytest.raises(bb.InputError, match=r"PLINK files hold 0/1/2 allele counts"):
        bb.read_genotypes(plink_bed, coding="presence-absence")
