"""Results: the fitted model, its tables and diagnostics, saving and loading."""

from .fit import THRESHOLDS, BLUPFit
from .store import load_fit

#: The fit of a model with several marker sets is a :class:`BLUPFit` like any other (kept as a name for old code).
SetsFit = BLUPFit

__all__ = ["THRESHOLDS", "BLUPFit", "SetsFit", "load_fit"]
