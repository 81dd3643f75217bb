"""The equivalence check (eq 7): it holds when G = WW'/c, and names the reason when it does not."""

from __future__ import annotations

import numpy as np
import pytest

import bayesblup as bb
from bayesblup.analyses.equivalence import check_equivalence
from bayesblup.testing import simulate_genotypes


@pytest.fixture(scope="module")
def data():
    geno, _ = simulate_genotypes(120, 400, seed=11)
    geno, _ = bb.quality_control(geno)
    rng = np.random.default_rng(11)
    W = bb.genotype_matrix(geno, scaling="standardized-hwe").values
    g = W @ rng.normal(0, np.sqrt(0.5 / W.shape[1]), W.shape[1])
    import pandas as pd

    y = pd.Series(g + rng.normal(0, np.sqrt(0.5), g.size), index=geno.ids, name="y")
    return geno, y


def fits(geno, y, g_scaling, w_scaling, method="map", relationship=None):
    G = relationship or bb.genomic_relationship(geno, scaling=g_scaling)
    W = bb.genotype_matrix(geno, scaling=w_scaling)
    kwargs = {"method": method, "seed": 3} | ({"chains": 2, "draws": 500, "tune": 500} if method == "nuts" else {})
    return bb.MBLUP(y, W).fit(**kwargs), bb.GBLUP(y, G).fit(**kwargs)


@pytest.mark.parametrize("scaling", ["standardized", "standardized-hwe", "centered"])
@pytest.mark.exact
def test_check_equivalence__holds_with_one_scaling(data, scaling):
    """MAP: the same model in two parametrisations has the same mode; 1% covers the optimiser's tolerance."""
    mblup, gblup = fits(*data, scaling, scaling)
    report = check_equivalence(mblup, gblup)
    assert report.holds, str(report)
    assert report.premise_error < 1e-12
    assert report.correlation > 0.9999
    expected_factor = mblup.model.genotypes.scaling.denominator
    assert report.factor == pytest.approx(expected_factor)
    if scaling == "centered":
        assert report.factor != mblup.model.n_markers  # nu_p, not m (eq 14)


@pytest.mark.recovery
def test_check_equivalence__nuts_within_monte_carlo_error(data):
    mblup, gblup = fits(*data, "standardized", "standardized", method="nuts")
    report = check_equivalence(mblup, gblup)
    assert report.holds, str(report)
    assert (report.table["z"].abs() <= 4).all()
    assert "verdict: eq (7) holds." in str(report)


@pytest.mark.structural
def test_check_equivalence__names_nu_p_when_the_factor_differs(data):
    """G-BLUP on G = W*W*'/m (not /nu_p) against M-BLUP on W*: G = WW'/m, but c = nu_p."""
    geno, y = data
    W = bb.genotype_matrix(geno, scaling="centered")
    G = bb.Relationship(matrix=W.values @ W.values.T / geno.n_markers, ids=geno.ids, scaling="user")
    mblup, gblup = fits(geno, y, None, "centered", relationship=G)
    report = check_equivalence(mblup, gblup)
    assert not report.holds
    assert f"equals WW'/{geno.n_markers}" in report.reasons[0]
    assert "nu_p = 2 sum p(1-p) for centred W* (eq 14; sum p(1-p) for 0/1 presence/absence" in report.reasons[0]


@pytest.mark.structural
def test_check_equivalence__names_different_kernels(data):
    mblup, gblup = fits(*data, "centered", "standardized")
    report = check_equivalence(mblup, gblup)
    assert not report.holds
    assert "not proportional to WW'" in report.reasons[0] and "different models" in report.reasons[0]
    assert "does NOT hold" in str(report)


@pytest.mark.structural
def test_check_equivalence__same_scaling_label_but_other_genotypes(data):
    """G from half the markers, W from all, both 'standardized': the report says the labels agree and the genotypes
    behind them do not (it read "different scalings (G-BLUP: standardized, M-BLUP: standardized)"); the table keeps
    significant digits of small numbers."""
    geno, y = data
    half = bb.Genotypes.from_array(geno.calls[:, ::2], ids=geno.ids, markers=geno.markers[::2], coding=geno.coding)
    mblup, gblup = fits(geno, y, None, "standardized", relationship=bb.genomic_relationship(half))
    report = check_equivalence(mblup, gblup)
    assert not report.holds
    assert "both are labelled standardized" in report.reasons[0] and "different genotypes" in report.reasons[0]
    assert "different scalings (G-BLUP: standardized, M-BLUP: standardized)" not in str(report)
    row = report.table.iloc[0]
    expected = f"{row.gblup_mean:.4g} [{row.gblup_q05:.3g}, {row.gblup_q95:.3g}]"
    assert expected in str(report)


@pytest.mark.structural
def test_check_equivalence__raise_on_swapped_arguments(data):
    mblup, gblup = fits(*data, "standardized", "standardized")
    with pytest.raises(bb.InputError, match=r"give an M-BLUP fit first, then a G-BLUP fit"):
        check_equivalence(gblup, mblup)


@pytest.mark.structural
def test_check_equivalence__raise_on_different_records(data):
    geno, y = data
    mblup, _ = fits(geno, y, "standardized", "standardized")
    _, gblup = fits(geno, y.iloc[:-5], "standardized", "standardized")
    with pytest.raises(bb.InputError, match=r"different individuals"):
        check_equivalence(mblup, gblup)
