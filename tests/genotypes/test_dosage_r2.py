"""Dosage r2 (MaCH r2, as PLINK 2's --mach-r2-filter): the estimate, QC filter 6, the report's warning, refusals.

Poorly imputed dosages are shrunk towards the marker's mean 2p: their variance, over the 2p(1-p) of hard calls at
the same frequency, is their r2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from vcf_files import record, write_vcf

import bayesblup as bb
from bayesblup.genotypes.calls import dosage_r2, marker_stats
from bayesblup.genotypes.qc import POOR_DOSAGE_R2

NAN = np.nan
SAMPLE_VCF = Path(__file__).parents[1] / "data" / "vcf" / "sample.vcf"

# Five individuals; every dosage a binary fraction, exact in float32. By hand (mean, population variance, p, r2):
#   called      0, 1, 1, 2, 1 (whole)       mean 1,    var 2/5,      p 1/2,  r2 = 0.4 / 0.5          = 4/5
#   shrunk      towards 1                   mean 1,    var 1/40,     p 1/2,  r2 = 0.025 / 0.5        = 1/20
#   missing     2 of 5 missing              mean 3/4,  var 7/24,     p 3/8,  r2 = (7/24) / (15/32)   = 28/45
#   homozygous  fewer hets than HWE         mean 1,    var 5/8,      p 1/2,  r2 = 0.625 / 0.5        = 5/4 (> 1)
#   half        1 of 5 missing              mean 1,    var 1/4,      p 1/2,  r2 = 0.25 / 0.5         = 1/2
#   rare        MAF 0.05                    mean 1/10, var 3/200,    p 1/20, r2 = 0.015 / 0.095      = 3/19
#   mono, allmiss: undefined (NaN)
MARKERS = ["called", "shrunk", "missing", "homozygous", "half", "rare", "mono", "allmiss"]
DOSAGES = np.array(
    [
        [0.0, 0.75, 0.5, 0.0, 0.5, 0.25, 0.5, NAN],
        [1.0, 1.0, NAN, 0.25, 1.5, 0.0, 0.5, NAN],
        [1.0, 1.0, 1.5, 1.75, 0.5, 0.0, 0.5, NAN],
        [2.0, 1.25, 0.25, 2.0, 1.5, 0.0, 0.5, NAN],
        [1.0, 1.0, NAN, 1.0, NAN, 0.25, 0.5, NAN],
    ],
    dtype=np.float32,
)
R2 = [4 / 5, 1 / 20, 28 / 45, 5 / 4, 1 / 2, 3 / 19, NAN, NAN]


def dosages(columns=None) -> bb.Genotypes:
    k = list(range(len(MARKERS))) if columns is None else [MARKERS.index(c) for c in columns]
    return bb.Genotypes(calls=DOSAGES[:, k], ids=list("abcde"), markers=[MARKERS[j] for j in k], coding="additive")


@pytest.mark.exact
def test_dosage_r2_against_the_hand_computation():
    """Inputs exact (binary fractions in float32, float64 sums of them exact): only the last divisions round, each
    to half an ulp, so 1e-12 relative is far above the rounding and far below any difference that matters."""
    r2 = dosage_r2(marker_stats(DOSAGES))
    np.testing.assert_allclose(r2, R2, rtol=1e-12, atol=0)  # NaN where undefined, on both sides
    assert r2[MARKERS.index("homozygous")] > 1  # allowed: HWE's denominator, not a bound


@pytest.mark.structural
def test_the_filter_drops_below_the_threshold_and_keeps_at_or_above_it():
    geno, report = bb.quality_control(dosages(), min_dosage_r2=0.5)
    assert list(geno.markers) == ["called", "missing", "homozygous", "half"]  # 'half' is exactly 0.5: kept
    assert report.dropped_markers["dosage_r2"] == ("shrunk", "rare")
    assert "dropped 2 markers with dosage r2 below 0.5 (poorly imputed): shrunk, rare" in str(report)
    assert report.to_dict()["filters"]["min_dosage_r2"] == 0.5
    assert report.to_dict()["poorly_imputed"] is None and "warning" not in str(report)  # asked: no warning


@pytest.mark.structural
def test_the_filter_runs_after_the_maf_filter():
    _, report = bb.quality_control(dosages(), min_maf=0.1, min_dosage_r2=0.5)
    assert list(report.dropped_markers) == ["all_missing", "monomorphic", "maf", "dosage_r2"]
    assert report.dropped_markers["maf"] == ("rare",) and report.dropped_markers["dosage_r2"] == ("shrunk",)
    lines = report.lines()
    maf = next(k for k, line in enumerate(lines) if "minor allele frequency" in line)
    assert "dosage r2 below 0.5" in lines[maf + 1]


@pytest.mark.structural
def test_without_the_filter_the_report_counts_the_poorly_imputed_markers():
    """shrunk (1/20) and rare (3/19) are below 0.3; mono and allmiss are dropped before."""
    geno, report = bb.quality_control(dosages())
    assert geno.n_markers == 6 and report.n_poorly_imputed == 2
    warning = (
        "warning: 2 kept markers have dosage r2 below 0.3 (poorly imputed: the standardized scaling weights them "
        "like well-called markers, amplifying their imputation noise); --min-dosage-r2 0.3 drops them"
    )
    assert warning in report.lines() and warning in str(report)
    assert report.to_dict()["poorly_imputed"] == {"dosage_r2_below": POOR_DOSAGE_R2, "n_markers": 2}
    _, report = bb.quality_control(dosages(), min_maf=0.1)  # rare is dropped for its MAF: one left to count
    assert report.n_poorly_imputed == 1 and "warning: 1 kept marker has dosage r2 below 0.3" in str(report)


@pytest.mark.structural
def test_no_warning_when_every_marker_reaches_0_3():
    _, report = bb.quality_control(dosages(["called", "missing", "homozygous", "half"]))
    assert report.n_poorly_imputed == 0 and "warning" not in str(report)
    assert report.to_dict()["poorly_imputed"]["n_markers"] == 0


@pytest.mark.structural
def test_no_warning_for_hard_calls():
    """Hard calls with many heterozygotes have a low r2 too (7 of 8 het: 2/9) but nothing was imputed."""
    calls = np.array([[1, 0], [1, 1], [1, 2], [1, 1], [1, 0], [1, 1], [1, 2], [0, 1]])
    geno = bb.Genotypes.from_array(calls, ids=[f"i{k}" for k in range(8)], markers=["het", "hwe"], coding="additive")
    assert dosage_r2(marker_stats(geno.calls))[0] == pytest.approx(2 / 9, rel=1e-12)
    _, report = bb.quality_control(geno)
    assert report.n_poorly_imputed is None and "warning" not in str(report)
    assert report.to_dict()["poorly_imputed"] is None and report.to_dict()["filters"]["min_dosage_r2"] is None


@pytest.mark.structural
@pytest.mark.parametrize("value", [1.5, -0.1])
def test_a_threshold_outside_0_1_is_refused(value):
    with pytest.raises(bb.InputError, match=rf"min_dosage_r2 must lie in \[0, 1.0\], got {value}"):
        bb.quality_control(dosages(), min_dosage_r2=value)


@pytest.mark.structural
def test_the_filter_is_refused_for_hard_calls():
    geno = bb.Genotypes.from_array(np.array([[0, 1], [2, 1], [1, 0]]), ids=list("abc"), source="geno.csv")
    with pytest.raises(bb.InputError, match=r"geno\.csv: min_dosage_r2 .* filters imputed dosages") as info:
        bb.quality_control(geno, min_dosage_r2=0.3)
    assert "hold hard calls" in str(info.value) and "drop the option" in str(info.value)


# --- VCF: whether DS holds dosages is known once read ------------------------------------------------------------


def fractional_ds_vcf(path: Path) -> Path:
    """Four samples, DS fractional: rs1 well imputed, rs2 shrunk towards its mean (r2 0.01)."""
    return write_vcf(
        path,
        [
            record(10, "rs1", ["0/0:0.05", "0/1:1", "1/1:1.95", "0/1:0.9"], fmt="GT:DS"),
            record(20, "rs2", ["0/0:0.9", "0/1:1", "1/1:1.1", "0/1:1"], fmt="GT:DS"),
        ],
    )


@pytest.mark.structural
def test_a_vcf_read_with_auto_that_holds_fractional_ds_is_filtered(tmp_path):
    geno = bb.read_vcf(fractional_ds_vcf(tmp_path / "imputed.vcf"))  # auto: every record has DS
    assert geno.is_dosage
    kept, report = bb.quality_control(geno, min_dosage_r2=0.3)
    assert list(kept.markers) == ["rs1"] and report.dropped_markers == {"dosage_r2": ("rs2",)}


@pytest.mark.structural
@pytest.mark.parametrize(
    ("field", "held"), [("auto", "DS values are all whole numbers"), ("GT", "from the VCF's GT calls")]
)
def test_a_vcf_of_whole_calls_is_refused(field, held):
    """The sample's DS are all whole: read with auto, they are held as counts (is_dosage False), as GT's."""
    geno = bb.read_vcf(SAMPLE_VCF, field=field)
    assert not geno.is_dosage
    with pytest.raises(bb.InputError, match="filters imputed dosages") as info:
        bb.quality_control(geno, min_dosage_r2=0.3)
    assert str(SAMPLE_VCF) in str(info.value) and held in str(info.value)


# --- recovery ----------------------------------------------------------------------------------------------------


@pytest.mark.recovery
def test_the_filter_removes_the_poorly_imputed_markers_and_keeps_the_good_ones(rng):
    """True 0/1/2 genotypes; 'imputed' dosages of 10 of 40 markers shrunk to 0.3 of their deviation from 2p, plus
    noise (r2 about 0.09 + 0.0025 / (2p(1-p)), so about 0.1); the rest called with small noise (r2 about 1).
    --min-dosage-r2 0.3 drops exactly the 10, and without it the warning counts them."""
    n, m, poor = 400, 40, np.arange(0, 40, 4)
    p = rng.uniform(0.1, 0.5, size=m)
    truth = rng.binomial(2, p, size=(n, m)).astype(float)
    d = truth + rng.normal(0.0, 0.05, size=(n, m))
    d[:, poor] = 2 * p[poor] + 0.3 * (truth[:, poor] - 2 * p[poor]) + rng.normal(0.0, 0.05, size=(n, poor.size))
    markers = [f"m{j}" for j in range(m)]
    geno = bb.Genotypes(calls=np.clip(d, 0, 2).astype(np.float32), ids=[f"i{k}" for k in range(n)], markers=markers,
                        coding="additive")  # fmt: skip
    r2 = dosage_r2(marker_stats(geno.calls))
    assert r2[poor].max() < 0.2 and np.delete(r2, poor).min() > 0.8
    kept, report = bb.quality_control(geno, min_dosage_r2=0.3)
    assert report.dropped_markers == {"dosage_r2": tuple(markers[j] for j in poor)}
    assert kept.n_markers == m - poor.size
    assert bb.quality_control(geno)[1].n_poorly_imputed == poor.size
