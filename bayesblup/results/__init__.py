"""Results: the fitted model, its tables and diagnostics, saving and loading."""

from .fit import THRESHOLDS, BLUPFit
from .sets import SetsFit
from .store import load_fit

__all__ = ["THRESHOLDS", "BLUPFit", "SetsFit", "load_fit"]
