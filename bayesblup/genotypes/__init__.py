"""Genotypes to kernels' inputs: calls, readers, QC, scalings (W), relationships (G), marker sets, maps, Dask.

Plain array functions with keyword-only options; nothing here knows about models.
"""

from .calls import MISSING, Genotypes
from .dask import genomic_relationship_bed
from .marker_sets import MarkerSets, genotype_matrices_by_set, marker_sets, read_marker_sets, relationships_by_set
from .markers import chromosome_order, place_markers, read_marker_map
from .qc import QCReport, quality_control
from .readers import (
    read_allele_freq,
    read_genotypes,
    read_genotypes_csv,
    read_plink,
    read_relationship,
    write_relationship,
)
from .relationship import Relationship, genomic_relationship, relationship_matrix
from .scaling import GenotypeMatrix, MarkerScaling, fit_scaling, genotype_matrix
from .vcf import read_vcf

__all__ = [
    "MISSING",
    "GenotypeMatrix",
    "Genotypes",
    "MarkerScaling",
    "MarkerSets",
    "QCReport",
    "Relationship",
    "chromosome_order",
    "fit_scaling",
    "genomic_relationship",
    "genomic_relationship_bed",
    "genotype_matrices_by_set",
    "genotype_matrix",
    "marker_sets",
    "place_markers",
    "quality_control",
    "read_allele_freq",
    "read_genotypes",
    "read_genotypes_csv",
    "read_marker_map",
    "read_marker_sets",
    "read_plink",
    "read_relationship",
    "read_vcf",
    "relationship_matrix",
    "relationships_by_set",
    "write_relationship",
]
