"""Files in and out without losing anything: input checks, and outputs written atomically.

Writers refuse to replace an existing file unless told to (``force=True``), and write to a temporary
file that is renamed into place, so an interrupted write never leaves a half-written output under
the final name. An output folder (:func:`atomic_folder`) is put in place by a rename that refuses
whatever is there, even an empty folder another run or a user made meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gzip
import os
import re
import shutil
import socket
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

try:
    import fcntl
except ImportError:  # not POSIX: no lock, and the rename alone refuses an existing folder
    fcntl = None

__all__ = [
    "atomic_folder",
    "atomic_output",
    "check_input_file",
    "check_new_folder",
    "check_new_output",
    "delimiter_hint",
    "open_text",
]


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
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets what the user's umask gives
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    """The process's umask (read by setting it and setting it back: Python has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_new_folder(path: Path, *, force: bool) -> None:
    """Refuse an output folder that exists (unless ``force``), and a file where the folder should go."""
    if path.is_symlink() or path.exists():
        if not path.is_dir():  # never replaced, even with force: the output is a folder
            raise InputError(f"output {path} is a file, not a folder; give the name of a new folder.")
        if not force:
            raise InputError(f"output folder {path} already exists; choose another or pass --force to replace it.")


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a new hidden folder beside ``path`` to write into; it becomes ``path`` if the block succeeds.

    ``path`` must not exist unless ``force``: checked on entry (so that a run fails before its work),
    and again at the end, when the folder is renamed into place under a lock (``.NAME.lock``) that
    other runs writing to ``path`` take too. Without ``force`` that rename refuses anything at
    ``path``, even an empty folder that appeared meanwhile, so nothing this run did not create is
    replaced or deleted. With ``force`` an existing ``path`` is moved aside, and deleted only once
    the new folder is in place. On any failure the hidden folder is removed, with the parent
    folders this call made; only a process killed outright (SIGKILL) leaves it behind.

    Raises
    ------
    InputError
        If ``path`` exists (without ``force``), is a file, or appeared while the block ran.
    """
    path = Path(path)
    check_new_folder(path, force=force)
    _clean_leftovers(path)
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    placed = False
    try:
        try:  # a read-only folder or file system is refused now, naming --out, not after the work
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = _new_hidden_folder(path)
        except OSError as exc:
            raise InputError(
                f"output folder {path}: cannot write in {path.parent} ({exc.strerror or exc}); choose an --out in "
                "a folder you can write to."
            ) from exc
        try:
            yield tmp
            (tmp / RUN_MARKER).unlink()  # the run's, not the output's
            with _lock(path):
                _put_in_place(tmp, path, force=force)
            placed = True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # nothing there once renamed; else this run's partial output
    finally:
        if not placed:
            for folder in made:  # deepest first; rmdir removes only what is still empty
                with contextlib.suppress(OSError):
                    folder.rmdir()


#: Inside a run's hidden folder while it writes: the process and host that made it, so that a later run can tell
#: a folder left by a run that was killed (SIGKILL, a power cut) from one another run is writing now.
RUN_MARKER = ".bayesblup-run"


def _new_hidden_folder(path: Path) -> Path:
    """A new ``.NAME.xxxxxxxx`` beside ``path`` holding RUN_MARKER.

    Made by mkdir (not mkdtemp's 0700), so the umask applies.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        with contextlib.suppress(FileExistsError):
            tmp.mkdir()
            (tmp / RUN_MARKER).write_text(f"{os.getpid()} {socket.gethostname()}\n")
            return tmp


def _clean_leftovers(path: Path) -> None:
    """Remove the hidden folders that killed runs of this program left beside ``path``; name what it cannot tell.

    A folder ``.NAME.xxxxxxxx`` whose RUN_MARKER names a process of this host that no longer runs was left by a
    killed run and is removed (it only ever held that run's partial output). One without a marker, or of another
    host, and a ``.NAME.old.xxxxxxxx`` (a folder that ``--force`` was replacing when its run was killed) are kept
    and named in a warning.
    """
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(old\.)?[0-9a-f]{{8}}$")
    prefix = f".{path.name}."
    try:
        # os.scandir and a prefix test before the pattern: a parent such as /tmp can hold 10^5 entries, which
        # pathlib took 1.3 s to walk (measured), longer than writing a fit
        with os.scandir(path.parent) as entries:
            siblings = [
                Path(e.path) for e in entries
                if e.name.startswith(prefix) and pattern.match(e.name) and e.is_dir(follow_symlinks=False)
            ]  # fmt: skip
    except OSError:  # a parent that does not exist yet holds nothing
        return
    host = socket.gethostname()
    for folder in siblings:
        owner = _marker(folder)
        if owner is not None and owner[1] == host and not _alive(owner[0]):
            shutil.rmtree(folder, ignore_errors=True)
            warnings.warn(
                f"removed {folder}: the partial output of an earlier run (process {owner[0]}) that was killed",
                stacklevel=3,
            )
        elif owner is None and _young(folder):
            continue  # another run between making its folder and writing its marker (microseconds apart)
        elif owner is None or owner[1] != host:
            what = "a folder --force was replacing" if ".old." in folder.name else "a run's partial output"
            warnings.warn(
                f"{folder} looks left by an earlier bayesblup run that was killed ({what}); delete it if no run is "
                f"writing to {path}",
                stacklevel=3,
            )


def _young(folder: Path, seconds: float = 60.0) -> bool:
    """Whether ``folder`` was made less than ``seconds`` ago (a run's marker follows its mkdir at once)."""
    import time

    try:
        return time.time() - folder.stat().st_mtime < seconds
    except OSError:
        return False


def _marker(folder: Path) -> tuple[int, str] | None:
    try:
        pid, host = (folder / RUN_MARKER).read_text().split()
        return int(pid), host
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def _put_in_place(tmp: Path, path: Path, *, force: bool) -> None:
    """Rename ``tmp`` to ``path``; with ``force``, what is at ``path`` is moved aside, then deleted."""
    old = None
    if force and (path.is_symlink() or path.exists()):
        check_new_folder(path, force=True)  # a file that appeared meanwhile is refused, never replaced
        old = path.with_name(f".{path.name}.old.{uuid.uuid4().hex[:8]}")
        os.rename(path, old)  # the lock keeps other runs out; old is a fresh name
    try:
        _rename_noreplace(tmp, path)
    except FileExistsError as exc:
        kept = "" if old is None else f" (the folder it replaced is kept as {old})"
        raise InputError(
            f"output folder {path} was written by another run meanwhile{kept}; choose another --out or pass --force "
            "to replace it."
        ) from exc
    except BaseException:
        if old is not None:  # the new folder is not in place: put the old one back
            with contextlib.suppress(OSError):
                _rename_noreplace(old, path)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``.NAME.lock`` beside ``path``: one run at a time renames onto ``path``.

    Without ``force`` the no-replace rename alone keeps two runs apart; the lock keeps runs with
    ``force`` from moving each other's folders aside, and serves where that rename is not available.
    The run that created the lock file removes it, while still holding the lock; a run that waited
    on that file then holds a lock on a removed file, so it checks and starts over.
    """
    if fcntl is None:
        yield
        return
    lock = path.with_name(f".{path.name}.lock")
    while True:
        try:
            fd, created = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            try:
                fd, created = os.open(lock, os.O_RDWR), False
            except FileNotFoundError:  # removed by its creator meanwhile
                continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, lock):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        if created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
        os.close(fd)  # releases the lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, or raise FileExistsError if anything is at ``dst``, even an empty folder.

    ``os.rename`` of a folder replaces an empty folder at ``dst`` (POSIX), so this uses Linux's
    ``renameat2(RENAME_NOREPLACE)``, atomic, where the system and file system offer it.
    """
    renameat2 = _renameat2()
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        import ctypes

        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # else: not supported here
            raise OSError(code, os.strerror(code), str(src), None, str(dst))  # EEXIST: FileExistsError
    # Otherwise reserve the name with mkdir, which fails on anything there, then rename onto that
    # empty folder of ours: a rename onto a folder that someone filled meanwhile fails (ENOTEMPTY).
    os.mkdir(dst)
    try:
        os.rename(src, dst)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.rmdir(dst)  # ours while it is empty; if another's files went in, it stays
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(exc.errno, exc.strerror, str(dst)) from exc
        raise


_AT_FDCWD = -100  # Linux's "relative to the working directory" for the *at() calls
_RENAME_NOREPLACE = 1


@functools.cache
def _renameat2():
    """The C library's ``renameat2`` (Linux, glibc >= 2.28), or None where there is none."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc without it (glibc < 2.28, musl)
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function
