"""The out folder: written atomically, never over what another run or a user made, and read back by load_fit."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup import files
from bayesblup.cli.main import main
from bayesblup.results import store
from bayesblup.testing import simulate_genotypes, simulate_records

pytestmark = pytest.mark.structural

MEANWHILE = "was written by another run meanwhile; choose another --out or pass --force"
QUICK = ["--chains", "2", "--draws", "60", "--tune", "60", "--seed", "3", "--quiet"]


def hidden(folder: Path) -> list[str]:
    """What a write left beside its output: temporary folders, lock files, folders moved aside."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- atomic_folder -------------------------------------------------------------------------------------------


def test_atomic_folder__renames_into_place_and_leaves_nothing_beside(tmp_path):
    out = tmp_path / "new" / "fit"  # its parent is made too
    with files.atomic_folder(out) as folder:
        assert folder.parent == out.parent and folder.name.startswith(".fit.") and not out.exists()
        (folder / "a.txt").write_text("mine")
    assert [p.name for p in out.iterdir()] == ["a.txt"] and hidden(out.parent) == []


def test_atomic_folder__a_failed_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), files.atomic_folder(tmp_path / "a" / "b" / "fit") as folder:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("the fit failed")
    assert list(tmp_path.iterdir()) == []  # the hidden folder and the parents it made are gone


