"""Built-in example data, shipped inside the package: no network and no shared folder needed.

The wheat data come from the BGLR R package (GPL-3; Crossa et al. 2010); see ``wheat/README.md``
beside this file for provenance and licence.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

from ..genotypes.calls import Genotypes
from ..genotypes.readers import read_genotypes_csv

__all__ = ["Wheat", "load_wheat", "wheat_path"]


@dataclass(frozen=True, eq=False)
class Wheat:
    """The CIMMYT wheat data: 599 lines, 1279 DArT markers, 4 traits, 10 CV folds.

    Attributes
    ----------
    genotypes : Genotypes
        0/1 presence/absence DArT calls, no missing values.
    phenotypes : pandas.DataFrame
        Grain yield in four environments, columns ``y1, y2, y4, y5``, indexed by line ID.
    folds : pandas.Series
        BGLR's 10-fold cross-validation labels (1..10), indexed by line ID.
    """

    genotypes: Genotypes
    phenotypes: pd.DataFrame
    folds: pd.Series


def wheat_path(name: str) -> str:
    """Path of a wheat data file inside the installed package (``wheat_X.csv.gz``, ...)."""
    return str(resources.files(__package__).joinpath("wheat", name))


def load_wheat() -> Wheat:
    """Load the wheat data shipped with bayesblup.

    Examples
    --------
    >>> from bayesblup.datasets import load_wheat
    >>> wheat = load_wheat()
    >>> wheat.genotypes.n_individuals, wheat.genotypes.n_markers
    (599, 1279)
    >>> list(wheat.phenotypes.columns)
    ['y1', 'y2', 'y4', 'y5']
    """
    genotypes = read_genotypes_csv(wheat_path("wheat_X.csv.gz"), coding="presence-absence")
    phenotypes = pd.read_csv(wheat_path("wheat_Y.csv"), index_col=0, dtype={"line_id": str})
    folds = pd.read_csv(wheat_path("wheat_sets.csv"), index_col=0, dtype={"line_id": str})["set"]
    return Wheat(genotypes=genotypes, phenotypes=phenotypes, folds=folds)
