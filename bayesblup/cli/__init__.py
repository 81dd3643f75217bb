"""The command line: ``bayesblup grm``, ``fit``, ``summary`` and ``demo``."""

from .main import main, run

__all__ = ["main", "run"]
