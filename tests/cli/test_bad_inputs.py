"""A catalogue of bad inputs (issues 8 and 17): each refused through the API and the command line, never quietly
fitted. 157 cases; the real faults (signals, races, a full disk, an unwritable --out, memory) are in
test_out_folder.py and at the end of this file.

Every case starts from a small valid set (10 individuals x 6 markers, a trait ``y``, weights ``w``, folds
``fold``, marker sets), breaks one thing, and checks that

* the API raises :class:`bayesblup.InputError` whose message names where (file, column, row or ID), what
  was expected, and what to do (the case's ``expect`` fragments);
* ``bayesblup.cli.main`` returns exit code 2 with one line on stderr, ``bayesblup <command>: error: ...``
  holding the same fragments and no traceback, and leaves neither the out folder nor a temporary
  (``.<name>.*``) folder behind;
* a few do the same in a real process (``python -m bayesblup``).

Nothing here samples: a bad input must fail before the work. A case without ``api`` has no Python
counterpart (the note says why); one without ``cli`` has no command-line route (a user's G is read by the
API only: ``bayesblup fit`` builds G from the genotypes, and no command reads a G file).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vcf_files import convert, cut_at_a_block, cut_in_half, gzip_plain, many_records, record, vcf_text

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.cli.workflow import FitJob, run_fit

pytestmark = pytest.mark.structural

PLINK = Path(__file__).parents[1] / "data" / "plink_sample"

IDS = [f"i{k:02d}" for k in range(1, 11)]
MARKERS = [f"m{j}" for j in range(1, 7)]
CALLS = [
    [2, 0, 0, 0, 0, 2],
    [2, 1, 0, 0, 0, 1],
    [1, 1, 0, 0, 2, 2],
    [0, 0, 1, 1, 2, 1],
    [1, 1, 1, 1, 0, 2],
    [2, 2, 2, 0, 0, 1],
    [1, 2, 2, 0, 2, 0],
    [0, 2, 2, 0, 0, 0],
    [0, 2, 1, 1, 0, 1],
    [0, 2, 1, 0, 0, 2],
]
Y = [-0.89, -0.29, 0.88, 0.58, 0.09, 0.67, -2.83, 1.02, -0.96, -1.67]
OUT = "runs/fit"  # the out folder of `fit`, relative to the case's folder; runs/ must stay empty


def write_genotypes(path: Path, calls=CALLS, ids=IDS, markers=MARKERS) -> None:
    rows = [",".join(["id", *markers])] + [",".join([i, *map(str, c)]) for i, c in zip(ids, calls, strict=True)]
    path.write_text("\n".join(rows) + "\n")


def write_phenotypes(path: Path, **columns) -> None:
    table = pd.DataFrame({"id": IDS, "y": Y, "w": 1.0, "fold": ["A", "B"] * 5})
    for name, values in columns.items():
        table[name] = values
    table.to_csv(path, index=False)


def make_inputs(d: Path) -> Path:
    """The valid set every case breaks one thing of: geno.csv, pheno.csv, sets.csv, and runs/ for outputs."""
    write_genotypes(d / "geno.csv")
    write_phenotypes(d / "pheno.csv")
    (d / "sets.csv").write_text("marker,set\nm1,a\nm2,a\n")
    (d / "runs").mkdir()
    return d


def edit_pheno(**columns) -> Callable[[Path], None]:
    return lambda d: write_phenotypes(d / "pheno.csv", **columns)


def edit_calls(i: int, j: int, value) -> Callable[[Path], None]:
    def setup(d):
        calls = [list(map(str, row)) for row in CALLS]
        calls[i][j] = str(value)
        write_genotypes(d / "geno.csv", calls)

    return setup


def write(name: str, text: str | bytes) -> Callable[[Path], None]:
    def setup(d):
        (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())

    return setup


def _gzip_cut(path: Path) -> bytes:
    """``path`` with 2000 more rows, gzip-compressed and cut in the middle of the stream (the header stays whole)."""
    import gzip

    extra = "".join(f"x{k:04d},0,1,2,0,1,2\n" for k in range(2000))
    data = gzip.compress((path.read_text() + extra).encode())
    return data[: len(data) // 2]


BINARY = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]


def _repeat_first_iid(fam: Path) -> None:
    """The .fam's second individual given the first one's IID (in another family)."""
    rows = [line.split() for line in fam.read_text().splitlines()]
    rows[1][1] = rows[0][1]
    fam.write_text("".join(" ".join(row) + "\n" for row in rows))


def plink_copy(d: Path, *, drop_bim: int | None = None, drop_fam: int | None = None) -> Path:
    """The PLINK sample (120 individuals x 20 SNPs) copied to d/plink/, optionally one .bim or .fam line short."""
    (d / "plink").mkdir()
    for suffix, drop in ((".bed", None), (".bim", drop_bim), (".fam", drop_fam)):
        target = d / "plink" / f"sample{suffix}"
        shutil.copy(PLINK / f"sample{suffix}", target)
        if drop is not None:
            lines = target.read_text().splitlines(keepends=True)
            target.write_text("".join(lines[:drop] + lines[drop + 1 :]))
    return d / "plink" / "sample.bed"


def vcf(name: str = "geno.vcf", *, edit=None, samples=IDS, fmt: str = "GT") -> Callable[[Path], None]:
    """The valid set's calls as a VCF (record j at position 10 j, ID m_j, line 6 + j), after ``edit(records)``."""

    def setup(d):
        cells = ("0/0", "0/1", "1/1")
        column = (lambda c: cells[c]) if fmt == "GT" else (lambda c: f"{cells[c]}:{c}")
        records = [record(10 * (j + 1), m, [column(row[j]) for row in CALLS], fmt=fmt) for j, m in enumerate(MARKERS)]
        (d / name).write_text(vcf_text(edit(records) if edit else records, samples))

    return setup


def vcf_gz_cut(*, between_blocks: bool) -> Callable[[Path], None]:
    """geno.vcf.gz of 3000 records, cut: at a BGZF block (bgzip's file), or mid-stream (a plain gzip file)."""

    def setup(d):
        (d / "big.vcf").write_text(many_records(samples=IDS))
        if between_blocks:
            cut_at_a_block(convert(d / "big.vcf", d / "geno.vcf.gz", "wz"))
        else:
            cut_in_half(gzip_plain(d / "big.vcf", d / "geno.vcf.gz"))

    return setup


def _edit_record(j: int, **change) -> Callable[[list[str]], list[str]]:
    """Record j of the VCF with its fields changed: ``alt=``, ``name=``, or ``call=(sample index, text)``."""

    def edit(records):
        fields = records[j].split("\t")
        if "alt" in change:
            fields[4] = change["alt"]
        if "name" in change:
            fields[2] = change["name"]
        if "call" in change:
            i, text = change["call"]
            fields[9 + i] = text
        return [*records[:j], "\t".join(fields), *records[j + 1 :]]

    return edit


# --- the API calls: what a Python user writes, or the job behind `bayesblup fit` ---------------------------


def genotypes(d: Path, name="geno.csv"):
    geno, _ = bb.quality_control(bb.read_genotypes(d / name))
    return geno


def gblup(d: Path, *, trait="y", weights=None):
    """Read, QC, G, and the model, as in the README's "Your own data"."""
    geno = genotypes(d)
    pheno = bb.read_phenotypes(d / "pheno.csv")
    return bb.GBLUP(pheno[trait], bb.genomic_relationship(geno), weights=None if weights is None else pheno[weights])


def job(d: Path, **options):
    """:func:`bayesblup.cli.workflow.run_fit`, the API behind ``bayesblup fit`` (MAP: nothing should get that far)."""
    options = {"genotypes": d / "geno.csv", "phenotypes": d / "pheno.csv", "trait": "y", "method": "map"} | options
    return run_fit(FitJob(**options), say=lambda line: None)


def user_g(d: Path, G, ids=IDS[:4]):
    """A G-BLUP on a user's relationship matrix (an array, not built from these genotypes)."""
    y = pd.Series(Y[: len(ids)], index=ids, name="y")
    return bb.GBLUP(y, bb.Relationship(np.asarray(G, dtype=float), ids, "user"))


def tiny_fit():
    geno = bb.Genotypes.from_array(np.array(CALLS), ids=IDS, markers=MARKERS)
    return bb.GBLUP(pd.Series(Y, index=IDS, name="y"), bb.genomic_relationship(geno)).fit(method="map")


