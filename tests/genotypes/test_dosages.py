"""Fractional dosages (float32, NaN missing) in Genotypes: QC, W and G against the exact oracle, and refusals.

A VCF's DS field is the reader that makes them (tests/genotypes/test_vcf.py); here they are built directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oracles import exact_relationship

import bayesblup as bb
from bayesblup.genotypes.calls import MARKER_MAP_COLUMNS, MISSING

NAN = np.nan

# Columns: ok (fractional, one missing), mono (one value), allmiss, lowcall (2 of 5 observed), rare (p = 0.02).
DOSAGES = np.array(
    [
        [0.1, 0.5, NAN, 0.0, 0.0],
        [1.25, 0.5, NAN, NAN, 0.0],
        [1.9, 0.5, NAN, NAN, 0.0],
        [NAN, NAN, NAN, NAN, 0.2],
        [0.75, 0.5, NAN, 1.5, 0.0],
    ],
    dtype=np.float32,
)
MARKERS = ["ok", "mono", "allmiss", "lowcall", "rare"]
IDS = list("abcde")


def dosages(calls=DOSAGES, **kwargs) -> bb.Genotypes:
    return bb.Genotypes(calls=calls, ids=IDS[: calls.shape[0]], markers=MARKERS[: calls.shape[1]], coding="additive",
                        **kwargs)  # fmt: skip


@pytest.mark.structural
def test_dosages_are_held_as_float32_with_nan_missing():
    geno = dosages()
    assert geno.is_dosage and geno.calls.dtype == np.float32
    assert geno.n_missing == 1 + 1 + 5 + 3
    assert "dosages" in repr(geno)
    assert not bb.Genotypes.from_array(np.array([[0, 1], [2, 1]]), ids=["a", "b"]).is_dosage


@pytest.mark.structural
def test_quality_control_of_dosages_drops_by_the_same_rules():
    """Monomorphic: one observed value (0.5 everywhere it is called); MAF from the mean dosage (p = 0.04 / 2)."""
    geno, report = bb.quality_control(dosages(), min_maf=0.05, min_call_rate=0.5)
    assert list(geno.markers) == ["ok"] and geno.is_dosage
    assert report.dropped_markers == {
        "all_missing": ("allmiss",),
        "call_rate": ("lowcall",),
        "monomorphic": ("mono",),
        "maf": ("rare",),
    }
    assert report.n_missing_out == 1 and report.dosages
    assert "coding: additive (fractional dosages)" in str(report)
    assert report.to_dict()["dosages"] is True


@pytest.mark.structural
def test_individual_call_rate_counts_nan_as_missing():
    _, report = bb.quality_control(dosages(), min_individual_call_rate=0.5)
    assert report.dropped_individuals == ("d",)  # 1 of 5 observed


@pytest.mark.exact
@pytest.mark.parametrize("scaling", ["standardized", "standardized-hwe", "centered"])
def test_g_of_dosages_matches_the_exact_oracle(scaling):
    """G from float32 dosages against Fractions of the same values (float32 -> float64 is exact); missing calls
    take the observed mean. Tolerance 1e-12 relative: float64 sums in another order."""
    geno, _ = bb.quality_control(dosages().select(markers=[0, 3, 4]))  # ok, lowcall, rare: all vary
    G = bb.genomic_relationship(geno, scaling=scaling).matrix
    expected = exact_relationship(geno.calls.astype(np.float64), scaling=scaling, k=2)
    np.testing.assert_allclose(G, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.exact
@pytest.mark.parametrize("scaling", ["standardized", "standardized-hwe", "centered"])
def test_whole_dosages_give_the_g_of_the_counts_bit_for_bit(scaling, rng):
    """The same calls as int8 counts and as float32 dosages: the sums are the same integers, so G is identical."""
    counts = rng.integers(0, 3, size=(30, 40)).astype(float)
    counts[rng.random(counts.shape) < 0.05] = NAN
    as_counts = bb.Genotypes.from_array(counts, ids=[f"i{k}" for k in range(30)], coding="additive")
    as_dosages = bb.Genotypes(calls=counts.astype(np.float32), ids=as_counts.ids, markers=as_counts.markers,
                              coding="additive")  # fmt: skip
    G_counts = bb.genomic_relationship(bb.quality_control(as_counts)[0], scaling=scaling).matrix
    G_dosages = bb.genomic_relationship(bb.quality_control(as_dosages)[0], scaling=scaling).matrix
    assert np.array_equal(G_counts, G_dosages)


@pytest.mark.exact
@pytest.mark.parametrize("base", [0.7, 1.3, 1.9])
def test_standardized_w_of_dosages_that_differ_in_their_last_bit_has_unit_variance(base, rng):
    """A dosage marker whose calls differ by one float32 step: ``sum x^2 - (sum x)^2 / n`` cancelled to a negative
    number (1.3, 1.9: W's column NaN) or to 1e-11 for 1.4e-14 (0.7: variance 3e-4, not 1). The sum of squared
    deviations, taken about the mean, keeps W's standardised column at variance 1 (1e-6: its ss holds 1e-14 to
    the rounding of one float64 subtraction, relative 1e-9)."""
    n = 1000
    calls = rng.integers(0, 3, size=(n, 2)).astype(np.float32)
    calls[:, 0] = base
    calls[0, 0] = np.nextafter(np.float32(base), np.float32(2))
    geno, _ = bb.quality_control(bb.Genotypes(calls=calls, ids=[f"i{k}" for k in range(n)], markers=["tiny", "m"],
                                              coding="additive"))  # fmt: skip
    assert geno.n_markers == 2  # two different values: polymorphic
    W = bb.genotype_matrix(geno, scaling="standardized").values
    np.testing.assert_allclose(W.var(axis=0, ddof=1), 1.0, rtol=1e-6)


@pytest.mark.exact
def test_w_of_dosages_puts_missing_calls_on_the_marker_mean():
    geno = dosages().select(markers=[0])
    W = bb.genotype_matrix(geno, scaling="centered").values[:, 0]
    observed = DOSAGES[[0, 1, 2, 4], 0].astype(np.float64)
    np.testing.assert_allclose(W[[0, 1, 2, 4]], observed - observed.mean(), rtol=1e-15, atol=1e-15)
    assert W[3] == pytest.approx(0.0, abs=1e-15)  # the missing call, filled with the mean


@pytest.mark.structural
@pytest.mark.parametrize(
    ("value", "match"),
    [(2.5, r"dosage 2\.5 lies outside \[0, 2\] at \(individual b, marker mono\)"), (-0.1, "dosage -0.1"),
     (np.inf, "dosage inf")],
)  # fmt: skip
def test_a_dosage_outside_0_2_is_refused(value, match):
    calls = DOSAGES.copy()
    calls[1, 1] = value
    with pytest.raises(bb.InputError, match=match):
        dosages(calls)


@pytest.mark.structural
def test_dosages_are_additive_and_float32_only():
    with pytest.raises(bb.InputError, match="fractional dosages count alleles: their coding is 'additive'"):
        bb.Genotypes(calls=DOSAGES, ids=IDS, markers=MARKERS, coding="presence-absence")
    with pytest.raises(bb.InputError, match="2-D int8 array of counts \\(or float32 of dosages\\)"):
        bb.Genotypes(calls=DOSAGES.astype(np.float64), ids=IDS, markers=MARKERS, coding="additive")


@pytest.mark.structural
def test_marker_map_follows_the_markers_through_qc():
    frame = pd.DataFrame(
        {"chromosome": ["1"] * 5, "position": np.arange(100, 600, 100), "counted_allele": list("AGTCA"),
         "other_allele": list("GACTG")}
    )  # fmt: skip
    geno, _ = bb.quality_control(dosages(marker_map=frame))
    assert list(geno.marker_map.columns) == list(MARKER_MAP_COLUMNS)
    assert list(geno.marker_map.index) == list(geno.markers) == ["ok", "lowcall", "rare"]
    assert list(geno.marker_map["position"]) == [100, 400, 500]
    with pytest.raises(bb.InputError, match="marker_map has 4 rows for 5 markers"):
        dosages(marker_map=frame.iloc[:4])
    with pytest.raises(bb.InputError, match="marker_map must be a DataFrame with columns chromosome, position"):
        dosages(marker_map=frame.rename(columns={"position": "bp"}))


@pytest.mark.structural
def test_counts_keep_their_missing_code():
    """The int8 path is unchanged: MISSING, not NaN, marks a missing count."""
    geno = bb.Genotypes.from_array(np.array([[0, NAN], [2, 1]]), ids=["a", "b"])
    assert geno.calls[0, 1] == MISSING and geno.n_missing == 1
