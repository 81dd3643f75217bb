"""The command line: grm on wheat and PLINK equals the hand computation; exits, messages, no overwrite."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from oracles import exact_relationship

import bayesblup as bb
from bayesblup.cli.main import main
from bayesblup.datasets import wheat_path


@pytest.mark.exact
def test_grm__wheat_equals_r_scale(tmp_path, capsys, wheat):
    out = tmp_path / "G.npz"
    assert (
        main(["grm", "--genotypes", wheat_path("wheat_X.csv.gz"), "--scaling", "standardized", "--out", str(out)]) == 0
    )
    G = bb.read_relationship(out)
    X = wheat.genotypes.calls.astype(float)
    W = (X - X.mean(0)) / X.std(0, ddof=1)  # R's scale(), the reference runs' W
    np.testing.assert_allclose(G.matrix, W @ W.T / X.shape[1], rtol=1e-10, atol=1e-12)
    assert list(G.ids) == list(wheat.phenotypes.index)
    text = capsys.readouterr().out
    assert "\ndropped " not in text  # no QC drop line: every wheat marker is polymorphic, none missing
    assert "G (standardized, G = WW'/m): n = 599, m = 1279" in text
    assert "markers dropped by QC: 0" in text
    assert f"wrote {out}" in text


@pytest.mark.parametrize("scaling", ["standardized", "standardized-hwe", "centered"])
@pytest.mark.exact
def test_grm__plink_sample_equals_exact_oracle(tmp_path, capsys, plink_bed, scaling):
    out = tmp_path / "G.csv"
    assert main(["grm", "--genotypes", str(plink_bed), "--scaling", scaling, "--out", str(out)]) == 0
    G = bb.read_relationship(out)
    raw = bb.read_genotypes(plink_bed)
    calls = raw.calls.astype(float)
    calls[raw.calls == bb.MISSING] = np.nan
    kept = (np.nan_to_num(calls, nan=-1)[:, :, None] == np.arange(3)).any(0).sum(1) >= 2  # polymorphic
    expected = exact_relationship(calls[:, kept], scaling=scaling, k=2)
    # Tolerance: float64 rounding, and the CSV holds 17 significant digits.
    np.testing.assert_allclose(G.matrix, expected, rtol=1e-12, atol=1e-13)
    text = capsys.readouterr().out
    assert "missing calls: 141 of 2400" in text
    assert f"markers dropped by QC: {20 - kept.sum()}" in text


@pytest.mark.structural
def test_grm__never_overwrites_without_force(tmp_path, capsys, plink_bed):
    out = tmp_path / "G.npz"
    out.write_bytes(b"keep me")
    args = ["grm", "--genotypes", str(plink_bed), "--scaling", "centered", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert out.read_bytes() == b"keep me"
    assert main([*args, "--force"]) == 0
    assert bb.read_relationship(out).n_individuals == 120


@pytest.mark.structural
def test_grm__filters_and_float32(tmp_path, capsys, plink_bed):
    out = tmp_path / "G.npz"
    args = [
        "grm",
        "--genotypes",
        str(plink_bed),
        "--scaling",
        "centered",
        "--min-maf",
        "0.2",
        "--min-call-rate",
        "0.95",
    ]
    assert main([*args, "--float32", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "with call rate below 0.95" in text and "with minor allele frequency below 0.2" in text
    assert np.load(out)["G"].dtype == np.float32


@pytest.mark.structural
def test_grm__base_allele_frequencies(tmp_path, plink_bed):
    raw = bb.read_genotypes(plink_bed)
    geno, _ = bb.quality_control(raw)
    p = np.linspace(0.2, 0.8, raw.n_markers)
    (tmp_path / "p.csv").write_text("marker,p\n" + "".join(f"{m},{v}\n" for m, v in zip(raw.markers, p, strict=True)))
    out = tmp_path / "G.npz"
    assert (
        main(
            [
                "grm",
                "--genotypes",
                str(plink_bed),
                "--scaling",
                "centered",
                "--allele-freq",
                str(tmp_path / "p.csv"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    import pandas as pd

    expected = bb.genomic_relationship(geno, scaling="centered", allele_freq=pd.Series(p, index=raw.markers))
    np.testing.assert_allclose(bb.read_relationship(out).matrix, expected.matrix, rtol=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--genotypes", "missing.csv"], "genotype file not found: missing.csv"),
        (["--genotypes", "x.txt"], "cannot tell the format of x.txt"),
        (["--genotypes", "{plink}", "--min-maf", "0.9"], "min_maf must lie in [0, 0.5], got 0.9"),
        (["--genotypes", "{plink}", "--scaling", "standardized", "--allele-freq", "p.csv"], "applies to --scaling"),
        (["--genotypes", "{plink}", "--scaling", "centered", "--allele-freq", "{plink}"], "cannot be read as a CSV"),
    ],
)
@pytest.mark.structural
def test_grm__bad_input_exits_2_with_one_line(tmp_path, capsys, plink_bed, args, message):
    args = [a.replace("{plink}", str(plink_bed)) for a in args]
    assert main(["grm", *args, "--out", str(tmp_path / "G.npz")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("bayesblup grm: error: ") and captured.err.count("\n") == 1
    assert message in captured.err
    assert not (tmp_path / "G.npz").exists()


@pytest.mark.structural
def test_cli__installed_entry_point_gives_clean_errors(tmp_path):
    """The real process: exit code 2, one line on stderr, no traceback."""
    bad = tmp_path / "g.csv"
    bad.write_text("id,m1,m2\na,0,AB\nb,1,2\n")
    run = subprocess.run(
        [sys.executable, "-m", "bayesblup", "grm", "--genotypes", str(bad), "--out", str(tmp_path / "G.npz")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0
    assert "found 'AB' at individual a, marker m2" in run.stderr


@pytest.mark.structural
def test_cli__usage_error_exits_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["grm", "--genotypes", "g.csv", "--scaling", "vanraden", "--out", "G.npz"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'vanraden'" in err and "--help" in err


@pytest.mark.structural
def test_cli__help_gives_examples(capsys):
    for args in (["--help"], ["grm", "--help"], ["fit", "--help"], ["summary", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 0
        assert "example" in capsys.readouterr().out


@pytest.mark.structural
def test_demo__fits_both_models_and_checks_the_equivalence(capsys):
    """The README's main job, at reduced length (2 chains x 300 draws) to keep the suite quick."""
    assert main(["demo", "--chains", "2", "--draws", "300", "--tune", "300"]) == 0
    text = capsys.readouterr().out
    assert "--- G-BLUP ---" in text and "--- M-BLUP ---" in text
    assert "trait y1: 599 records matched" in text
    assert sum(line.startswith("h2 = ") for line in text.splitlines()) == 2 and "90% interval [" in text
    assert "reference (BGLR RKHS" in text
    assert "verdict: eq (7)" in text


