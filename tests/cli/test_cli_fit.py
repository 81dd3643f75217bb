"""`bayesblup fit`: the out-folder contract of summary.json, genetic_values.csv and posterior.nc; exits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayesblup.cli.main import main
from bayesblup.datasets import wheat_path

pytestmark = pytest.mark.structural

QUICK = ["--chains", "2", "--draws", "200", "--tune", "200", "--seed", "1"]


def fit_args(out, model="gblup", *extra):
    return [
        "fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv"),
        "--trait", "y1", "--model", model, "--out", str(out), *extra,
    ]  # fmt: skip


def check_contract(out, parameters):
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "model",
        "n_records",
        "n_individuals",
        "n_markers",
        "scaling",
        "prior",
        "method",
        "parameters",
        "diagnostics",
        "timings",
    ):
        assert key in summary, key
    assert set(parameters) <= set(summary["parameters"])
    for name in parameters:
        assert set(summary["parameters"][name]) >= {"mean", "sd", "q05", "q95", "ess_bulk", "r_hat"}
    assert set(summary["diagnostics"]) >= {"divergences", "max_r_hat", "min_ess_bulk", "warnings"}
    timings = summary["timings"]
    assert timings["total_s"] > 0
    # every phase a user waits for, Python's start-up included (Linux /proc), adds up to the process's time
    for phase in ("read_s", "build_s", "sampling_s", "genetic_values_s", "write_s", "startup_s"):
        assert timings[phase] >= 0, phase
    assert timings["process_s"] == pytest.approx(timings["startup_s"] + timings["total_s"])
    assert timings["total_s"] >= timings["write_s"] + timings["sampling_s"]
    values = pd.read_csv(out / "genetic_values.csv", dtype={"id": str})
    assert list(values.columns[:3]) == ["id", "mean", "sd"] and len(values) == 599
    assert (out / "posterior.nc").is_file()
    return summary, values


@pytest.mark.parametrize(
    ("model", "parameters"),
    [
        ("gblup", ["h2", "sigma2_g", "sigma2_e", "mu"]),
        ("mblup", ["h2", "sigma2_b", "sigma2_g_equiv", "sigma2_e", "mu"]),
    ],
)
def test_fit__writes_the_contract(tmp_path, capsys, model, parameters):
    import xarray as xr

    out = tmp_path / "fit"
    assert main([*fit_args(out, model), *QUICK, "--prior", "bglr"]) == 0
    summary, values = check_contract(out, parameters)
    assert summary["model"] == model and summary["prior"] == "bglr" and summary["method"] == "nuts"
    assert (summary["n_records"], summary["n_markers"], summary["scaling"]) == (599, 1279, "standardized")
    assert summary["kernel"]["rank"] == 598  # a centred G loses one rank
    assert any("rank 598 of 599" in w for w in summary["diagnostics"]["notes"])  # a fact, not a warning
    assert summary["diagnostics"]["eigenvalues"]["n_clipped"] == 1
    # 2 x 200 draws: h2 sits near BGLR's 0.502; 0.1 is ~10 sd of this short run's Monte Carlo error.
    assert abs(summary["parameters"]["h2"]["mean"] - 0.502) < 0.1
    tree = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")
    assert {"posterior", "genetic_values"} <= set(tree.children)
    np.testing.assert_allclose(tree["genetic_values"]["mean"].values, values["mean"], rtol=1e-8, atol=1e-10)
    text = capsys.readouterr().out
    assert "h2 = " in text and "diagnostics: 0 divergences" in text and f"wrote {out}/" in text
    if model == "mblup":
        assert (out / "marker_effects.csv").is_file()


def test_fit__map_fills_mean_and_nulls_the_rest(tmp_path):
    out = tmp_path / "map"
    assert main([*fit_args(out), "--method", "map", "--prior", "bglr", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    h2 = summary["parameters"]["h2"]
    # MAP with BGLR priors sits by REML's h2 = 0.499 (rrblup_wheat.csv): the priors are weak at n = 599.
    assert abs(h2["mean"] - 0.499) < 0.01
    assert h2["sd"] is None and h2["q05"] is None and h2["r_hat"] is None
    assert summary["diagnostics"]["divergences"] is None


def test_fit__never_overwrites_without_force(tmp_path, capsys):
    out = tmp_path / "fit"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main([*fit_args(out), "--method", "map"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert (out / "keep.txt").read_text() == "precious"
    assert main([*fit_args(out), "--method", "map", "--force", "--quiet"]) == 0
    assert not (out / "keep.txt").exists() and (out / "summary.json").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--trait", "y9"], "no trait column 'y9'; the columns are y1, y2, y4, y5"),
        (["--chains", "0"], "chains must be at least 1"),
    ],
)
def test_fit__bad_input_exits_2(tmp_path, capsys, change, message):
    args = fit_args(tmp_path / "fit")
    args[args.index("--trait") : args.index("--trait") + 2] = []
    assert main([*args, "--trait", "y1", "--method", "map", *change]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "fit").exists()


def test_fit__phenotyped_without_genotype_is_named(tmp_path, capsys):
    pheno = pd.read_csv(wheat_path("wheat_Y.csv"), dtype={"line_id": str})
    pheno.loc[0, "line_id"] = "nobody"
    pheno.to_csv(tmp_path / "p.csv", index=False)
    args = fit_args(tmp_path / "fit", "gblup")
    args[args.index("--phenotypes") + 1] = str(tmp_path / "p.csv")
    assert main([*args, "--method", "map"]) == 2
    assert "1 phenotyped individuals have no genotype: nobody" in capsys.readouterr().err


def test_fit__unexpected_error_exits_1(tmp_path, capsys, monkeypatch):
    import bayesblup.cli.workflow

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(bayesblup.cli.workflow, "run_fit", broken)
    assert main([*fit_args(tmp_path / "fit"), "--method", "map"]) == 1
    assert "internal error: RuntimeError: simulated bug" in capsys.readouterr().err


def test_fit__one_chain_reports_no_r_hat(tmp_path, capsys):
    """One chain has no R-hat: the final table says so instead of failing (it once raised TypeError)."""
    out = tmp_path / "one"
    assert main([*fit_args(out), "--chains", "1", "--draws", "100", "--tune", "100", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "max R-hat n/a (one chain)" in printed
    assert "one chain: R-hat cannot be computed" in printed


def _table(text: str) -> list[str]:
    """The end-of-fit table: from its header line through the diagnostics and warnings."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("parameter "))
    stop = next(i for i, line in enumerate(lines) if line.startswith("diagnostics:"))
    return lines[start : stop + 1] + [line for line in lines[stop + 1 :] if line.startswith("warning:")]


