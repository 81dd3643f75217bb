"""Results: the fitted model, its tables and diagnostics, saving and loading."""

from .fit import THRESHOLDS, BLUPFit
from .sets import SetsFit

__all__ = ["THRESHOLDS", "BLUPFit", "SetsFit"]
