"""The out folder: written atomically, never over what another run or a user made."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import bayesblup as bb
from bayesblup import files

MEANWHILE = "was written by another run meanwhile; choose another --out or pass --force"


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
