"""`bayesblup fit --out` with real processes: two runs to one folder, a folder made while a run works, kill.

Each run writes into a hidden folder ``.NAME.xxxxxxxx`` beside ``--out`` from its start, and renames
it onto ``--out`` at its end only if nothing appeared there meanwhile.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.testing import simulate_genotypes, simulate_records

pytestmark = pytest.mark.structural

MEANWHILE = "was written by another run meanwhile; choose another --out or pass --force"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """60 individuals x 150 markers: a fit of one chain of 50 draws takes seconds."""
    d = tmp_path_factory.mktemp("inputs")
    geno, _ = simulate_genotypes(60, 150, seed=7)
    W = bb.genotype_matrix(geno, scaling="standardized").values
    simulate_records(W, geno.ids, h2=0.5, seed=7).table[["y"]].to_csv(d / "pheno.csv")
    pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers).to_csv(d / "geno.csv")
    return d


def start_fit(inputs: Path, out: Path, seed: int, *, quiet: bool = True) -> subprocess.Popen:
    args = [
        "fit", "--genotypes", str(inputs / "geno.csv"), "--phenotypes", str(inputs / "pheno.csv"), "--trait", "y",
        "--model", "gblup", "--out", str(out), "--chains", "1", "--draws", "50", "--tune", "50",
        "--seed", str(seed), *(["--quiet"] if quiet else []),
    ]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "bayesblup", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(run: subprocess.Popen) -> tuple[int, str]:
    _, err = run.communicate(timeout=300)
    return run.returncode, err


def wait_for_hidden_folder(parent: Path, run: subprocess.Popen) -> None:
    """Until the run has passed its check of --out and made its hidden folder."""
    deadline = time.monotonic() + 120
    while not any(p.is_dir() for p in parent.glob(".fit.*")):
        assert run.poll() is None, finish(run)
        assert time.monotonic() < deadline, "the run never made its hidden folder"
        time.sleep(0.01)


def test_two_runs_to_one_out_folder__one_writes_the_other_exits_2(inputs, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    out = runs_dir / "fit"
    runs = {seed: start_fit(inputs, out, seed) for seed in (1, 2)}  # started together, neither with --force
    results = {seed: finish(run) for seed, run in runs.items()}
    codes = sorted(code for code, _ in results.values())
    assert codes == [0, 2], results
    winner = next(seed for seed, (code, _) in results.items() if code == 0)
    _, err = next(result for result in results.values() if result[0] == 2)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"bayesblup fit: error: output folder {out} {MEANWHILE}"), err
    # The folder holds the winner's whole result, and nothing else is left beside it.
    assert sorted(p.name for p in runs_dir.iterdir()) == ["fit"]
    assert sorted(p.name for p in out.iterdir()) == ["genetic_values.csv", "posterior.nc", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["settings"]["seed"] == winner
    assert bb.load_fit(out).summary().index.tolist() == ["h2", "sigma2_g", "sigma2_e", "mu"]


@pytest.mark.parametrize("kind", ["with_a_file", "empty"])
def test_a_folder_made_at_out_during_the_run_is_kept(inputs, tmp_path, kind):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    out = runs_dir / "fit"
    run = start_fit(inputs, out, 1)
    wait_for_hidden_folder(runs_dir, run)
    out.mkdir()  # a user or another program, while the fit runs
    if kind == "with_a_file":
        (out / "mine.txt").write_text("precious")
    code, err = finish(run)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"bayesblup fit: error: output folder {out} {MEANWHILE}"), err
    assert sorted(p.name for p in runs_dir.iterdir()) == ["fit"]  # no hidden folder or lock file left
    assert [p.name for p in out.iterdir()] == (["mine.txt"] if kind == "with_a_file" else [])
    if kind == "with_a_file":
        assert (out / "mine.txt").read_text() == "precious"


def test_a_terminated_run_leaves_nothing(inputs, tmp_path):
    """SIGTERM (kill, a batch system's time limit) unwinds the run: its hidden folder goes with it."""
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    run = start_fit(inputs, runs_dir / "fit", 1)
    wait_for_hidden_folder(runs_dir, run)
    run.terminate()
    code, err = finish(run)
    assert code == 143 and err == "bayesblup fit: terminated\n", (code, err)
    assert list(runs_dir.iterdir()) == []


@pytest.mark.parametrize(("signal_name", "delay"), [("SIGINT", 0.3), ("SIGINT", 2.5), ("SIGTERM", 2.5)])
def test_a_signal_during_sampling_exits_with_one_line_and_leaves_nothing(inputs, tmp_path, signal_name, delay):
    """Ctrl-C (SIGINT to the terminal's whole process group: the run and PyMC's chain processes) or SIGTERM while
    NUTS samples in two worker processes: one line, exit 130 or 143, no folder left. Before this test a Ctrl-C
    there went on to write a fit of the draws made so far and exit 0, or, as the chains started, ended in a
    traceback."""
    import os
    import signal

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    args = [
        "fit", "--genotypes", str(inputs / "geno.csv"), "--phenotypes", str(inputs / "pheno.csv"), "--trait", "y",
        "--model", "gblup", "--out", str(runs_dir / "fit"), "--chains", "2", "--cores", "2", "--draws", "20000",
        "--seed", "1",
    ]  # fmt: skip
    run = subprocess.Popen(
        [sys.executable, "-m", "bayesblup", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen = ""
    deadline = time.monotonic() + 120
    while "NUTS: [" not in seen:  # PyMC's log line as it starts the chains (20,000 draws then take ~8 s)
        assert run.poll() is None and time.monotonic() < deadline, finish(run)
        seen += run.stderr.readline()
    time.sleep(delay)  # 0.3 s: as the chain processes start (PyMC then raised "Not enough samples"); 2.5 s: drawing
    assert run.poll() is None, finish(run)  # still sampling
    sig = getattr(signal, signal_name)
    if sig == signal.SIGINT:
        os.killpg(run.pid, sig)
    else:
        run.send_signal(sig)
    code, err = finish(run)
    word, expected = ("interrupted", 130) if sig == signal.SIGINT else ("terminated", 143)
    # PyMC's own log line of the chains it stopped may come first (PyMC returns the draws so far on Ctrl-C; the
    # fit refuses them as not the fit asked for); then the one line, and no traceback
    lines = err.splitlines()
    assert code == expected and lines[-1] == f"bayesblup fit: {word}", (code, err)
    assert "Traceback" not in err and len(lines) <= 2 and all(line.startswith("Sampling") for line in lines[:-1])
    assert list(runs_dir.iterdir()) == []


def _map_args(inputs: Path, out: Path) -> list[str]:
    return [
        "fit", "--genotypes", str(inputs / "geno.csv"), "--phenotypes", str(inputs / "pheno.csv"), "--trait", "y",
        "--model", "gblup", "--method", "map", "--out", str(out), "--quiet",
    ]  # fmt: skip


def test_an_unwritable_out_is_refused_before_the_fit(inputs, tmp_path, monkeypatch, capsys):
    """A read-only folder (simulated: mkdir there raises EACCES, as for a user without write permission, which
    root is not subject to) and a parent that is a file: refused at the start, naming --out, exit 2, nothing made."""
    import errno
    import os

    from bayesblup.cli.main import main

    (tmp_path / "a_file").write_text("not a folder")
    assert main(_map_args(inputs, tmp_path / "a_file" / "fit")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bayesblup fit: error: output folder {tmp_path / 'a_file' / 'fit'}: cannot write in ")
    assert "choose an --out in a folder you can write to" in err and err.count("\n") == 1

    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).parent == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    assert main(_map_args(inputs, locked / "fit")) == 2
    err = capsys.readouterr().err
    assert f"output folder {locked / 'fit'}: cannot write in {locked} (Permission denied)" in err
    assert list(locked.iterdir()) == []


def test_a_disk_too_full_for_the_outputs_is_refused_before_writing(inputs, tmp_path, monkeypatch, capsys):
    """Fault injected at the write (shutil.disk_usage reports 1 MB free): one line naming the sizes, exit 2, no
    hidden folder or partial file left; through the API (fit.save) the same InputError."""
    import shutil
    from collections import namedtuple

    from bayesblup.cli.main import main

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 2**20, 2**20))
    runs = tmp_path / "runs"
    runs.mkdir()
    assert main([*_map_args(inputs, runs / "fit")[:-1], "--chains", "2", "--draws", "300", "--method", "nuts"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bayesblup fit: error: no space left on the disk of {runs}: the outputs need about ")
    assert "MB and 1 MB are free" in err and err.count("\n") == 1
    assert list(runs.iterdir()) == []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bb.RankDeficiencyWarning)  # 60 x 150 markers, centred: rank 59
        G = bb.genomic_relationship(bb.read_genotypes(inputs / "geno.csv"))
        fit = bb.GBLUP(bb.read_phenotypes(inputs / "pheno.csv")["y"], G).fit(method="map")
    with pytest.raises(bb.InputError, match="no space left on the disk of"):
        fit.save(runs / "api")
    assert list(runs.iterdir()) == []


def test_outputs_follow_the_umask(inputs, tmp_path):
    """grm's file and fit's folder and files get what the user's umask gives (here 027: 0640 and 0750), not
    mkstemp's 0600 or mkdtemp's 0700."""
    import os
    import stat

    def run(args):
        return subprocess.run(
            [sys.executable, "-m", "bayesblup", *args], capture_output=True, text=True, check=False,
            preexec_fn=lambda: os.umask(0o027),
        )  # fmt: skip

    G = tmp_path / "G.npz"
    assert run(["grm", "--genotypes", str(inputs / "geno.csv"), "--out", str(G), "--quiet"]).returncode == 0
    assert stat.S_IMODE(G.stat().st_mode) == 0o640
    out = tmp_path / "fit"
    assert run(_map_args(inputs, out)).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o640}


def test_a_killed_runs_leftovers_are_cleaned_or_named(inputs, tmp_path):
    """SIGKILL cannot be caught: the killed run's hidden folder stays. The next run to the same --out removes it
    (its marker names a process that no longer runs) and says so; a hidden folder it cannot tell as a killed run's
    (no marker) is kept and named, unless it is less than a minute old (another run making its folder: the race of
    two writers once made one of them warn about the other's folder)."""
    import os

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    run = start_fit(inputs, runs_dir / "fit", 1)
    wait_for_hidden_folder(runs_dir, run)
    run.kill()
    run.communicate(timeout=60)
    (left,) = [p for p in runs_dir.iterdir() if p.name.startswith(".fit.")]
    foreign = runs_dir / ".fit.0123abcd"
    foreign.mkdir()
    young = runs_dir / ".fit.4567cdef"  # another run between its mkdir and its marker: left alone, not named
    young.mkdir()
    os.utime(foreign, (time.time() - 120, time.time() - 120))  # made two minutes ago, still without a marker
    code, err = finish(start_fit(inputs, runs_dir / "fit", 2, quiet=False))
    assert code == 0, err
    assert f"warning: removed {left}: the partial output of an earlier run (process {run.pid}) that was killed" in err
    assert f"warning: {foreign} looks left by an earlier bayesblup run that was killed" in err
    assert str(young) not in err
    assert sorted(p.name for p in runs_dir.iterdir()) == [".fit.0123abcd", ".fit.4567cdef", "fit"]
    assert ".bayesblup-run" not in [p.name for p in (runs_dir / "fit").iterdir()]


def test_a_ctrl_c_swallowed_by_a_library_still_stops_the_run(inputs, tmp_path, monkeypatch, capsys):
    """Ctrl-C during compilation was once swallowed and the run went on to exit 0. Whatever catches the
    KeyboardInterrupt, the command remembers the signal: exit 130, nothing written (SIGINT sent for real to this
    process while the fit runs, and caught inside it, as a compiler might)."""
    import os
    import signal

    import bayesblup.cli.workflow as workflow
    from bayesblup.cli.main import main

    real_run_fit = workflow.run_fit

    def swallowing_run_fit(job, say):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass  # swallowed
        return real_run_fit(job, say)

    monkeypatch.setattr(workflow, "run_fit", swallowing_run_fit)
    runs = tmp_path / "runs"
    runs.mkdir()
    assert main(_map_args(inputs, runs / "fit")) == 130
    assert capsys.readouterr().err == "bayesblup fit: interrupted\n"
    assert list(runs.iterdir()) == []


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_while_writing_leaves_nothing(inputs, tmp_path, monkeypatch, capsys, signal_name):
    """SIGINT or SIGTERM (sent for real to this process) after the first output file is written: one line, exit 130
    or 143, and neither the out folder nor the hidden folder it was being written in is left."""
    import os
    import signal

    import bayesblup.results.store as store
    from bayesblup.cli.main import main

    real_write_fit = store.write_fit

    def write_then_signal(fit, folder, **options):
        fit.genetic_values.to_csv(folder / "genetic_values.csv")
        os.kill(os.getpid(), getattr(signal, signal_name))  # delivered here, mid-write
        return real_write_fit(fit, folder, **options)

    monkeypatch.setattr(store, "write_fit", write_then_signal)
    runs = tmp_path / "runs"
    runs.mkdir()
    code = 130 if signal_name == "SIGINT" else 143
    word = "interrupted" if signal_name == "SIGINT" else "terminated"
    assert main(_map_args(inputs, runs / "fit")) == code
    assert capsys.readouterr().err == f"bayesblup fit: {word}\n"
    assert list(runs.iterdir()) == []


def test_a_real_small_disk_is_refused_before_writing(inputs, tmp_path):
    """A real full disk: a 512 KiB tmpfs as the --out's parent, where the machine lets the tests mount one (root on
    Linux; elsewhere the injected fault above is the test). One line, exit 2, nothing left on that disk."""
    disk = tmp_path / "small_disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True, check=False
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the injected fault covers it")
    try:
        args = _map_args(inputs, disk / "fit")
        run = subprocess.run([sys.executable, "-m", "bayesblup", *args], capture_output=True, text=True, check=False)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith(f"bayesblup fit: error: no space left on the disk of {disk}: the outputs need ")
        assert run.stderr.count("\n") == 1
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_sigkill_while_writing_leaves_a_folder_the_next_run_removes(inputs, tmp_path):
    """A real process killed with SIGKILL after its first output file (a driver script wraps write_fit to kill
    itself there): its hidden folder, partial file inside, stays; the next run to that --out removes it, says so,
    and writes a complete fit."""
    import signal
    import textwrap

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    args = _map_args(inputs, runs_dir / "fit")
    driver = textwrap.dedent(
        f"""
        import os, signal, sys
        import bayesblup.results.store as store
        from bayesblup.cli.main import main

        def write_then_die(fit, folder, **options):
            fit.genetic_values.to_csv(folder / "genetic_values.csv")
            os.kill(os.getpid(), signal.SIGKILL)

        store.write_fit = write_then_die
        sys.exit(main({args!r}))
        """
    )
    killed = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (left,) = runs_dir.iterdir()
    assert left.name.startswith(".fit.") and (left / "genetic_values.csv").exists()
    code, err = finish(start_fit(inputs, runs_dir / "fit", 2, quiet=False))
    assert code == 0 and f"warning: removed {left}: the partial output of an earlier run" in err, err
    assert sorted(p.name for p in runs_dir.iterdir()) == ["fit"]
    written = sorted(p.name for p in (runs_dir / "fit").iterdir())
    assert written == ["genetic_values.csv", "posterior.nc", "summary.json"]
