"""The public API is deliberate: __all__ is frozen here, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import bayesblup as bb

pytestmark = pytest.mark.structural

PUBLIC = {
    "MISSING", "GenotypeMatrix", "Genotypes", "InputError", "DataWarning", "MarkerScaling", "QCReport", "Relationship",
    "__version__", "datasets", "plots", "fit_scaling", "genomic_relationship", "genotype_matrix", "quality_control",
    "read_allele_freq", "read_genotypes", "read_genotypes_csv", "read_plink", "read_relationship", "read_vcf",
    "read_marker_map",
    "relationship_matrix", "write_relationship", "reml", "REMLResult",
    "GBLUP", "MBLUP", "BLUPFit", "Prior", "RankDeficiencyWarning", "Records", "Spectral", "eigendecompose",
    "match_records", "read_phenotypes", "CVResult", "cross_validate",
    "MultiGBLUP", "MultiMBLUP", "SetsFit", "MarkerSets", "marker_sets", "read_marker_sets", "relationships_by_set",
    "genotype_matrices_by_set", "genomic_relationship_bed",
    "SBCResult", "simulation_based_calibration", "interval_coverage", "prior_sensitivity",
    "check_equivalence", "EquivalenceReport", "BLUPModel", "RelationshipKernel", "MarkerKernel", "load_fit",
}  # fmt: skip


def test_all_is_frozen():
    assert set(bb.__all__) == PUBLIC, "update PUBLIC (and the docs) when the API changes on purpose"
    for name in bb.__all__:
        assert hasattr(bb, name)


def test_import_does_not_load_pymc():
    """The genotype layer must not pay PyMC's import and compile cost."""
    code = "import sys, bayesblup; print('pymc' in sys.modules, 'pytensor' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_source_of_the_maths_is_cited_by_name():
    """Docs, notebooks and docstrings cite the lecture notes, not "the seed" (issue 19), and the corrections the
    project makes to them are listed where the maths starts and in the README."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [*root.joinpath("bayesblup").rglob("*.py"), *root.joinpath("docs").glob("*.md"), root / "README.md"]
    files += [*root.joinpath("notebooks").glob("*.ipynb"), root / "notebooks" / "README.md"]
    pattern = re.compile(r"\b[Tt]he seed's\b|\b[Tt]he seed (prints|writes|says)\b|\bas in the seed\b")
    offenders = [str(f.relative_to(root)) for f in files if pattern.search(f.read_text(encoding="utf-8"))]
    assert offenders == []
    citation = "Høj-Edwards and P. Sørensen, *Linear Mixed Models used in Quantitative Genomics*"
    for page in ("README.md", "docs/maths.md"):
        text = " ".join((root / page).read_text(encoding="utf-8").split())
        assert citation in text and "sqrt" in text.lower() and "square" in text, page
