"""Quality control: every filter, its report, missing-call imputation, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import exact_relationship

import bayesblup as bb

NAN = np.nan

# Columns: ok, mono (all 1), allmiss, lowcall (2 of 5 observed), rare (one 1 in ten alleles).
CALLS = np.array(
    [
        [0, 1, NAN, 0, 0],
        [1, 1, NAN, NAN, 0],
        [2, 1, NAN, NAN, 0],
        [1, NAN, NAN, NAN, 1],
        [0, 1, NAN, 2, 0],
    ]
)
MARKERS = ["ok", "mono", "allmiss", "lowcall", "rare"]
IDS = list("abcde")


def genotypes():
    return bb.Genotypes.from_array(CALLS, ids=IDS, markers=MARKERS, coding="additive")


@pytest.mark.structural
def test_quality_control__always_drops_monomorphic_and_empty_markers():
    geno, report = bb.quality_control(genotypes())
    assert list(geno.markers) == ["ok", "lowcall", "rare"]
    assert report.dropped_markers == {"all_missing": ("allmiss",), "monomorphic": ("mono",)}
    assert report.n_markers_dropped == 2 and report.n_markers_out == 3
    assert report.n_missing_in == 1 + 5 + 3
    assert report.n_missing_out == 3  # the three in 'lowcall', to be imputed


@pytest.mark.structural
def test_quality_control__optional_filters():
    geno, report = bb.quality_control(genotypes(), min_call_rate=0.5, min_maf=0.15)
    assert list(geno.markers) == ["ok"]
    assert report.dropped_markers["call_rate"] == ("lowcall",)
    assert report.dropped_markers["maf"] == ("rare",)  # p = 1/10 < 0.15


@pytest.mark.structural
def test_quality_control__maf_at_threshold_is_kept():
    _, report = bb.quality_control(genotypes(), min_maf=0.1)  # 'rare' has MAF exactly 0.1
    assert "maf" not in report.dropped_markers


@pytest.mark.structural
def test_quality_control__individual_call_rate_runs_first():
    calls = CALLS.copy()
    calls[3, :] = NAN  # d has no call at all
    calls[3, 0] = 1
    geno = bb.Genotypes.from_array(calls, ids=IDS, markers=MARKERS, coding="additive")
    kept, report = bb.quality_control(geno, min_individual_call_rate=0.5)
    assert report.dropped_individuals == ("d",)
    assert list(kept.ids) == ["a", "b", "c", "e"]
    assert report.n_individuals_out == 4
    # Without d, 'rare' has no 1 left and becomes monomorphic.
    assert "rare" in report.dropped_markers["monomorphic"]


@pytest.mark.structural
def test_quality_control__report_lines_and_dict():
    _, report = bb.quality_control(genotypes(), min_maf=0.15)
    text = str(report)
    assert "genotypes: 5 individuals x 5 markers" in text
    assert "missing calls: 9 of 25 (36.00%)" in text
    assert "dropped 1 markers monomorphic (one observed count or dosage only): mono" in text
    assert "dropped 1 markers with no observed call: allmiss" in text
    assert "dropped 1 markers with minor allele frequency below 0.15: rare" in text
    assert "kept: 5 individuals x 2 markers; 3 missing calls will be imputed to the marker mean (2p)" in text
    d = report.to_dict()
    assert d["dropped_markers"]["maf"] == ["rare"] and d["filters"]["min_maf"] == 0.15


@pytest.mark.parametrize("scaling", ["standardized", "standardized-hwe", "centered"])
@pytest.mark.exact
def test_quality_control__then_G_imputes_missing_to_the_marker_mean(scaling):
    """After QC, each scaling fills a missing call with the observed mean and matches the exact oracle."""
    geno, _ = bb.quality_control(genotypes())
    kept = [MARKERS.index(m) for m in geno.markers]
    G = bb.genomic_relationship(geno, scaling=scaling).matrix
    np.testing.assert_allclose(G, exact_relationship(CALLS[:, kept], scaling=scaling, k=2), rtol=1e-12, atol=1e-13)
    W = bb.genotype_matrix(geno, scaling=scaling)
    # A filled call sits on the observed mean of its marker: (0 + 2) / 2 for 'lowcall'.
    lowcall = list(geno.markers).index("lowcall")
    expected = (1.0 - W.scaling.center[lowcall]) * W.scaling.multiplier[lowcall]
    np.testing.assert_allclose(W.values[1:4, lowcall], expected, atol=1e-15)


@pytest.mark.structural
def test_quality_control__raise_when_nothing_is_left():
    geno = bb.Genotypes.from_array(np.ones((3, 2)), ids=list("abc"), coding="additive")
    with pytest.raises(bb.InputError, match=r"no marker passes quality control \(monomorphic: 2\)"):
        bb.quality_control(geno)


@pytest.mark.structural
def test_quality_control__raise_on_threshold_out_of_range():
    with pytest.raises(bb.InputError, match=r"min_maf must lie in \[0, 0.5\], got 0.7"):
        bb.quality_control(genotypes(), min_maf=0.7)


@pytest.mark.structural
def test_quality_control__raise_when_every_individual_fails():
    with pytest.raises(bb.InputError, match=r"every individual has call rate below 1.0"):
        bb.quality_control(genotypes(), min_individual_call_rate=1.0)


@pytest.mark.structural
def test_quality_control__plink_sample_reports_missing(plink_bed):
    raw = bb.read_genotypes(plink_bed)
    geno, report = bb.quality_control(raw)
    assert report.n_missing_in == 141
    kept = np.isin(raw.markers, geno.markers)
    assert report.n_missing_out == int((raw.calls[:, kept] == bb.MISSING).sum())
