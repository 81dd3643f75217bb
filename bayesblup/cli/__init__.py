"""The command line: ``bayesblup grm``, ``fit``, ``summary`` and ``demo``."""

from .main import main

__all__ = ["main"]