def test_summary_reprints_the_table_of_a_finished_fit(tmp_path, capsys):
    out = tmp_path / "fit"
    assert main(fit_args(out, "gblup", *QUICK)) == 0
    printed = capsys.readouterr().out
    assert main(["summary", str(out)]) == 0
    again = capsys.readouterr().out
    assert _table(again) == _table(printed) and len(_table(again)) >= 5  # header, 4 parameters, diagnostics
    h2 = next(line for line in printed.splitlines() if line.startswith("h2 = "))
    assert h2 in again.splitlines()
    assert again.splitlines()[0].startswith("gblup (marginal) of trait y1: 599 records, 599 individuals, prior")
    assert again.splitlines()[-1] == f"outputs in {out}/: genetic_values.csv, posterior.nc, summary.json"


def test_summary_of_a_folder_without_a_fit_exits_2(tmp_path, capsys):
    assert main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no summary.json: pass a folder written by `bayesblup fit --out`" in err


@pytest.mark.parametrize(
    ("tty", "quiet", "expected"), [(True, False, True), (False, False, False), (True, True, False)]
)
def test_fit__progress_bar_only_on_a_terminal_and_not_with_quiet(tmp_path, capsys, monkeypatch, tty, quiet, expected):
    """PyMC's progress bar is shown on a terminal; a pipe or log file, or --quiet, gets none."""
    import sys

    import bayesblup.fitting

    seen = []
    original = bayesblup.fitting.BLUPModel.fit

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("progressbar"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(bayesblup.fitting.BLUPModel, "fit", spy)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    extra = ["--quiet"] if quiet else []
    assert main([*fit_args(tmp_path / "fit"), "--chains", "1", "--draws", "50", "--tune", "50", *extra]) == 0
    assert seen == [expected]
    out = capsys.readouterr().out
    if quiet:
        assert out == ""
    else:  # the long phases each print a line: G, eigendecomposition, compilation, sampling
        for phrase in ("G (standardized): 599 x 599", "eigendecomposition: rank 598", "compiling", "draws"):
            assert phrase in out, phrase


def test_fit__quiet_process_prints_nothing(tmp_path):
    """The real process with --quiet: no progress lines and none of PyMC's log lines (they once leaked,
    because PyMC sets levels on its sub-loggers). In-process tests cannot see this: under pytest PyMC
    leaves its records to pytest's own log capture."""
    import subprocess
    import sys

    args = [*fit_args(tmp_path / "fit"), "--chains", "1", "--draws", "50", "--tune", "50", "--quiet"]
    run = subprocess.run([sys.executable, "-m", "bayesblup", *args], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""


def test_fit__the_program_never_imports_dask_and_its_plots_still_draw(tmp_path):
    """The real process (`bayesblup fit`, Dask installed by the test extra) tells xarray there is no Dask: its probes
    cost 0.4 s of a 3 s wheat fit. Python's import log shows neither dask nor distributed, and the fit with its plots
    (ArviZ, which probes Dask too) is written as usual."""
    import subprocess
    import sys

    args = [*fit_args(tmp_path / "fit"), "--chains", "2", "--draws", "50", "--tune", "50", "--quiet", "--plots"]
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bayesblup", *args], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time")}
    assert "pymc" in imported and "xarray" in imported  # the log is the one expected
    # a refused `import dask` still logs one line ("dask", microseconds); a loaded Dask logs its submodules
    assert not [name for name in imported if name.startswith(("dask.", "distributed"))]
    assert {"posterior.nc", "trace.png", "genetic_values.png"} <= {p.name for p in (tmp_path / "fit").iterdir()}


