"""bayesblup: Bayesian linear mixed models for quantitative genomics, built on PyMC.

The layers, bottom up:

* :mod:`bayesblup.genotypes`, :mod:`bayesblup.io`, :mod:`bayesblup.qc`: calls in, checked and filtered;
* :mod:`bayesblup.scaling`: calls to the marker matrix W (three scalings);
* :mod:`bayesblup.relationship`: W to the genomic relationship matrix G;
* :mod:`bayesblup.dask_grm`: G from a PLINK .bed in blocks of markers with Dask (extra ``bayesblup[dask]``);
* :mod:`bayesblup.datasets`: built-in example data; :mod:`bayesblup.testing`: simulators.

Importing the package loads NumPy, SciPy and pandas only; PyMC is imported when a model is built, Dask when
:func:`genomic_relationship_bed` runs.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayesblup")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from . import datasets, plots
from .calibration import SBCResult, interval_coverage, simulation_based_calibration
from .cv import CVResult, cross_validate
from .dask_grm import genomic_relationship_bed
from .errors import InputError
from .genotypes import MISSING, Genotypes
from .io import (
    read_allele_freq,
    read_genotypes,
    read_genotypes_csv,
    read_plink,
    read_relationship,
    write_relationship,
)
from .models import GBLUP, MBLUP, MultiGBLUP, MultiMBLUP
from .phenotypes import Records, match_records, read_phenotypes
from .priors import Prior
from .qc import QCReport, quality_control
from .relationship import Relationship, genomic_relationship, relationship_matrix
from .reml import REMLResult, reml
from .results import BLUPFit
from .results_sets import SetsFit
from .scaling import GenotypeMatrix, MarkerScaling, fit_scaling, genotype_matrix
from .sensitivity import prior_sensitivity
from .sets import MarkerSets, genotype_matrices_by_set, marker_sets, read_marker_sets, relationships_by_set
from .spectral import RankDeficiencyWarning, Spectral, eigendecompose

__all__ = [
    "GBLUP",
    "MBLUP",
    "MISSING",
    "BLUPFit",
    "CVResult",
    "GenotypeMatrix",
    "Genotypes",
    "InputError",
    "MarkerScaling",
    "MarkerSets",
    "MultiGBLUP",
    "MultiMBLUP",
    "Prior",
    "QCReport",
    "REMLResult",
    "RankDeficiencyWarning",
    "Records",
    "Relationship",
    "SBCResult",
    "SetsFit",
    "Spectral",
    "__version__",
    "cross_validate",
    "datasets",
    "eigendecompose",
    "fit_scaling",
    "genomic_relationship",
    "genomic_relationship_bed",
    "genotype_matrices_by_set",
    "genotype_matrix",
    "interval_coverage",
    "marker_sets",
    "match_records",
    "plots",
    "prior_sensitivity",
    "quality_control",
    "read_allele_freq",
    "read_genotypes",
    "read_genotypes_csv",
    "read_marker_sets",
    "read_phenotypes",
    "read_plink",
    "read_relationship",
    "relationship_matrix",
    "relationships_by_set",
    "reml",
    "simulation_based_calibration",
    "write_relationship",
]
