"""Model builders: one small class per model, each exposing its ``pm.Model``."""

from .base import FORMS, METHODS, BLUPModel
from .gblup import GBLUP
from .mblup import MBLUP
from .sets import PATHS, MultiGBLUP, MultiMBLUP, SetsModel

__all__ = ["FORMS", "GBLUP", "MBLUP", "METHODS", "PATHS", "BLUPModel", "MultiGBLUP", "MultiMBLUP", "SetsModel"]