@pytest.mark.structural
def test_summary__terms_cross_validation_and_map_headers(tmp_path, capsys):
    """`bayesblup summary` names the terms of a --sets fit, prints the CV correlation of a --folds fit, and heads a MAP
    table with its one column (no sd, quantile or MCMC headers)."""
    sets = tmp_path / "sets.csv"
    markers = pd.read_csv(wheat_path("wheat_X.csv.gz"), nrows=0).columns[1:101]
    pd.DataFrame({"marker": markers, "set": "feature"}).to_csv(sets, index=False)
    base = ["fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv"),
            "--trait", "y1", "--method", "map", "--quiet"]  # fmt: skip
    assert main([*base, "--sets", str(sets), "--out", str(tmp_path / "sets")]) == 0
    assert main([*base, "--folds", wheat_path("wheat_sets.csv"), "--out", str(tmp_path / "cv")]) == 0
    capsys.readouterr()
    assert main(["summary", str(tmp_path / "sets")]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].endswith("method map; terms feature, rest")
    assert text[2].split() == ["parameter", "mean", "(MAP", "point", "estimates)"]
    assert main(["summary", str(tmp_path / "cv")]) == 0
    cv = json.loads((tmp_path / "cv" / "summary.json").read_text())["cross_validation"]["mean_correlation"]
    assert f"cross-validation: mean predictive correlation {cv:.3f} (cv.csv)" in capsys.readouterr().out