@pytest.mark.parametrize("kind", ["file", "empty"])
def test_atomic_folder__refuses_an_existing_folder_before_the_work(tmp_path, kind):
    out = tmp_path / "fit"
    out.mkdir()
    if kind == "file":
        (out / "mine.txt").write_text("precious")
    with pytest.raises(bb.InputError, match="already exists; choose another or pass --force"):
        with files.atomic_folder(out):
            pytest.fail("the block must not run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]
    assert [p.name for p in out.iterdir()] == (["mine.txt"] if kind == "file" else [])


@pytest.mark.parametrize("rename", ["renameat2", "mkdir_then_rename"])
@pytest.mark.parametrize("kind", ["with_a_file", "empty"])
def test_atomic_folder__a_folder_made_meanwhile_is_kept(tmp_path, monkeypatch, rename, kind):
    """A folder that appears at path while the block runs is neither replaced nor deleted, even when empty
    (a plain rename would replace an empty folder); both the atomic no-replace rename and the fallback."""
    if rename == "mkdir_then_rename":
        monkeypatch.setattr(files, "_renameat2", lambda: None)
    else:
        assert files._renameat2() is not None  # the atomic path is the one tested here
    out = tmp_path / "fit"
    with pytest.raises(bb.InputError, match=MEANWHILE):
        with files.atomic_folder(out) as folder:
            (folder / "summary.json").write_text("{}")
            out.mkdir()  # another program, between our write and our rename
            if kind == "with_a_file":
                (out / "mine.txt").write_text("precious")
    assert [p.name for p in out.iterdir()] == (["mine.txt"] if kind == "with_a_file" else [])
    if kind == "with_a_file":
        assert (out / "mine.txt").read_text() == "precious"
    assert hidden(tmp_path) == []


def test_atomic_folder__two_writers_at_once_one_wins(tmp_path):
    """Both pass the first check; the lock and the no-replace rename let exactly one put its folder in place."""
    out = tmp_path / "fit"
    both_written = threading.Barrier(2)
    outcome = {}

    def writer(name):
        try:
            with files.atomic_folder(out) as folder:
                (folder / "who.txt").write_text(name)
                both_written.wait(timeout=30)
            outcome[name] = "ok"
        except bb.InputError as exc:
            outcome[name] = str(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [name for name, result in outcome.items() if result == "ok"]
    assert len(winners) == 1, outcome
    (loser,) = set(outcome) - set(winners)
    assert MEANWHILE in outcome[loser] and str(out) in outcome[loser]
    assert (out / "who.txt").read_text() == winners[0]
    assert [p.name for p in out.iterdir()] == ["who.txt"] and hidden(tmp_path) == []


def test_atomic_folder__force_replaces_only_once_the_new_folder_is_in_place(tmp_path):
    out = tmp_path / "fit"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with files.atomic_folder(out, force=True) as folder:
        (folder / "new.txt").write_text("new")
        assert (out / "old.txt").read_text() == "old"  # still there while this run writes
    assert [p.name for p in out.iterdir()] == ["new.txt"] and hidden(tmp_path) == []


def test_atomic_folder__a_file_is_never_replaced_even_with_force(tmp_path):
    out = tmp_path / "fit"
    out.write_text("a file")
    with pytest.raises(bb.InputError, match="is a file, not a folder"), files.atomic_folder(out, force=True):
        pytest.fail("the block must not run")
    assert out.read_text() == "a file" and hidden(tmp_path) == []


# --- data and fits --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """60 individuals with a record, 10 new ones to predict, 150 markers; a set of 40 markers."""
    d = tmp_path_factory.mktemp("inputs")
    geno, _ = simulate_genotypes(70, 150, seed=3)
    W = bb.genotype_matrix(geno, scaling="standardized").values
    table = simulate_records(W, geno.ids, h2=0.5, seed=3).table[["y"]]
    calls = pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers)
    calls.iloc[:60].to_csv(d / "geno.csv")
    calls.iloc[60:].to_csv(d / "new.csv")
    table.iloc[:60].to_csv(d / "pheno.csv")
    pd.DataFrame({"marker": geno.markers[:40], "set": "a"}).to_csv(d / "sets.csv", index=False)
    return d


def cli_fit(inputs: Path, out: Path, model: str, *extra: str) -> Path:
    argv = ["fit", "--genotypes", str(inputs / "geno.csv"), "--phenotypes", str(inputs / "pheno.csv")]
    assert main([*argv, "--trait", "y", "--model", model, "--out", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def cli_folders(inputs, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fits")
    return {
        "gblup": cli_fit(inputs, d / "gblup", "gblup", *QUICK, "--predict", str(inputs / "new.csv")),
        "mblup": cli_fit(inputs, d / "mblup", "mblup", *QUICK),
        "map": cli_fit(inputs, d / "map", "gblup", "--method", "map", "--quiet"),
        "sets": cli_fit(inputs, d / "sets", "gblup", *QUICK, "--sets", str(inputs / "sets.csv")),
    }


def stored_parameters(folder: Path) -> pd.DataFrame:
    parameters = json.loads((folder / "summary.json").read_text())["parameters"]
    return pd.DataFrame.from_dict(parameters, orient="index").astype(float)


# --- load_fit -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gblup", "mblup", "map", "sets"])
def test_load_fit__gives_back_the_summary_and_tables_of_a_cli_fit(cli_folders, kind):
    folder = cli_folders[kind]
    fit = bb.load_fit(folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert isinstance(fit, bb.BLUPFit) and fit.model is None and ("sets" in fit.stored) == (kind == "sets")
    assert (fit.method, fit.sampler) == (summary["method"], summary["sampler"])
    # The table is computed again from the stored draws: summary.json's numbers, to float precision.
    table = fit.summary()
    expected = stored_parameters(folder)
    assert list(table.index) == list(expected.index)
    pd.testing.assert_frame_equal(table[expected.columns], expected, rtol=1e-12, atol=0)
    assert fit.diagnostics() == summary["diagnostics"]
    again = fit.to_dict()
    assert again.pop("parameters").keys() == summary.pop("parameters").keys() and again == summary
    values = pd.read_csv(folder / "genetic_values.csv", dtype={"id": str})
    pd.testing.assert_frame_equal(fit.genetic_values, values)
    if kind == "mblup":
        markers = pd.read_csv(folder / "marker_effects.csv", dtype={"marker": str})
        assert len(markers) == 150
        pd.testing.assert_frame_equal(fit.marker_effects, markers)
    else:
        assert fit.marker_effects is None
    if kind == "map":
        assert table["sd"].isna().all() and expected["sd"].isna().all()  # MAP: no posterior sd
    if kind == "sets":
        assert fit.enrichment().to_dict(orient="index") == summary["enrichment"]
        columns = list(fit.enrichment().columns)  # the median leads: the ratio's mean can explode (issue 19)
        assert columns.index("enrichment_median") < columns.index("enrichment_mean")
    tables = fit.stored["tables"]
    assert sorted(tables) == (["predictions.csv"] if kind == "gblup" else [])
    if kind == "gblup":
        predictions = pd.read_csv(folder / "predictions.csv", dtype={"id": str})
        assert len(predictions) == 10
        pd.testing.assert_frame_equal(tables["predictions.csv"], predictions)


@pytest.mark.parametrize("kind", ["gblup", "sets"])
def test_load_fit__the_plots_draw_without_the_model(cli_folders, kind):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fit = bb.load_fit(cli_folders[kind])
    figures = [
        bb.plots.plot_h2(fit),
        bb.plots.plot_genetic_values(fit),
        bb.plots.plot_trace(fit),
        bb.plots.plot_rank(fit),
        bb.plots.plot_energy(fit),
    ]
    assert f"({kind.replace('sets', 'gblup')}, prior default)" in figures[0].axes[0].get_title()
    if kind == "sets":
        figures.append(bb.plots.plot_partitioned_h2(fit))
        labels = [t.get_text() for t in figures[-1].axes[0].get_yticklabels()]
        assert labels == ["h2_rest", "h2_a", "total h2"]
    else:
        with pytest.raises(bb.InputError, match="several marker sets"):
            bb.plots.plot_partitioned_h2(fit)
    for figure in figures:
        assert figure.axes and any(ax.has_data() for ax in figure.axes)
        plt.close(figure)


def test_load_fit__a_map_fit_is_refused_by_the_plots_of_draws(cli_folders):
    pytest.importorskip("matplotlib")
    with pytest.raises(bb.InputError, match="plots need posterior draws"):
        bb.plots.plot_h2(bb.load_fit(cli_folders["map"]))


@pytest.fixture(scope="module")
def in_process(inputs, tmp_path_factory):
    """A G-BLUP fit in this process, saved; the training and new genotypes after QC."""
    geno = bb.read_genotypes(inputs / "geno.csv")
    new = bb.read_genotypes(inputs / "new.csv")
    y = bb.read_phenotypes(inputs / "pheno.csv")["y"]
    fit = bb.GBLUP(y, bb.genomic_relationship(geno)).fit(chains=2, draws=60, tune=60, seed=5)
    folder = fit.save(tmp_path_factory.mktemp("saved") / "fit")
    return SimpleNamespace(fit=fit, folder=folder, geno=geno, new=new, y=y)


def test_load_fit__equals_the_fit_that_was_saved(in_process):
    fit, geno, new = in_process.fit, in_process.geno, in_process.new
    loaded = bb.load_fit(in_process.folder)
    pd.testing.assert_frame_equal(loaded.summary(), fit.summary(), rtol=1e-12, atol=0)
    assert loaded.diagnostics() == json.loads(json.dumps(fit.diagnostics()))
    # genetic_values.csv holds 10 significant digits
    pd.testing.assert_frame_equal(loaded.genetic_values, fit.genetic_values, rtol=1e-9, atol=1e-12)
    with pytest.raises(bb.InputError, match=r"predict needs the model.*model="):
        loaded.predict(new, training=geno)
    with pytest.raises(bb.InputError, match="back_solve_markers needs the model"):
        loaded.back_solve_markers(geno)


def test_load_fit__with_the_model_predicts_as_the_original_fit(in_process):
    fit, geno, new = in_process.fit, in_process.geno, in_process.new
    model = bb.GBLUP(in_process.y, bb.genomic_relationship(geno))  # built again on the same inputs
    loaded = bb.load_fit(in_process.folder, model=model)
    assert loaded.model is model
    expected = fit.predict(new, training=geno)
    got = loaded.predict(new, training=geno)
    assert got["id"].tolist() == expected["id"].tolist()
    np.testing.assert_allclose(got[["mean", "sd"]], expected[["mean", "sd"]], rtol=1e-12, atol=1e-12)
    markers = loaded.back_solve_markers(geno)
    np.testing.assert_allclose(markers[["mean", "sd"]], fit.back_solve_markers(geno)[["mean", "sd"]], rtol=1e-12)
    assert loaded.diagnostics() == json.loads(json.dumps(fit.diagnostics()))  # stored, with the eigenvalues


def test_load_fit__refuses_a_model_that_is_not_the_fitted_one(in_process):
    folder, geno, y = in_process.folder, in_process.geno, in_process.y
    G = bb.genomic_relationship(geno)
    fixed = pd.DataFrame({"x": np.arange(60.0)}, index=y.index)
    others = [
        (bb.MBLUP(y, bb.genotype_matrix(geno)), "model is 'mblup' here, 'gblup' in summary.json"),
        (bb.GBLUP(y.rename("z"), G), "trait is 'z' here, 'y' in summary.json"),
        (bb.GBLUP(y.iloc[1:], G), "n_records is 59 here, 60 in summary.json"),
        (bb.GBLUP(y.iloc[::-1], G), "individuals are not the 60 of genetic_values.csv in the same order"),
        (bb.GBLUP(bb.match_records(y, geno.ids, fixed=fixed), G), "mu, beta, the fit's h2, sigma2_g, sigma2_e, mu;"),
    ]
    for model, message in others:
        with pytest.raises(bb.InputError, match=re.escape(message)):
            bb.load_fit(folder, model=model)


def _copy(folder: Path, to: Path) -> Path:
    to.mkdir()
    for path in folder.iterdir():
        (to / path.name).write_bytes(path.read_bytes())
    return to


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.with_name("nothing"), "fit folder .*nothing does not exist"),
        (lambda d: d / "summary.json", "summary.json is a file, not a folder"),
        (lambda d: (d / "summary.json").unlink() or d, "has no summary.json"),
        (lambda d: (d / "posterior.nc").unlink() or d, "has no posterior.nc"),
        (lambda d: (d / "genetic_values.csv").unlink() or d, "has no genetic_values.csv"),
        (lambda d: (d / "summary.json").write_text('{"model": "gbl') and d, "summary.json cannot be read as JSON"),
        (lambda d: (d / "summary.json").write_text('{"model": "gblup"}') and d, "lacks form, trait, prior"),
        (lambda d: _truncate(d / "posterior.nc") and d, "posterior.nc cannot be read"),
        (lambda d: (d / "genetic_values.csv").write_text("id,mean\n") and d, "lacks the column.*sd"),
    ],
    ids=[
        "missing",
        "a_file",
        "no_summary",
        "no_posterior",
        "no_genetic_values",
        "summary_truncated",
        "summary_foreign",
        "posterior_truncated",
        "genetic_values_columns",
    ],
)
def test_load_fit__a_damaged_folder_is_one_clear_error(in_process, tmp_path, damage, message):
    path = damage(_copy(in_process.folder, tmp_path / "fit"))
    with pytest.raises(bb.InputError, match=message):
        bb.load_fit(path)


def _truncate(path: Path) -> int:
    data = path.read_bytes()
    return path.write_bytes(data[: len(data) // 2]) or 1


def test_load_fit__a_loaded_fit_saves_again(in_process, tmp_path):
    loaded = bb.load_fit(in_process.folder)
    again = bb.load_fit(loaded.save(tmp_path / "again"))
    pd.testing.assert_frame_equal(again.summary(), loaded.summary())
    pd.testing.assert_frame_equal(again.genetic_values, loaded.genetic_values)


# --- save: the same guarantees through a real fit ----------------------------------------------------------------


def test_save__a_folder_made_while_writing_is_kept(in_process, tmp_path, monkeypatch):
    fit = in_process.fit
    out = tmp_path / "fit"
    write = store.write_fit

    def write_then_someone_makes_the_folder(*args, **kwargs):
        write(*args, **kwargs)
        out.mkdir()
        (out / "mine.txt").write_text("precious")

    monkeypatch.setattr(store, "write_fit", write_then_someone_makes_the_folder)
    with pytest.raises(bb.InputError, match=MEANWHILE):
        fit.save(out)
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "precious"
    assert hidden(tmp_path) == []


def test_save__two_saves_at_once_one_wins(in_process, tmp_path, monkeypatch):
    fit = in_process.fit
    out = tmp_path / "fit"
    write = store.write_fit
    both_written = threading.Barrier(2)

    def write_and_wait(*args, **kwargs):
        write(*args, **kwargs)
        both_written.wait(timeout=60)

    monkeypatch.setattr(store, "write_fit", write_and_wait)
    outcome = {}

    def save(who):
        try:
            fit.save(out, extra_summary={"who": who})
            outcome[who] = "ok"
        except bb.InputError as exc:
            outcome[who] = str(exc)

    threads = [threading.Thread(target=save, args=(who,)) for who in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [who for who, result in outcome.items() if result == "ok"]
    assert len(winners) == 1, outcome
    (loser,) = set(outcome) - set(winners)
    assert MEANWHILE in outcome[loser]
    assert json.loads((out / "summary.json").read_text())["who"] == winners[0]
    assert bb.load_fit(out).summary().index.tolist() == ["h2", "sigma2_g", "sigma2_e", "mu"]
    assert hidden(tmp_path) == [] and os.listdir(tmp_path) == ["fit"]
