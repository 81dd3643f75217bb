"""Model builders: one model over a list of kernels, as a ``pm.Model`` (:mod:`bayesblup.models.model`).

The public classes that also fit themselves (``GBLUP``, ``MBLUP``, ``MultiGBLUP``, ``MultiMBLUP``) are
in :mod:`bayesblup.fitting`, a layer above inference and results.
"""

from .model import FAMILIES, FORMS, METHODS, PATHS, BLUPModel
from .priors import Prior

__all__ = ["FAMILIES", "FORMS", "METHODS", "PATHS", "BLUPModel", "Prior"]
