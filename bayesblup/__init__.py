"""bayesblup: Bayesian linear mixed models for quantitative genomics, built on PyMC.

The layers, bottom up; each imports only those below it (``make test`` checks this contract):

* :mod:`bayesblup.names`, :mod:`bayesblup.errors`, :mod:`bayesblup.files`: shared names, the input
  error, files in and out;
* :mod:`bayesblup.genotypes`: calls, readers, QC, scalings (W), relationships (G), marker sets, Dask;
* :mod:`bayesblup.phenotypes`: records matched to genotyped individuals, fixed effects, weights;
* :mod:`bayesblup.linalg`: eigendecompositions and low-rank updates;
* :mod:`bayesblup.kernels`: a kernel (G, or marker effects on W) as the unit of a model;
* :mod:`bayesblup.models`: one model over a list of kernels, as a ``pm.Model``; priors;
* :mod:`bayesblup.inference`: NUTS back ends and MAP, the compiled-model cache, ``g | y, theta``;
* :mod:`bayesblup.results`: the fit, its tables and diagnostics, saving and loading;
* :mod:`bayesblup.fitting`: ``GBLUP``, ``MBLUP``, ``MultiGBLUP``, ``MultiMBLUP``: models that fit themselves;
* :mod:`bayesblup.analyses`: REML, cross-validation, prior sensitivity, the equivalence, calibration;
* :mod:`bayesblup.plots` and :mod:`bayesblup.cli`.

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
from .analyses.calibration import SBCResult, interval_coverage, simulation_based_calibration
from .analyses.cv import CVResult, cross_validate
from .analyses.equivalence import EquivalenceReport, check_equivalence
from .analyses.reml import REMLResult, reml
from .analyses.sensitivity import prior_sensitivity
from .errors import DataWarning, InputError
from .fitting import GBLUP, MBLUP, BLUPModel, MultiGBLUP, MultiMBLUP
from .genotypes.calls import MISSING, Genotypes
from .genotypes.dask import genomic_relationship_bed
from .genotypes.marker_sets import (
    MarkerSets,
    genotype_matrices_by_set,
    marker_sets,
    read_marker_sets,
    relationships_by_set,
)
from .genotypes.markers import read_marker_map
from .genotypes.qc import QCReport, quality_control
from .genotypes.readers import (
    read_allele_freq,
    read_genotypes,
    read_genotypes_csv,
    read_plink,
    read_relationship,
    read_vcf,
    write_relationship,
)
from .genotypes.relationship import Relationship, genomic_relationship, relationship_matrix
from .genotypes.scaling import GenotypeMatrix, MarkerScaling, fit_scaling, genotype_matrix
from .kernels import MarkerKernel, RelationshipKernel
from .linalg.spectral import RankDeficiencyWarning, Spectral, eigendecompose
from .models.priors import Prior
from .phenotypes import Records, match_records, read_phenotypes
from .results import BLUPFit, SetsFit, load_fit

__all__ = [
    "GBLUP",
    "MBLUP",
    "MISSING",
    "BLUPFit",
    "BLUPModel",
    "CVResult",
    "DataWarning",
    "EquivalenceReport",
    "GenotypeMatrix",
    "Genotypes",
    "InputError",
    "MarkerKernel",
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
    "RelationshipKernel",
    "SBCResult",
    "SetsFit",
    "Spectral",
    "__version__",
    "check_equivalence",
    "cross_validate",
    "datasets",
    "eigendecompose",
    "fit_scaling",
    "genomic_relationship",
    "genomic_relationship_bed",
    "genotype_matrices_by_set",
    "genotype_matrix",
    "interval_coverage",
    "load_fit",
    "marker_sets",
    "match_records",
    "plots",
    "prior_sensitivity",
    "quality_control",
    "read_allele_freq",
    "read_genotypes",
    "read_genotypes_csv",
    "read_marker_map",
    "read_marker_sets",
    "read_phenotypes",
    "read_plink",
    "read_relationship",
    "read_vcf",
    "relationship_matrix",
    "relationships_by_set",
    "reml",
    "simulation_based_calibration",
    "write_relationship",
]