G_NAN = np.eye(4) + 0.1
G_NAN[1, 2] = G_NAN[2, 1] = np.nan
NOT_PSD = [[1.0, 0.9, 0.0, 0.0], [0.9, 1.0, 0.9, 0.0], [0.0, 0.9, 1.0, 0.9], [0.0, 0.0, 0.9, 1.0]]  # eigenvalue -0.46

MAP = "marker,chromosome,position\nm1,1,100\nm2,1,300\nm3,1,500\nm4,2,100\nm5,2,400\nm6,2,900\n"  # every marker

FIT = ["fit", "--genotypes", "{d}/geno.csv", "--phenotypes", "{d}/pheno.csv", "--trait", "y", "--model", "gblup"]
FIT += ["--method", "map", "--out", "{out}"]  # later options override these (argparse keeps the last)
GRM = ["grm", "--genotypes", "{d}/geno.csv", "--out", "{d}/runs/G.npz"]
VCF_FIT = [*FIT, "--genotypes", "{d}/geno.vcf"]


@dataclass(frozen=True)
class Case:
    id: str
    expect: tuple[str, ...]  # in the API's message and on the CLI's line: where, what was expected, what to do
    api: Callable[[Path], object] | None
    cli: list[str] | None
    setup: Callable[[Path], None] = lambda d: None
    note: str = ""  # why a route is missing