def test_fit__without_model_fits_gblup_and_says_so(tmp_path, capsys):
    """--model is optional: G-BLUP, said in a line of its own (issue 19); the run's seed is recorded when none is
    given, so that it can be repeated."""
    args = [
        "fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv"),
        "--trait", "y1", "--method", "quadrature", "--out", str(tmp_path / "fit"),
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "model: G-BLUP (--model not given; --model mblup fits marker effects)" in out
    summary = json.loads((tmp_path / "fit" / "summary.json").read_text())
    assert summary["model"] == "gblup"
    assert isinstance(summary["settings"]["seed"], int) and summary["settings"]["seed_drawn"] is True


def test_fit__the_rank_is_noted_once_with_its_reason(tmp_path, capsys):
    """Fewer markers than individuals on the dense path: no warning line, one note naming the markers (issue 19)."""
    from bayesblup.testing import simulate_genotypes

    geno, _ = simulate_genotypes(120, 40, seed=9)
    calls = pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers)
    calls.to_csv(tmp_path / "geno.csv")
    y = pd.Series(np.random.default_rng(9).normal(size=120), index=calls.index, name="y")
    y.to_frame().to_csv(tmp_path / "pheno.csv")
    args = [
        "fit", "--genotypes", str(tmp_path / "geno.csv"), "--phenotypes", str(tmp_path / "pheno.csv"), "--trait", "y",
        "--model", "gblup", "--method", "quadrature", "--path", "dense", "--out", str(tmp_path / "fit"),
    ]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "has rank" not in captured.err
    notes = [line for line in captured.out.splitlines() if "has rank" in line]
    assert len(notes) == 1 and notes[0].startswith("note: G has rank 40 of 120"), notes
    assert notes[0].endswith("(40 markers for 120 individuals: at most 40 ranks)"), notes


def test_fit_help_lists_the_columns_a_fit_writes(tmp_path, capsys):
    """The help's epilogue names genetic_values.csv's and selection.csv's columns and summary.json's parameter fields
    as written."""
    args = [
        "fit", "--genotypes", wheat_path("wheat_X.csv.gz"), "--phenotypes", wheat_path("wheat_Y.csv"),
        "--trait", "y1", "--model", "gblup", "--method", "quadrature", "--top", "3", "--out", str(tmp_path / "fit"),
    ]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    columns = list(pd.read_csv(tmp_path / "fit" / "genetic_values.csv", nrows=1).columns)
    assert f"genetic_values.csv ({', '.join(columns)})" in help_text
    columns = list(pd.read_csv(tmp_path / "fit" / "selection.csv", nrows=1).columns)
    assert f"selection.csv ({', '.join(columns)}; --top)" in help_text
    fields = json.loads((tmp_path / "fit" / "summary.json").read_text())["parameters"]["h2"]
    assert f"parameters with {', '.join(fields)};" in help_text


def test_fit__folds_from_a_separate_csv(tmp_path, capsys):
    """--folds takes a CSV of ID and fold (the shipped wheat folds: line_id,set), not only a phenotype column; the
    same folds as a merged column give the same cross-validation (quadrature: exact and seeded)."""
    folds_csv = wheat_path("wheat_sets.csv")
    base = ["--method", "quadrature", "--seed", "4", "--draws", "200", "--chains", "2"]
    assert main([*fit_args(tmp_path / "file"), *base, "--folds", folds_csv]) == 0
    assert f"cross-validation over the folds of {folds_csv} (column set)" in capsys.readouterr().out
    merged = pd.read_csv(wheat_path("wheat_Y.csv"), dtype={"line_id": str}).merge(
        pd.read_csv(folds_csv, dtype={"line_id": str}).rename(columns={"set": "fold"}), on="line_id"
    )
    merged.to_csv(tmp_path / "pheno.csv", index=False)
    args = fit_args(tmp_path / "column")
    args[args.index("--phenotypes") + 1] = str(tmp_path / "pheno.csv")
    assert main([*args, *base, "--folds", "fold"]) == 0
    a = pd.read_csv(tmp_path / "file" / "cv.csv")
    b = pd.read_csv(tmp_path / "column" / "cv.csv")
    assert len(a) == 10
    np.testing.assert_allclose(a["correlation"], b["correlation"], rtol=1e-12)
