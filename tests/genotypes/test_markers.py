"""Marker maps: a PLINK .bim or a CSV marker,chromosome,position read and checked; a fit's markers placed on it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.genotypes.markers import check_marker_map, chromosome_order, place_markers, read_marker_map

pytestmark = pytest.mark.structural

PLINK = Path(__file__).parents[1] / "data" / "plink_sample"


def test_a_bim_gives_chromosome_and_base_pair_position():
    bim = PLINK / "sample.bim"
    table = read_marker_map(bim)
    raw = pd.read_csv(bim, sep=r"\s+", header=None)
    assert list(table.columns) == ["marker", "chromosome", "position"]
    assert table["marker"].tolist() == raw[1].astype(str).tolist()  # the .bim's order, every marker
    assert table["chromosome"].tolist() == raw[0].astype(str).tolist()
    assert table["position"].tolist() == raw[3].astype(float).tolist()  # column 4: base pairs, not column 3's cM
    assert table.attrs["source"] == str(bim)


def test_a_csv_map_keeps_its_labels_and_ignores_other_columns(tmp_path):
    path = tmp_path / "map.csv"
    path.write_text("marker,chromosome,position,cM\nm1,1A,100,0.1\nm2,X,2.5e6,3\nm3,chr10,0,0\n")
    table = read_marker_map(path)
    assert table.to_dict("list") == {
        "marker": ["m1", "m2", "m3"], "chromosome": ["1A", "X", "chr10"], "position": [100.0, 2.5e6, 0.0],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("marker,chrom,position\nm1,1,5\n", "lacks chromosome (it has marker, chrom, position)"),
        ("marker,chromosome,position\nm1,1,5\n,2,7\n", "1 row(s) have no marker (lines 3)"),
        ("marker,chromosome,position\nm1,,5\n", "1 row(s) have no chromosome (lines 2)"),
        ("marker,chromosome,position\nm1,1,5\nm2,1,abc\n", "position 'abc' of marker m2 (line 3) is not a number"),
        ("marker,chromosome,position\nm1,1,5\nm2,1,\n", "position '' of marker m2 (line 3) is not a number"),
        ("marker,chromosome,position\nm1,1,-5\n", "position -5 of marker m1 is negative"),
        ("marker,chromosome,position\nm1,1,5\nm1,2,7\n", "marker(s) listed twice: m1"),
        ("marker,chromosome,position\n", "the marker map has no rows"),
    ],
    ids=["no_chromosome_column", "blank_marker", "blank_chromosome", "text_position", "empty_position",
         "negative_position", "duplicated_marker", "no_rows"],
)  # fmt: skip
def test_a_bad_map_is_refused_in_one_line_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "map.csv"
    path.write_text(text)
    with pytest.raises(bb.InputError) as info:
        read_marker_map(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ") and expected in message, message


def test_a_bim_with_too_few_columns_is_refused(tmp_path):
    path = tmp_path / "bad.bim"
    path.write_text("1 m1 0\n1 m2 0\n")
    with pytest.raises(bb.InputError, match=r"bad\.bim: cannot be read as a marker map .* six whitespace-separated"):
        read_marker_map(path)


def test_a_missing_map_file_is_refused(tmp_path):
    with pytest.raises(bb.InputError, match=r"marker map file not found: .*absent\.csv"):
        read_marker_map(tmp_path / "absent.csv")


def test_place_markers_follows_the_fit_and_refuses_markers_off_the_map():
    table = check_marker_map(pd.DataFrame({"marker": ["a", "b", "c", "d"], "chromosome": [1, 1, 2, 2],
                                           "position": [10, 20, 5, 7]}))  # fmt: skip
    placed = place_markers(["c", "a", "d"], table)  # b: e.g. dropped by QC
    assert placed["marker"].tolist() == ["c", "a", "d"] and placed["position"].tolist() == [5.0, 10.0, 7.0]
    assert placed["chromosome"].tolist() == ["2", "1", "2"]
    with pytest.raises(bb.InputError, match=r"lacks 7 of the fit's 9 markers \(x1, x2, x3, x4, x5 \(and 2 more\)\)"):
        place_markers(["a", "b", *[f"x{k}" for k in range(1, 8)]], table)


def test_chromosomes_in_natural_order():
    names = ["10", "2", "X", "1", "MT", "0", "Y", "chr3", "scaffold_7", "1B", "1A", "2D"]
    assert chromosome_order(names) == ["1", "1A", "1B", "2", "2D", "chr3", "10", "X", "Y", "MT", "scaffold_7", "0"]