CASES = [
    # --- files: missing, unreadable, empty, wrong delimiter, header only ---------------------------------
    Case(
        "genotype_file_missing",
        ("genotype file not found: {d}/absent.csv", "check the path"),
        lambda d: bb.read_genotypes(d / "absent.csv"),
        [*FIT, "--genotypes", "{d}/absent.csv"],
    ),
    Case(
        "phenotype_file_missing",
        ("phenotype file not found: {d}/absent.csv", "check the path"),
        lambda d: bb.read_phenotypes(d / "absent.csv"),
        [*FIT, "--phenotypes", "{d}/absent.csv"],
    ),
    Case(
        "phenotype_path_is_a_folder",
        ("phenotype file {d}/runs is a folder", "give the file itself"),
        lambda d: bb.read_phenotypes(d / "runs"),
        [*FIT, "--phenotypes", "{d}/runs"],
    ),
    Case(
        "genotype_gz_not_compressed",
        ("{d}/geno.csv.gz cannot be read as a text CSV", "gzip", "save it"),
        lambda d: bb.read_genotypes(d / "geno.csv.gz"),
        [*FIT, "--genotypes", "{d}/geno.csv.gz"],
        setup=write("geno.csv.gz", b"id,m1\ni01,0\n"),
    ),
    Case(
        "phenotype_file_binary",
        ("{d}/pheno.csv", "cannot be read as a CSV of phenotypes", "save it as UTF-8 comma-separated text"),
        lambda d: bb.read_phenotypes(d / "pheno.csv"),
        FIT,
        setup=write("pheno.csv", b"id,y\n\xff\xfe\x00\x81,\x92\n"),
    ),
    Case(
        "genotype_file_empty",
        ("{d}/geno.csv is empty", "expected a header line"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=write("geno.csv", ""),
    ),
    Case(
        "phenotype_file_empty",
        ("{d}/pheno.csv is empty", "expected a header line"),
        lambda d: bb.read_phenotypes(d / "pheno.csv"),
        FIT,
        setup=write("pheno.csv", ""),
    ),
    Case(
        "genotype_file_semicolons",
        ("{d}/geno.csv", "looks ';'-separated", "comma-separated"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=write("geno.csv", "id;m1;m2\ni01;0;1\ni02;1;2\n"),
    ),
    Case(
        "genotype_row_a_field_short",
        ("{d}/geno.csv", "data row 3 (individual i03) has 6 fields where the header has 7", "empty cell"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=lambda d: (d / "geno.csv").write_text(
            (d / "geno.csv").read_text().replace("i03,1,1,0,0,2,2", "i03,1,1,0,0,2")
        ),
    ),
    Case(
        "genotype_file_cut_off_mid_row",
        ("{d}/geno.csv", "data row 10 (individual i10) has 4 fields", "the file may be cut off there"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=lambda d: (d / "geno.csv").write_text((d / "geno.csv").read_text()[:-7]),  # "i10,0,2,1"
    ),
    Case(
        "genotype_gz_truncated",
        ("{d}/geno.csv.gz", "the compressed file ends early", "copy it again"),
        lambda d: bb.read_genotypes(d / "geno.csv.gz"),
        [*FIT, "--genotypes", "{d}/geno.csv.gz"],
        setup=lambda d: (d / "geno.csv.gz").write_bytes(_gzip_cut(d / "geno.csv")),
    ),
    Case(
        "phenotype_file_tabs",
        ("{d}/pheno.csv", "looks tab-separated", "comma-separated"),
        lambda d: bb.read_phenotypes(d / "pheno.csv"),
        FIT,
        setup=write("pheno.csv", "id\ty\ni01\t1.5\ni02\t0.3\n"),
    ),
    Case(
        "genotype_file_header_only",
        ("{d}/geno.csv: no data rows under the header", "one row per individual"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=write("geno.csv", "id,m1,m2\n"),
    ),
    Case(
        "phenotype_file_header_only",
        ("{d}/pheno.csv: no data rows under the header", "one row per individual"),
        lambda d: bb.read_phenotypes(d / "pheno.csv"),
        FIT,
        setup=write("pheno.csv", "id,y\n"),
    ),
    # --- IDs ------------------------------------------------------------------------------------------------
    Case(
        "genotype_ids_duplicated",
        ("{d}/geno.csv: ids: duplicated label(s) i01 (individual IDs)", "must be unique", "rename"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=lambda d: write_genotypes(d / "geno.csv", ids=["i01", *IDS[:9]]),
    ),
    Case(
        "phenotype_ids_duplicated",
        ("{d}/pheno.csv", "trait y: individual(s) i01 have several records", "--repeated-records"),
        lambda d: gblup(d),
        FIT,
        setup=write("pheno.csv", "id,y\n" + "".join(f"{i},{v}\n" for i, v in zip(["i01", *IDS[:9]], Y, strict=True))),
    ),
    Case(
        "ids_do_not_overlap",
        ("{d}/pheno.csv", "none of the 10 phenotyped individuals has a genotype", "P01", "i01", "IDs match"),
        lambda d: gblup(d),
        FIT,
        setup=write("pheno.csv", "id,y\n" + "".join(f"P{k:02d},{v}\n" for k, v in enumerate(Y, 1))),
    ),
    Case(
        "phenotyped_without_genotype",
        ("{d}/pheno.csv", "2 phenotyped individuals have no genotype: x1, x2", "IDs match", "drop those records"),
        lambda d: gblup(d),
        FIT,
        setup=write(
            "pheno.csv", "id,y\n" + "".join(f"{i},{v}\n" for i, v in zip([*IDS[:8], "x1", "x2"], Y, strict=True))
        ),
    ),
    # --- the trait ------------------------------------------------------------------------------------------
    Case(
        "trait_not_numeric",
        ("{d}/pheno.csv", "trait y has a non-numeric value 'tall' for individual i03", "must be numbers", "NA"),
        lambda d: gblup(d),
        FIT,
        setup=edit_pheno(y=[*Y[:2], "tall", *Y[3:]]),
    ),
    Case(
        "trait_constant",
        ("{d}/pheno.csv", "trait y is constant", "1.5", "no variation"),
        lambda d: gblup(d),
        FIT,
        setup=edit_pheno(y=1.5),
    ),
    Case(
        "trait_column_absent",
        ("{d}/pheno.csv", "no trait column 'yield'", "the columns are y, w, fold", "--trait"),
        lambda d: job(d, trait="yield"),
        [*FIT, "--trait", "yield"],
    ),
    Case(
        "trait_all_missing",
        ("{d}/pheno.csv", "trait y", "0 non-missing records", "at least 3"),
        lambda d: gblup(d),
        FIT,
        setup=edit_pheno(y=np.nan),
    ),
    # --- genotype calls and QC ------------------------------------------------------------------------------
    Case(
        "genotype_code_3",
        ("{d}/geno.csv", "found 3 at (individual i04, marker m2)", "0/1/2", "replace it with NaN"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=edit_calls(3, 1, 3),
    ),
    Case(
        "genotype_code_text",
        ("{d}/geno.csv", "found 'AB' at individual i02, marker m5 (data row 2)", "empty cell or NA"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=edit_calls(1, 4, "AB"),
    ),
    Case(
        "every_marker_monomorphic",
        ("{d}/geno.csv", "no marker passes quality control (monomorphic: 6)", "vary between individuals"),
        lambda d: genotypes(d),
        FIT,
        setup=lambda d: write_genotypes(d / "geno.csv", calls=[[1] * 6] * 10),
    ),
    Case(
        "fewer_than_3_individuals",
        ("{d}/pheno.csv", "trait y", "2 non-missing records on 2 individuals", "at least 3"),
        lambda d: gblup(d),
        FIT,
        setup=lambda d: (
            write_genotypes(d / "geno.csv", calls=CALLS[:2], ids=IDS[:2]),
            (d / "pheno.csv").write_text("id,y\ni01,1.0\ni02,2.0\n"),
        ),
    ),
    # --- a user's G (API only: no command reads a G file) ---------------------------------------------------
    Case(
        "g_file_not_symmetric",
        ("{d}/G.csv", "not symmetric: G[a, b] and G[b, a] differ by 0.1", "symmetric", "(G + G') / 2"),
        lambda d: bb.read_relationship(d / "G.csv"),
        None,
        setup=write("G.csv", "id,a,b\na,1,0.5\nb,0.4,1\n"),
        note="no command reads a G file",
    ),
    Case(
        "g_file_with_nan",
        ("{d}/G.csv", "non-finite value at (a, b)", "a number in every cell"),
        lambda d: bb.read_relationship(d / "G.csv"),
        None,
        setup=write("G.csv", "id,a,b\na,1,NA\nb,0.5,1\n"),
        note="no command reads a G file",
    ),
    Case(
        "g_not_symmetric",
        ("relationship matrix", "not symmetric", "G[i01, i02]", "(G + G') / 2"),
        lambda d: user_g(d, np.eye(4) + np.triu(np.full((4, 4), 0.2), 1)),
        None,
        note="no command takes a G",
    ),
    Case(
        "g_with_nan",
        ("relationship matrix", "non-finite value at (i02, i03)", "a number in every cell"),
        lambda d: user_g(d, G_NAN),
        None,
        note="no command takes a G",
    ),
    Case(
        "g_not_positive_semi_definite",
        ("G is not positive semi-definite", "smallest eigenvalue is -0.456", "beyond the tolerance", "bend"),
        lambda d: user_g(d, NOT_PSD).fit(method="map"),
        None,
        note="no command takes a G",
    ),
    # --- weights ------------------------------------------------------------------------------------------
    Case(
        "weight_zero",
        ("{d}/pheno.csv", "weights w", "1 records have a weight that is not a positive number: i03 (0)", "drop"),
        lambda d: gblup(d, weights="w"),
        [*FIT, "--weights", "w"],
        setup=edit_pheno(w=[1, 1, 0, 1, 1, 1, 1, 1, 1, 1]),
    ),
    Case(
        "weight_negative",
        ("{d}/pheno.csv", "weights w", "1 records have a weight that is not a positive number: i05 (-2)"),
        lambda d: gblup(d, weights="w"),
        [*FIT, "--weights", "w"],
        setup=edit_pheno(w=[1, 1, 1, 1, -2, 1, 1, 1, 1, 1]),
    ),
    Case(
        "weight_missing",
        ("{d}/pheno.csv", "weights w", "1 records have a weight that is not a positive number: i10 (nan)"),
        lambda d: gblup(d, weights="w"),
        [*FIT, "--weights", "w"],
        setup=edit_pheno(w=[1] * 9 + [np.nan]),
    ),
    Case(
        "weight_column_absent",
        ("no column wt in the phenotypes {d}/pheno.csv", "the columns are y, w, fold"),
        lambda d: job(d, weights="wt"),
        [*FIT, "--weights", "wt"],
    ),
    # --- marker sets ----------------------------------------------------------------------------------------
    Case(
        "sets_unknown_marker",
        ("{d}/sets.csv", "1 markers are not in the genotypes: m99", "match the genotype file's header"),
        lambda d: bb.marker_sets(d / "sets.csv", genotypes(d).markers),
        [*FIT, "--sets", "{d}/sets.csv"],
        setup=write("sets.csv", "marker,set\nm1,a\nm99,a\n"),
    ),
    Case(
        "sets_empty_set",
        (
            "{d}/sets.csv",
            "set(s) a have no marker left",
            "m6 were dropped by quality control",
            "add markers to the set or drop it",
        ),
        lambda d: bb.marker_sets(d / "sets.csv", genotypes(d).markers, dropped=["m6"]),
        [*FIT, "--sets", "{d}/sets.csv"],
        setup=lambda d: (
            write_genotypes(d / "geno.csv", calls=[[*row[:5], 1] for row in CALLS]),
            (d / "sets.csv").write_text("marker,set\nm6,a\n"),
        ),
    ),
    Case(
        "sets_row_without_marker",
        ("{d}/sets.csv", "1 rows have no marker (lines 3)", "fill or drop them"),
        lambda d: bb.marker_sets(d / "sets.csv", genotypes(d).markers),
        [*FIT, "--sets", "{d}/sets.csv"],
        setup=write("sets.csv", "marker,set\nm1,a\n,a\n"),
    ),
    # --- options and outputs --------------------------------------------------------------------------------
    Case(
        "chains_zero",
        ("--chains", "chains must be at least 1, got 0"),
        lambda d: job(d, method="nuts", chains=0),
        [*FIT, "--method", "nuts", "--chains", "0"],
    ),
    Case(
        "draws_negative",
        ("--draws", "draws must be at least 1, got -5"),
        lambda d: job(d, method="nuts", draws=-5),
        [*FIT, "--method", "nuts", "--draws", "-5"],
    ),
    Case(
        "map_with_the_latent_form",
        ("method='map' with form='latent'", "degenerate", "form='marginal'"),
        lambda d: job(d, form="latent"),
        [*FIT, "--form", "latent"],
    ),
    Case(
        "genotype_cell_infinite",
        ("found inf at (individual i02, marker m3)", "An infinite value is no call"),
        lambda d: genotypes(d),
        FIT,
        setup=edit_calls(1, 2, "inf"),
    ),
    Case(
        "fixed_effect_infinite",
        ("fixed effect x holds inf for individual i05", "finite numbers"),
        lambda d: job(d, fixed=("x",)),
        [*FIT, "--fixed", "x"],
        setup=edit_pheno(x=[0.1, 0.5, -0.2, 1.0, np.inf, 0.3, 0.0, 0.7, -1.0, 0.2]),
    ),
    Case(
        "trait_values_overflow",
        ("trait y holds values as large in magnitude as", "e+200", "rescale the trait"),
        lambda d: gblup(d),
        FIT,
        setup=edit_pheno(y=[v * 1e200 for v in Y]),
    ),
    Case(
        "plots_with_map",
        ("--plots draws the posterior", "--method map does not sample", "use --method nuts"),
        None,
        [*FIT, "--plots"],
        note="a command-line option only: in Python the plot functions take a fit",
    ),
    # --- marker maps (--map): M-BLUP's effects along the genome -------------------------------------------
    Case(
        "marker_map_with_gblup",
        ("--map places marker effects along the genome", "G-BLUP", "add --model mblup, or drop --map"),
        lambda d: job(d, model="gblup", marker_map=d / "map.csv"),
        [*FIT, "--map", "{d}/map.csv"],
        setup=write("map.csv", MAP),
    ),
    Case(
        "marker_map_lacks_markers",
        ("{d}/map.csv lacks 1 of the fit's 6 markers (m6)", "give a map with every marker of the fit"),
        lambda d: job(d, model="mblup", marker_map=d / "map.csv"),
        [*FIT, "--model", "mblup", "--map", "{d}/map.csv"],
        setup=write("map.csv", MAP.replace("m6,2,900\n", "")),
    ),
    Case(
        "marker_map_duplicated_marker",
        ("{d}/map.csv: marker(s) listed twice: m2", "gives each marker one place"),
        lambda d: job(d, model="mblup", marker_map=d / "map.csv"),
        [*FIT, "--model", "mblup", "--map", "{d}/map.csv"],
        setup=write("map.csv", MAP + "m2,2,950\n"),
    ),
    Case(
        "marker_map_position_not_a_number",
        ("{d}/map.csv: position 'chr1:500' of marker m3 (line 4) is not a number", "Positions are numbers"),
        lambda d: job(d, model="mblup", marker_map=d / "map.csv"),
        [*FIT, "--model", "mblup", "--map", "{d}/map.csv"],
        setup=write("map.csv", MAP.replace("m3,1,500", "m3,1,chr1:500")),
    ),
    Case(
        "marker_map_without_position",
        ("{d}/map.csv: a marker map needs the columns marker, chromosome and position; it lacks position",),
        lambda d: job(d, model="mblup", marker_map=d / "map.csv"),
        [*FIT, "--model", "mblup", "--map", "{d}/map.csv"],
        setup=write("map.csv", "marker,chromosome,bp\nm1,1,100\n"),
    ),
    Case(
        "marker_map_missing",
        ("marker map file not found: {d}/absent.csv", "check the path"),
        lambda d: job(d, model="mblup", marker_map=d / "absent.csv"),
        [*FIT, "--model", "mblup", "--map", "{d}/absent.csv"],
    ),
    Case(
        "log_likelihood_with_map",
        ("--log-likelihood needs posterior draws", "--method map gives one point", "use --method nuts"),
        lambda d: job(d, log_likelihood=True),
        [*FIT, "--log-likelihood"],
    ),
    Case(
        "posterior_predictive_with_map",
        ("--posterior-predictive needs posterior draws", "--method map gives one point", "use --method nuts"),
        lambda d: job(d, posterior_predictive=True),
        [*FIT, "--posterior-predictive"],
    ),
    Case(
        "log_likelihood_with_several_traits",
        ("--log-likelihood is not available for several traits yet", "fit each trait alone"),
        lambda d: job(d, trait=["y", "z"], method="nuts", log_likelihood=True),
        [*FIT, "--trait", "y", "z", "--method", "nuts", "--log-likelihood"],
        setup=edit_pheno(z=[float(k) for k in range(10)]),
    ),
    Case(
        "predict_markers_renamed",
        ("{d}/new.csv", "markers of the fit (after QC) are absent: m1", "same names"),
        lambda d: job(d, method="nuts", predict=d / "new.csv"),
        [*FIT, "--method", "nuts", "--predict", "{d}/new.csv"],
        setup=lambda d: write_genotypes(d / "new.csv", CALLS[:2], ["n1", "n2"], ["M1", *MARKERS[1:]]),
    ),
    Case(
        "predict_ids_in_the_fit",
        ("{d}/new.csv", "2 individuals to predict are already in the genotypes of the fit: i01, i02", "drop them"),
        lambda d: job(d, method="nuts", predict=d / "new.csv"),
        [*FIT, "--method", "nuts", "--predict", "{d}/new.csv"],
        setup=lambda d: write_genotypes(d / "new.csv", CALLS[:2], IDS[:2]),
    ),
    Case(
        "ids_with_spaces_around_them",
        ("2 phenotyped individuals have no genotype", "IDs differ by spaces before or after them", "' i01'"),
        lambda d: gblup(d),
        FIT,
        setup=lambda d: (d / "pheno.csv").write_text(
            (d / "pheno.csv").read_text().replace("\ni01,", "\n i01,").replace("\ni02,", "\n i02,")
        ),
    ),
    Case(
        "family_binary_with_a_continuous_trait",
        ("family='binary' needs y to take exactly two values", "it takes 10", "family='ordinal'"),
        lambda d: job(d, family="binary"),
        [*FIT, "--family", "binary"],
    ),
    Case(
        "prevalence_out_of_range",
        ("prevalence must lie in (0, 1), got 1.5",),
        lambda d: job(d, family="binary", prevalence=1.5),
        [*FIT, "--family", "binary", "--prevalence", "1.5"],
        setup=edit_pheno(y=[0.0, 1.0] * 5),
    ),
    Case(
        "prevalence_without_a_binary_trait",
        ("prevalence applies to family='binary'",),
        lambda d: job(d, prevalence=0.1),
        [*FIT, "--prevalence", "0.1"],
    ),
    Case(
        "binary_family_with_several_traits",
        ("family='binary' takes one trait", "fit each binary or ordinal trait alone"),
        lambda d: job(d, trait=["y", "z"], family="binary"),
        [*FIT, "--trait", "y", "z", "--family", "binary"],
        setup=edit_pheno(y=[0.0, 1.0] * 5, z=[1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]),
    ),
    Case(
        "target_accept_out_of_range",
        ("target_accept must lie in (0, 1), got 1.5",),
        lambda d: job(d, method="nuts", target_accept=1.5),
        [*FIT, "--method", "nuts", "--target-accept", "1.5"],
    ),
    Case(
        "tune_negative",
        ("tune must be at least 0, got -1", "--tune"),
        lambda d: job(d, method="nuts", tune=-1),
        [*FIT, "--method", "nuts", "--tune", "-1"],
    ),
    Case(
        "missing_code_not_a_number",
        ("argument --missing-codes: invalid float value: 'NA'",),
        None,
        [*FIT, "--missing-codes", "NA"],
        note="a command-line option only: in Python missing_codes= takes numbers",
    ),
    Case(
        "fixed_column_absent",
        ("no column nope in the phenotypes", "check the names given to --fixed"),
        lambda d: job(d, fixed=("nope",)),
        [*FIT, "--fixed", "nope"],
    ),
    Case(
        "folds_column_absent",
        ("no column nope in the phenotypes", "--folds"),
        lambda d: job(d, folds="nope"),
        [*FIT, "--folds", "nope"],
    ),
    Case(
        "predict_with_marker_sets",
        ("--predict is not available with --sets yet",),
        lambda d: job(d, sets=d / "sets.csv", predict=d / "geno.csv"),
        [*FIT, "--sets", "{d}/sets.csv", "--predict", "{d}/geno.csv"],
    ),
    Case(
        "genotype_marker_named_twice",
        ("{d}/geno.csv", "duplicated marker name(s) in the header: m1"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=write("geno.csv", "id,m1,m1,m2\ni01,0,1,2\ni02,1,1,0\n"),
    ),
    Case(
        "phenotype_row_without_id",
        ("{d}/pheno.csv", "data row(s) 3 have no individual ID"),
        lambda d: bb.read_phenotypes(d / "pheno.csv"),
        FIT,
        setup=lambda d: (d / "pheno.csv").write_text((d / "pheno.csv").read_text().replace("\ni03,", "\n,")),
    ),
    Case(
        "genotype_row_without_id",
        ("{d}/geno.csv", "data row(s) 3 have no individual ID"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=lambda d: (d / "geno.csv").write_text((d / "geno.csv").read_text().replace("\ni03,", "\n,")),
    ),
    Case(
        "genotype_row_a_field_too_many",
        ("{d}/geno.csv", "malformed CSV", "Expected 7 fields in line 4, saw 8", "one call per marker"),
        lambda d: bb.read_genotypes(d / "geno.csv"),
        FIT,
        setup=lambda d: (d / "geno.csv").write_text(
            (d / "geno.csv").read_text().replace("i03,1,1,0,0,2,2", "i03,1,1,0,0,2,2,1")
        ),
    ),
    Case(
        "min_maf_out_of_range",
        ("min_maf must lie in [0, 0.5], got 0.7",),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.csv"), min_maf=0.7),
        [*FIT, "--min-maf", "0.7"],
    ),
    Case(
        "min_call_rate_out_of_range",
        ("min_call_rate must lie in [0, 1.0], got 1.5",),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.csv"), min_call_rate=1.5),
        [*FIT, "--min-call-rate", "1.5"],
    ),
    Case(
        "sets_file_missing",
        ("marker sets file not found: {d}/nope.csv", "check the path"),
        lambda d: bb.marker_sets(d / "nope.csv", genotypes(d).markers),
        [*FIT, "--sets", "{d}/nope.csv"],
    ),
    Case(
        "folds_a_single_label",
        ("cross-validation needs at least 2 folds", "give the records at least two fold labels"),
        lambda d: job(d, folds="fold"),
        [*FIT, "--folds", "fold"],
        setup=edit_pheno(fold=["A"] * 10),
    ),
    Case(
        "weights_text",
        ("weights w: 10 records have a weight that is not a positive number", "i01 (a)"),
        lambda d: gblup(d, weights="w"),
        [*FIT, "--weights", "w"],
        setup=edit_pheno(w=["a"] * 10),
    ),
    Case(
        "fixed_effect_constant",
        ("fixed effect w is constant", "the intercept already covers it"),
        lambda d: job(d, fixed=("w",)),
        [*FIT, "--fixed", "w"],
    ),
    Case(
        "fixed_effect_missing_value",
        ("fixed effects: 1 records have a missing value in x: i02", "Fill them or drop those records"),
        lambda d: job(d, fixed=("x",)),
        [*FIT, "--fixed", "x"],
        setup=edit_pheno(x=[1.0, None, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]),
    ),
    Case(
        "predict_genotypes_text",
        ("{d}/new.csv", "genotype calls must be numbers; found 'AA' at individual n1, marker m3"),
        lambda d: job(d, method="nuts", predict=d / "new.csv"),
        [*FIT, "--method", "nuts", "--predict", "{d}/new.csv"],
        setup=write("new.csv", "id,m1,m2,m3,m4,m5,m6\nn1,0,1,AA,0,1,2\n"),
    ),
    Case(
        "trait_names_the_id_column",
        ("no trait column 'id'", "the columns are y, w, fold", "--trait"),
        lambda d: job(d, trait="id"),
        [*FIT, "--trait", "id"],
    ),
    Case(
        "permanent_environment_without_repeated_records",
        ("(--permanent-environment) needs repeated records", "--repeated-records"),
        lambda d: job(d, permanent_environment=True),
        [*FIT, "--permanent-environment"],
    ),
    Case(
        "model_unknown",
        ("argument --model: invalid choice: 'xblup'",),
        None,
        [*FIT, "--model", "xblup"],
        note="a command-line choice: in Python the model is a class (GBLUP, MBLUP)",
    ),
    Case(
        "family_unknown",
        ("invalid choice: 'poisson'",),
        None,
        [*FIT, "--family", "poisson"],
        note="argparse's choices; the API's family= is checked by the model (tested in tests/models)",
    ),
    Case(
        "grm_output_exists",
        ("output {d}/G.npz already exists", "--force"),
        lambda d: bb.write_relationship(bb.genomic_relationship(genotypes(d)), d / "G.npz"),
        [*GRM, "--out", "{d}/G.npz"],
        setup=write("G.npz", "a file of the user's"),
    ),
    Case(
        "grm_output_suffix",
        ("output {d}/runs/G.txt: the name must end in .csv or .csv.gz or .npz",),
        lambda d: bb.write_relationship(bb.genomic_relationship(genotypes(d)), d / "runs" / "G.txt"),
        [*GRM, "--out", "{d}/runs/G.txt"],
    ),
    Case(
        "grm_allele_freq_with_sample_standardisation",
        ("--allele-freq applies to --scaling standardized-hwe or centered",),
        None,
        [*GRM, "--allele-freq", "{d}/af.csv"],
        setup=write("af.csv", "marker,p\nm1,0.5\n"),
        note="a check of the grm command's options (in Python allele_freq= goes with the scalings that use it)",
    ),
    Case(
        "grm_scheduler_without_dask",
        ("--scheduler runs the Dask computation of G: add --dask",),
        None,
        [*GRM, "--scheduler", "tcp://localhost:1"],
        note="command-line options only",
    ),
    Case(
        "grm_dask_with_a_csv",
        ("--dask reads a PLINK .bed block by block", "is not a PLINK .bed", "drop --dask"),
        None,
        [*GRM, "--dask"],
        note="command-line options only (in Python genomic_relationship_bed takes a .bed)",
    ),
    Case(
        "allele_freq_file_missing",
        ("allele frequency file not found: {d}/nope.csv",),
        lambda d: bb.read_allele_freq(d / "nope.csv"),
        [*GRM, "--scaling", "centered", "--allele-freq", "{d}/nope.csv"],
    ),
    Case(
        "fit_out_is_a_file",
        ("output {d}/f.txt is a file, not a folder", "new folder"),
        lambda d: tiny_fit().save(d / "f.txt"),
        [*FIT, "--out", "{d}/f.txt"],
        setup=write("f.txt", "a file of the user's"),
    ),
    Case(
        "plink_bim_missing",
        ("sample.bim", "a set needs .bed, .bim and .fam"),
        lambda d: bb.read_plink(d / "plink" / "sample"),
        [*GRM, "--genotypes", "{d}/plink/sample"],
        setup=lambda d: plink_copy(d).with_suffix(".bim").unlink(),
    ),
    Case(
        "genotypes_path_is_a_folder",
        ("cannot tell the format of {d}/runs", "PLINK .bed"),
        lambda d: bb.read_genotypes(d / "runs"),
        [*FIT, "--genotypes", "{d}/runs"],
    ),
    Case(
        "genotype_gz_empty",
        ("{d}/g.csv.gz is empty or starts with a blank line",),
        lambda d: bb.read_genotypes(d / "g.csv.gz"),
        [*FIT, "--genotypes", "{d}/g.csv.gz"],
        setup=write("g.csv.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    ),
    Case(
        "every_individual_below_the_call_rate",
        ("every individual has call rate below 1.0", "lower --min-individual-call-rate"),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.csv"), min_individual_call_rate=1.0),
        [*FIT, "--min-individual-call-rate", "1.0"],
        setup=lambda d: (d / "geno.csv").write_text((d / "geno.csv").read_text().replace(",0,", ",,")),
    ),
    Case(
        "several_traits_one_text",
        ("trait z has a non-numeric value 'a' for individual i01",),
        lambda d: job(d, trait=["y", "z"]),
        [*FIT, "--trait", "y", "z"],
        setup=edit_pheno(z=["a"] + [1.0] * 9),
    ),
    Case(
        "several_traits_one_named_twice",
        ("--trait names y twice", "give each trait once"),
        lambda d: job(d, trait=["y", "y"]),
        [*FIT, "--trait", "y", "y"],
    ),
    Case(
        "several_traits_one_constant",
        ("trait z is constant: all 10 records equal 1",),
        lambda d: job(d, trait=["y", "z"]),
        [*FIT, "--trait", "y", "z"],
        setup=edit_pheno(z=[1.0] * 10),
    ),
    Case(
        "several_traits_with_weights",
        ("--weights is not available with several traits yet", "one at a time"),
        lambda d: job(d, trait=["y", "z"], weights="w"),
        [*FIT, "--trait", "y", "z", "--weights", "w"],
        setup=edit_pheno(z=[float(k) for k in range(10)]),
    ),
    Case(
        "several_traits_with_repeated_records",
        ("--repeated-records is not available with several traits yet",),
        lambda d: job(d, trait=["y", "z"], repeated=True),
        [*FIT, "--trait", "y", "z", "--repeated-records"],
        setup=edit_pheno(z=[float(k) for k in range(10)]),
    ),
    Case(
        "binary_with_weights",
        ("family='binary' takes one unweighted record per individual",),
        lambda d: job(d, family="binary", weights="w"),
        [*FIT, "--family", "binary", "--weights", "w"],
        setup=edit_pheno(y=BINARY),
    ),
    Case(
        "binary_with_marker_sets",
        ("family='binary' takes one kernel", "several marker sets are not available yet"),
        lambda d: job(d, family="binary", sets=d / "sets.csv"),
        [*FIT, "--family", "binary", "--sets", "{d}/sets.csv"],
        setup=edit_pheno(y=BINARY),
    ),
    Case(
        "binary_with_the_marginal_form",
        ("family='binary' has no marginal form", "form='latent'"),
        lambda d: job(d, family="binary", form="marginal"),
        [*FIT, "--family", "binary", "--form", "marginal"],
        setup=edit_pheno(y=BINARY),
    ),
    Case(
        "ordinal_with_a_prevalence",
        ("prevalence applies to family='binary'",),
        lambda d: job(d, family="ordinal", prevalence=0.2),
        [*FIT, "--family", "ordinal", "--prevalence", "0.2"],
        setup=edit_pheno(y=BINARY),
    ),
    Case(
        "ordinal_trait_constant",
        ("trait y is constant: all 10 records equal 1",),
        lambda d: job(d, family="ordinal"),
        [*FIT, "--family", "ordinal"],
        setup=edit_pheno(y=[1.0] * 10),
    ),
    Case(
        "missing_codes_leave_no_record",
        ("trait y: 0 non-missing records", "at least 3 individuals with a record"),
        lambda d: job(d, missing_codes=tuple(Y)),
        [*FIT, "--missing-codes", *map(str, Y)],
    ),
    Case(
        "sets_a_set_called_rest",
        ("a set is already called 'rest'", "name the remainder otherwise"),
        lambda d: bb.marker_sets(d / "sets.csv", genotypes(d).markers),
        [*FIT, "--sets", "{d}/sets.csv"],
        setup=write("sets.csv", "marker,set\nm1,rest\nm2,rest\n"),
    ),
    Case(
        "sets_header_without_marker_and_set",
        ("the marker sets file needs columns 'marker' and 'set'", "it has snp, group"),
        lambda d: bb.marker_sets(d / "sets.csv", genotypes(d).markers),
        [*FIT, "--sets", "{d}/sets.csv"],
        setup=write("sets.csv", "snp,group\nm1,a\n"),
    ),
    Case(
        "fixed_factor_one_level",
        ("fixed effect f has a single level (A)", "the intercept already covers it"),
        lambda d: job(d, fixed=("f",)),
        [*FIT, "--fixed", "f"],
        setup=edit_pheno(f=["A"] * 10),
    ),
    Case(
        "plink_iids_repeat",
        ("sample.fam: within-family IDs (IID, column 2) repeat across families", "Make IIDs unique"),
        lambda d: bb.read_plink(d / "plink" / "sample.bed"),
        [*GRM, "--genotypes", "{d}/plink/sample.bed"],
        setup=lambda d: _repeat_first_iid(plink_copy(d).with_suffix(".fam")),
    ),
    Case(
        "weight_infinite",
        ("weights w: 1 records have a weight that is not a positive number: i10 (inf)",),
        lambda d: gblup(d, weights="w"),
        [*FIT, "--weights", "w"],
        setup=edit_pheno(w=[1.0] * 9 + [np.inf]),
    ),
    Case(
        "folds_column_is_the_trait",
        ("column y is the trait being fitted", "fold column"),
        lambda d: job(d, folds="y"),
        [*FIT, "--folds", "y"],
    ),
    Case(
        "summary_of_a_folder_that_does_not_exist",
        ("{d}/nope", "pass a folder written by `bayesblup fit --out`"),
        lambda d: bb.load_fit(d / "nope"),
        ["summary", "{d}/nope"],
    ),
    Case(
        "summary_of_a_folder_without_a_fit",
        ("{d}/runs has no summary.json", "pass a folder written by `bayesblup fit --out`"),
        None,
        ["summary", "{d}/runs"],
        note="the command's check; in Python load_fit reads the folder (tests/results)",
    ),
    Case(
        "min_maf_negative",
        ("min_maf must lie in [0, 0.5], got -0.1",),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.csv"), min_maf=-0.1),
        [*FIT, "--min-maf", "-0.1"],
    ),
    Case(
        "grm_genotype_file_missing",
        ("genotype file not found: {d}/nope.csv", "check the path"),
        lambda d: bb.read_genotypes(d / "nope.csv"),
        [*GRM, "--genotypes", "{d}/nope.csv"],
    ),
    Case(
        "demo_prior_unknown",
        ("argument --prior: invalid choice: 'weird'",),
        None,
        ["demo", "--prior", "weird"],
        note="the demo command's option",
    ),
    Case(
        "g_csv_header_and_rows_differ",
        ("{d}/G.csv: the column IDs in the header differ from the row IDs",),
        lambda d: bb.read_relationship(d / "G.csv"),
        None,
        setup=write("G.csv", "id,a,b,c\na,1,0,0\nb,0,1,0\n"),
        note="no command reads a G file yet (bayesblup fit builds G from the genotypes)",
    ),
    Case(
        "out_parent_is_a_file",
        ("output folder {d}/f.txt/fit: cannot write in {d}/f.txt", "choose an --out in a folder you can write to"),
        lambda d: tiny_fit().save(d / "f.txt" / "fit"),
        [*FIT, "--out", "{d}/f.txt/fit"],
        setup=write("f.txt", "a file of the user's"),
    ),
    Case(
        "seed_negative",
        ("seed", "must be an integer >= 0", "-1"),
        lambda d: job(d, seed=-1),
        [*FIT, "--seed", "-1"],
    ),
    Case(
        "cores_zero",
        ("cores must be at least 1, got 0",),
        lambda d: job(d, method="nuts", cores=0),
        [*FIT, "--method", "nuts", "--cores", "0"],
    ),
    Case(
        "reference_h2_out_of_range",
        ("--reference-h2", "must lie strictly between 0 and 1", "got 5"),
        None,
        [*FIT, "--reference-h2", "5"],
        note="a command-line option only: in Python the point is drawn by the caller",
    ),
    Case(
        "trait_as_its_own_fixed_effect",
        ("column y is the trait being fitted", "cannot also be a fixed effect", "name other columns"),
        lambda d: job(d, fixed=("y",)),
        [*FIT, "--fixed", "y"],
    ),
    Case(
        "phenotype_header_names_a_column_twice",
        ("pheno.csv", "names column 'y' twice (columns 2 and 5)", "distinct name"),
        lambda d: bb.read_phenotypes(d / "pheno.csv"),
        FIT,
        setup=write(
            "pheno.csv", "id,y,w,fold,y\n" + "".join(f"{i},{v},1,A,{v}\n" for i, v in zip(IDS, Y, strict=True))
        ),
    ),
    Case(
        "phenotypes_semicolons_and_decimal_commas",
        ("pheno.csv", "no trait column after the ID column", "';'-separated", "'.' as the decimal point"),
        lambda d: bb.read_phenotypes(d / "pheno.csv"),
        FIT,
        setup=write(
            "pheno.csv", "id;y\n" + "".join(f"{i};{v:.2f}\n".replace(".", ",") for i, v in zip(IDS, Y, strict=True))
        ),
    ),
    Case(
        "out_folder_exists",
        ("output folder {d}/runs/fit already exists", "--force"),
        lambda d: tiny_fit().save(d / OUT),
        FIT,
        setup=lambda d: (d / OUT).mkdir() or (d / OUT / "keep.txt").write_text("precious"),
    ),
    Case(
        "predict_file_missing",
        ("genotype file not found: {d}/new.csv", "check the path"),
        lambda d: job(d, predict=d / "new.csv"),
        [*FIT, "--predict", "{d}/new.csv"],
    ),
    Case(
        "folds_missing_for_some_records",
        ("fold column fold", "2 records have no fold: i03, i04", "give every record"),
        lambda d: job(d, folds="fold"),
        [*FIT, "--folds", "fold"],
        setup=edit_pheno(fold=["A", "B", None, None, "A", "B", "A", "B", "A", "B"]),
    ),
    # --- selection lists (--top) ------------------------------------------------------------------------------
    Case(
        "top_zero",
        ("the number of individuals to list (--top, n=) must be an integer of at least 1, got 0",),
        lambda d: job(d, top=0),
        [*FIT, "--top", "0"],
    ),
    Case(
        "top_more_than_the_candidates",
        ("a selection list of the best 11 (--top, n=)", "the fit has 10: give at most 10"),
        lambda d: job(d, top=11),
        [*FIT, "--top", "11"],
    ),
    Case(
        "top_fraction_out_of_range",
        ("the top fraction (--top-fraction, fraction=) must lie strictly between 0 and 1, got 1.5", "e.g. 0.1"),
        lambda d: job(d, top=3, top_fraction=1.5),
        [*FIT, "--top", "3", "--top-fraction", "1.5"],
    ),
    Case(
        "top_fraction_without_top",
        ("--top-fraction sets the top fraction of --top N", "add --top N, or drop --top-fraction"),
        lambda d: job(d, top_fraction=0.2),
        [*FIT, "--top-fraction", "0.2"],
    ),
    Case(
        "top_with_several_traits",
        ("a selection list (--top, fit.top) is not available for several traits yet", "sort genetic_values.csv"),
        lambda d: job(d, trait=["y", "z"], top=3),
        [*FIT, "--trait", "y", "z", "--top", "3"],
        setup=edit_pheno(z=[float(k % 4) for k in range(10)]),
    ),
    Case(
        "top_with_the_laplace_mode",
        ("needs joint draws of g, which the Laplace mode of a binary or ordinal trait", "use --method nuts"),
        lambda d: job(d, family="binary", top=3),
        [*FIT, "--family", "binary", "--top", "3"],
        setup=edit_pheno(y=BINARY),
    ),
    # --- PLINK ----------------------------------------------------------------------------------------------
    Case(
        "plink_bim_one_line_short",
        ("sample.bim lists 19 markers", "sample.fam 120 individuals", "sample.bed", "same set"),
        lambda d: bb.read_plink(d / "plink" / "sample.bed"),
        [*FIT, "--genotypes", "{d}/plink/sample.bed"],
        setup=lambda d: plink_copy(d, drop_bim=5),
    ),
    Case(
        "plink_fam_one_line_short",
        ("sample.fam lists 119 individuals", "sample.bed holds calls for more", "same set"),
        lambda d: bb.read_plink(d / "plink" / "sample.bed"),
        [*GRM, "--genotypes", "{d}/plink/sample.bed"],
        setup=lambda d: plink_copy(d, drop_fam=40),
    ),
    Case(
        "plink_fam_missing",
        ("sample.fam", "a set needs .bed, .bim and .fam"),
        lambda d: bb.read_plink(d / "plink" / "sample.bed"),
        [*GRM, "--genotypes", "{d}/plink/sample"],
        setup=lambda d: plink_copy(d).with_suffix(".fam").unlink(),
    ),
    # --- VCF (cyvcf2) ---------------------------------------------------------------------------------------
    Case(
        "vcf_multi_allelic",
        ("{d}/geno.vcf: record 3 (1:30 m3, line 9) is multi-allelic (ALT G,T)", "bcftools norm -m -any"),
        lambda d: bb.read_genotypes(d / "geno.vcf"),
        VCF_FIT,
        setup=vcf(edit=_edit_record(2, alt="G,T")),
    ),
    Case(
        "vcf_haploid_call",
        ("{d}/geno.vcf: reading GT: record 2 (1:20 m2, line 8): sample i03 has a call of ploidy 1", "diploid"),
        lambda d: bb.read_genotypes(d / "geno.vcf"),
        [*GRM, "--genotypes", "{d}/geno.vcf"],
        setup=vcf(edit=_edit_record(1, call=(2, "1"))),
    ),
    Case(
        "vcf_sample_ids_repeat",
        ("{d}/geno.vcf: sample ID i01 repeats in the header", "must be unique"),
        lambda d: bb.read_genotypes(d / "geno.vcf"),
        VCF_FIT,
        setup=vcf(samples=["i01", *IDS[:9]]),
    ),
    Case(
        "vcf_marker_ids_repeat",
        ("marker ID m3 repeats at record 3 (1:30 m3, line 9) and record 4 (1:40 m3, line 10)", "bcftools norm -d"),
        lambda d: bb.read_genotypes(d / "geno.vcf"),
        VCF_FIT,
        setup=vcf(edit=_edit_record(3, name="m3")),
    ),
    Case(
        "vcf_no_samples",
        ("{d}/geno.vcf: no samples: the file holds sites only",),
        lambda d: bb.read_genotypes(d / "geno.vcf"),
        VCF_FIT,
        setup=vcf(samples=[], edit=lambda records: ["\t".join(r.split("\t")[:8]) for r in records]),
    ),
    Case(
        "vcf_no_records",
        ("{d}/geno.vcf: no variant records after the header",),
        lambda d: bb.read_genotypes(d / "geno.vcf"),
        [*GRM, "--genotypes", "{d}/geno.vcf"],
        setup=vcf(edit=lambda records: []),
    ),
    Case(
        "vcf_gz_cut_between_blocks",
        ("{d}/geno.vcf.gz: the compressed file ends early: its closing BGZF block is missing", "copy it again"),
        lambda d: bb.read_genotypes(d / "geno.vcf.gz"),
        [*FIT, "--genotypes", "{d}/geno.vcf.gz"],
        setup=vcf_gz_cut(between_blocks=True),
    ),
    Case(
        "vcf_gz_cut_mid_stream",
        ("{d}/geno.vcf.gz: record", "Gzip file truncated", "The file seems cut off: copy it again"),
        lambda d: bb.read_genotypes(d / "geno.vcf.gz"),
        [*FIT, "--genotypes", "{d}/geno.vcf.gz"],
        setup=vcf_gz_cut(between_blocks=False),
    ),
    Case(
        "vcf_text_cut_mid_line",
        ("{d}/geno.vcf: the file does not end with a newline, so its last line may be cut off",),
        lambda d: bb.read_genotypes(d / "geno.vcf"),
        VCF_FIT,
        setup=lambda d: (vcf()(d), (d / "geno.vcf").write_bytes((d / "geno.vcf").read_bytes()[:-3])),
    ),
    Case(
        "vcf_dosage_outside_0_2",
        ("reading DS: record 1 (1:10 m1, line 7): sample i02 has dosage 2.5, outside [0, 2]", "Read GT instead"),
        lambda d: bb.read_genotypes(d / "geno.vcf"),
        VCF_FIT,
        setup=vcf(fmt="GT:DS", edit=_edit_record(0, call=(1, "1/1:2.5"))),
    ),
    Case(
        "vcf_field_absent",
        ("reading DS: record 1 (1:10 m1, line 7) has no DS field (FORMAT GT)", "--vcf-field GT"),
        lambda d: bb.read_genotypes(d / "geno.vcf", vcf_field="DS"),
        [*VCF_FIT, "--vcf-field", "DS"],
        setup=vcf(),
    ),
    Case(
        "vcf_coding_does_not_apply",
        ("VCF files hold ALT allele counts 0/1/2 (or dosages); coding='presence-absence' does not apply",),
        lambda d: bb.read_genotypes(d / "geno.vcf", coding="presence-absence"),
        [*GRM, "--genotypes", "{d}/geno.vcf", "--coding", "presence-absence"],
        setup=vcf(),
    ),
    Case(
        "vcf_field_without_a_vcf",
        ("--vcf-field", "chooses a VCF's GT calls or DS dosages", "drop"),
        lambda d: bb.read_genotypes(d / "geno.csv", vcf_field="DS"),
        [*FIT, "--vcf-field", "DS"],
    ),
    Case(
        "vcf_field_grm_without_a_vcf",
        ("--vcf-field", "chooses a VCF's GT calls or DS dosages", "{d}/geno.csv is not a .vcf"),
        lambda d: bb.read_genotypes(d / "geno.csv", vcf_field="GT"),
        [*GRM, "--vcf-field", "GT"],
    ),
    # --- --min-dosage-r2: a number in [0, 1], for fractional dosages only -----------------------------------
    Case(
        "min_dosage_r2_out_of_range",
        ("min_dosage_r2 must lie in [0, 1.0], got 1.5",),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.csv"), min_dosage_r2=1.5),
        [*FIT, "--min-dosage-r2", "1.5"],
    ),
    Case(
        "min_dosage_r2_negative",
        ("min_dosage_r2 must lie in [0, 1.0], got -0.1",),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.csv"), min_dosage_r2=-0.1),
        [*GRM, "--min-dosage-r2", "-0.1"],
    ),
    Case(
        "min_dosage_r2_with_hard_calls_of_a_csv",
        (
            "{d}/geno.csv: min_dosage_r2 (--min-dosage-r2) filters imputed dosages (a VCF's DS field, --vcf-field DS)",
            "these genotypes hold hard calls",
            "drop the option",
        ),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.csv"), min_dosage_r2=0.3),
        [*FIT, "--min-dosage-r2", "0.3"],
    ),
    Case(
        "min_dosage_r2_with_hard_calls_of_a_plink_set",
        ("{d}/plink/sample.bed: min_dosage_r2", "filters imputed dosages", "hold hard calls", "drop the option"),
        lambda d: bb.quality_control(bb.read_plink(d / "plink" / "sample.bed"), min_dosage_r2=0.3),
        [*GRM, "--genotypes", "{d}/plink/sample.bed", "--min-dosage-r2", "0.3"],
        setup=plink_copy,
    ),
    Case(
        "min_dosage_r2_with_the_gt_of_a_vcf",  # auto reads GT (no DS): refused once read, before the phenotypes
        ("{d}/geno.vcf: min_dosage_r2", "filters imputed dosages", "ALT allele counts, from the VCF's GT calls"),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.vcf"), min_dosage_r2=0.3),
        [*VCF_FIT, "--min-dosage-r2", "0.3"],
        setup=vcf(),
    ),
    Case(
        "min_dosage_r2_with_vcf_field_gt",  # refused before the file is read
        ("{d}/geno.vcf: min_dosage_r2", "filters imputed dosages", "GT calls", "drop the option"),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.vcf", vcf_field="GT"), min_dosage_r2=0.3),
        [*GRM, "--genotypes", "{d}/geno.vcf", "--vcf-field", "GT", "--min-dosage-r2", "0.3"],
        setup=vcf(fmt="GT:DS"),
    ),
    Case(
        "min_dosage_r2_with_whole_ds",  # auto reads DS, all whole: held as counts, as GT's
        (
            "{d}/geno.vcf: min_dosage_r2",
            "the VCF's DS values are all whole numbers, held as allele counts",
            "drop the option",
        ),
        lambda d: bb.quality_control(bb.read_genotypes(d / "geno.vcf"), min_dosage_r2=0.3),
        [*VCF_FIT, "--min-dosage-r2", "0.3"],
        setup=vcf(fmt="GT:DS"),
    ),
]


def _format(text: str, d: Path) -> str:
    return text.format(d=d, out=d / OUT)


def _inputs(tmp_path: Path, case: Case) -> Path:
    d = make_inputs(tmp_path)
    case.setup(d)
    return d


def _check_leftovers(d: Path, case: Case) -> None:
    """Neither the out folder nor a temporary folder or file of a write: runs/ is as the case left it."""
    left = sorted(p.name for p in (d / "runs").iterdir())
    if case.id == "out_folder_exists":
        assert left == ["fit"] and [p.name for p in (d / OUT).iterdir()] == ["keep.txt"]
        assert (d / OUT / "keep.txt").read_text() == "precious"
    else:
        assert left == [], left


def test_the_catalogue_is_complete():
    assert len(CASES) >= 120 and len({c.id for c in CASES}) == len(CASES)  # issue 17's floor
    assert sum(c.api is not None for c in CASES) >= 100 and sum(c.cli is not None for c in CASES) >= 100
    assert all(c.note for c in CASES if c.api is None or c.cli is None)


def test_the_valid_set_passes_every_check(tmp_path):
    """The starting point is good: each case fails for its own reason, not the valid set's."""
    d = make_inputs(tmp_path)
    model = gblup(d, weights="w")
    assert model.n == 10 and model.records.weights is not None
    sets = bb.marker_sets(d / "sets.csv", genotypes(d).markers)
    assert sets.sizes == {"a": 2, "rest": 4}


@pytest.mark.parametrize("case", [c for c in CASES if c.api], ids=lambda c: c.id)
def test_api_refuses(tmp_path, case):
    d = _inputs(tmp_path, case)
    with pytest.raises(bb.InputError) as info:
        case.api(d)
    message = " ".join(str(info.value).split())
    for fragment in case.expect:
        assert _format(fragment, d) in message, message
    _check_leftovers(d, case)


def _run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors exit from inside main
        return exc.code


@pytest.mark.parametrize("case", [c for c in CASES if c.cli], ids=lambda c: c.id)
def test_cli_exits_2_with_one_line(tmp_path, capsys, case):
    d = _inputs(tmp_path, case)
    argv = [_format(a, d) for a in case.cli]
    assert _run_cli(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bayesblup {argv[0]}: error: "), err
    for fragment in case.expect:
        assert _format(fragment, d) in lines[0], lines[0]
    _check_leftovers(d, case)


@pytest.mark.parametrize(
    "case_id",
    ["genotype_file_semicolons", "ids_do_not_overlap", "chains_zero", "out_folder_exists", "vcf_gz_cut_mid_stream"],
)
def test_real_process_exits_2_without_traceback(tmp_path, case_id):
    case = next(c for c in CASES if c.id == case_id)
    d = _inputs(tmp_path, case)
    argv = [_format(a, d) for a in case.cli]
    run = subprocess.run([sys.executable, "-m", "bayesblup", *argv], capture_output=True, text=True, check=False)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"bayesblup {argv[0]}: error: ")
    for fragment in case.expect:
        assert _format(fragment, d) in run.stderr
    _check_leftovers(d, case)


def test_g_within_the_tolerance_is_accepted():
    """Not PSD only beyond rounding: an eigenvalue of -1e-13 x the largest is clipped, not refused."""
    values = np.array([-1e-13, 1.0, 2.0, 3.0])
    vectors = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))[0]
    K = vectors @ np.diag(values) @ vectors.T
    sp = bb.eigendecompose((K + K.T) / 2)
    assert sp.n_clipped == 1 and sp.rank == 3


def test_missing_value_code_warns_and_can_be_declared(tmp_path, capsys):
    """-9 among a trait's values (here about N(0, 1)) is fitted, with a warning that names the value, its count and
    --missing-codes; declared, those records are missing (9 individuals with a record, not 10)."""
    d = make_inputs(tmp_path)
    write_phenotypes(d / "pheno.csv", y=[*Y[:9], -9.0])
    with pytest.warns(bb.DataWarning, match=r"1 record\(s\) equal -9, far from the others .*--missing-codes -9"):
        gblup(d)
    argv = [_format(a, d) for a in FIT]
    with warnings.catch_warnings():
        warnings.simplefilter("always", bb.DataWarning)  # the suite turns warnings into errors; the CLI prints them
        assert main(argv) == 0
    assert "warning: " in capsys.readouterr().err
    table = bb.read_phenotypes(d / "pheno.csv", missing_codes=[-9])
    assert table["y"].isna().sum() == 1 and table["w"].notna().all()
    out = d / "runs" / "declared"
    assert main([*argv[:-1], str(out), "--missing-codes", "-9"]) == 0
    assert "missing-codes" not in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n_records"], summary["n_unphenotyped"]) == (9, 1)


def test_a_plausible_value_is_not_taken_for_a_code():
    """99 among body weights of 80-120 is a record, not a code: no warning."""
    from bayesblup.phenotypes import warn_missing_codes

    weights = pd.Series([82.0, 95.0, 99.0, 101.0, 110.0, 120.0, 88.0], name="weight")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_missing_codes(weights, "weight")


def test_an_unreadable_genotype_file_says_permission_denied(tmp_path, monkeypatch):
    """Permission denied is said as such, not as "save it as a text CSV" (injected: root reads any file)."""
    import errno
    import os

    import bayesblup.genotypes.readers as readers

    d = make_inputs(tmp_path)

    def denied(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(readers, "open_text", denied)
    with pytest.raises(bb.InputError, match=r"geno\.csv: permission denied; give yourself read access"):
        bb.read_genotypes(d / "geno.csv")


def test_a_plink_set_too_large_for_memory_is_refused_before_g(tmp_path, monkeypatch, capsys):
    """200,000 individuals x 20 SNPs (a consistent PLINK set of 1 MB): G alone would be 298 GiB. grm and fit refuse
    with the figure and what would fit, before any n x n allocation (the machine's memory is pinned at 16 GiB so
    that the test means the same everywhere)."""
    from bed_reader import to_bed

    import bayesblup.resources as resources

    n, m = 200_000, 20
    rng = np.random.default_rng(3)
    bed = tmp_path / "big.bed"
    to_bed(bed, rng.integers(0, 3, (n, m)).astype(np.int8), properties={"iid": [f"i{k}" for k in range(n)]})
    pd.DataFrame({"id": [f"i{k}" for k in range(10)], "y": Y}).to_csv(tmp_path / "pheno.csv", index=False)
    monkeypatch.setattr(resources, "available_memory", lambda: 16 * 2**30)
    assert main(["grm", "--genotypes", str(bed), "--out", str(tmp_path / "G.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "G of 200000 individuals from 20 markers (float64) needs about 298.1 GiB of memory and 16.0 GiB" in err
    assert "--float32 halves it" in err and err.count("\n") == 1
    args = ["fit", "--genotypes", str(bed), "--phenotypes", str(tmp_path / "pheno.csv"), "--trait", "y"]
    assert main([*args, "--model", "mblup", "--out", str(tmp_path / "fit"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "a fit of 200000 individuals (20 markers) needs about 894.1 GiB of memory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bed", "big.bim", "big.fam", "pheno.csv"]
    # the API: genomic_relationship refuses G itself, before allocating it
    with pytest.raises(bb.InputError, match=r"G of 200000 individuals \(float64\) needs about 298\.0 GiB"):
        bb.genomic_relationship(bb.read_plink(bed))
