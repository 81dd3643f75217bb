"""Files in and out without losing anything: input checks, and outputs written atomically.

Writers refuse to replace an existing file unless told to (``force=True``), and write to a temporary
file that is renamed into place, so an interrupted write never leaves a half-written output under
the final name.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

__all__ = ["atomic_output", "check_input_file", "check_new_output", "delimiter_hint", "open_text"]


@contextlib.contextmanager
def open_text(path: Path) -> Iterator:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        yield handle


def check_input_file(path: Path, what: str, expected: str) -> None:
    """Refuse a path that does not exist or is a folder, saying what file was expected there."""
    if path.is_dir():
        raise InputError(f"{what} file {path} is a folder; expected {expected}: give the file itself, not its folder.")
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}; check the path (expected {expected}).")


def delimiter_hint(cell: str) -> str:
    """For a header read as a single column: ``" ('a;b;c'), which looks ';'-separated"``, or ``""``."""
    for sep, name in (
        (";", "';'-separated"),
        ("\t", "tab-separated"),
        ("|", "'|'-separated"),
        (" ", "space-separated"),
    ):
        if sep in cell:
            return f" ({cell[:40]!r}), which looks {name}"
    return ""


def check_new_output(path: Path, *, force: bool, suffixes: tuple[str, ...]) -> None:
    """Refuse an output path that exists (unless ``force``), is a directory, or has the wrong suffix."""
    if not path.name.lower().endswith(suffixes):
        raise InputError(f"output {path}: the name must end in {' or '.join(suffixes)}.")
    if path.is_dir():
        raise InputError(f"output {path} is a directory; give a file name.")
    if path.exists() and not force:
        raise InputError(
            f"output {path} already exists; choose another name or pass --force (force=True) to replace it."
        )


@contextlib.contextmanager
def atomic_output(path: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if path.exists() and not force:  # someone else wrote it meanwhile: keep theirs
            raise InputError(f"output {path} appeared while writing; pass --force to replace it.")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
