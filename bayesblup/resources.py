"""What a run will need, checked against what the machine has, before anything large is allocated.

A G of n individuals is an n x n matrix: 8 n^2 bytes in float64, 320 GB at n = 200,000. Asked for more memory
than there is, NumPy raises MemoryError after the reading and QC, or the system kills the process. This module
estimates the need from n and m and refuses at once with the figure, the memory available and what would fit.
"""

from __future__ import annotations

import os

from .errors import InputError

__all__ = ["available_memory", "check_memory", "fit_memory", "relationship_memory"]

GiB = 2**30


def available_memory() -> int | None:
    """Bytes the system can give this process now (Linux's MemAvailable), or None where it cannot tell."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def relationship_memory(n: int, m: int, *, itemsize: int = 8) -> int:
    """``grm``: G (n x n) and the scaled markers it is made from (n x m), in ``itemsize``-byte numbers."""
    return (n * n + n * m) * itemsize


def fit_memory(n: int, m: int, *, low_rank: bool = False) -> int:
    """A one-kernel fit: G, its eigenvectors and LAPACK's workspace (three n x n float64 matrices), and W (n x m).

    M-BLUP's marginal form decomposes W W' (n x n) as well, so the same figure holds for it. The low-rank path
    (m < n) holds W, and ``W'W`` with its eigenvectors and a row block's products (three m x m float64 matrices),
    never an n x n one.
    """
    if low_rank:
        return (n * m + 3 * m * m) * 8
    return (3 * n * n + n * m) * 8


def check_memory(need: int, *, what: str, instead: str, available: int | None = None) -> None:
    """Refuse ``need`` bytes when the machine has less available, saying what would fit instead."""
    available = available_memory() if available is None else available
    if available is None or need <= available:
        return
    advice = f"; {instead}" if instead else "; run it on a machine with more memory."
    raise InputError(
        f"{what} needs about {need / GiB:.1f} GiB of memory and {available / GiB:.1f} GiB are available{advice}"
    )
