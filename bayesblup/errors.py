"""Errors raised for bad user input.

Every problem with what a user passed in (files, arrays, options) raises :class:`InputError`.
Its message says what was wrong, where, and what to do. The command line turns it into a
one-line message and exit code 2; programming errors keep their traceback.
"""

from __future__ import annotations

__all__ = ["DataWarning", "InputError"]


class InputError(ValueError):
    """Bad input: the message names the problem, where it is, and the fix."""


class DataWarning(UserWarning):
    """Input that runs but is probably not what was meant (a missing-value code fitted as a record, ...)."""


def preview(items, limit: int = 10) -> str:
    """Comma-join the first ``limit`` items, noting how many more there are."""
    items = [str(i) for i in items]
    head = ", ".join(items[:limit])
    more = len(items) - limit
    return f"{head} (and {more} more)" if more > 0 else head
