"""Simulation-based calibration, fast tier: ranks, the chi-square helper, smoke runs and seeding.

The statistical checks (>= 200 replications, coverage over 300 simulations) are in
test_calibration_slow.py; here every assertion is exact or structural.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesblup as bb
from bayesblup.analyses.calibration import rank_uniformity, thinned_rank
from bayesblup.testing import simulate_genotypes

QUICK = {"chains": 2, "draws": 100, "tune": 100, "draws_per_rank": 19}  # thin 10; L + 1 = 20


@pytest.fixture(scope="module")
def kernels():
    geno, _ = simulate_genotypes(30, 200, seed=3)
    return bb.genomic_relationship(geno), bb.genotype_matrix(geno)


def variance_prior(kernel_name: str, scale: float = 1.0) -> dict:
    return {
        "mu": bb.Prior("Normal", mu=1.0, sigma=1.0),
        kernel_name: bb.Prior("LogNormal", mu=float(np.log(scale)), sigma=1.0),
        "sigma2_e": bb.Prior("LogNormal", mu=0.0, sigma=1.0),
    }


H2_PRIOR = {
    "mu": bb.Prior("Normal", mu=0.0, sigma=1.0),
    "h2": bb.Prior("Beta", alpha=2.0, beta=2.0),
    "sigma2_p": bb.Prior("LogNormal", mu=0.0, sigma=0.5),
}


# --- ranks and the chi-square helper ---------------------------------------------------------------


@pytest.mark.exact
def test_thinned_rank__counts_the_kept_draws_below_the_truth():
    draws = np.array([[0.0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])  # pooled chain after chain: 0..9
    assert thinned_rank(5.0, draws, 5) == 3  # thin 2 keeps 0, 2, 4, 6, 8
    assert thinned_rank(4.5, draws, 10) == 5  # every draw
    assert thinned_rank(-1.0, draws, 5) == 0 and thinned_rank(100.0, draws, 5) == 5  # the two ends: 0 and L
    assert thinned_rank(5.0, draws, 3) == 2  # thin 3 keeps 0, 3, 6 (the first L)
    with pytest.raises(bb.InputError, match="draws_per_rank"):
        thinned_rank(0.0, draws, 11)


@pytest.mark.exact
def test_rank_uniformity__exactly_uniform_ranks_give_chi2_zero():
    ranks = np.tile(np.arange(100), 3)  # every rank 0..99 three times
    out = rank_uniformity(ranks, 99, bins=10)
    assert out["chi2"] == 0.0 and out["p_value"] == 1.0 and out["df"] == 9
    assert out["histogram"] == [30] * 10


@pytest.mark.exact
def test_rank_uniformity__matches_the_hand_computed_statistic():
    ranks = np.array([0, 1, 2, 3, 4, 5, 6, 7] + [0, 1] * 2)  # L = 7, bins of 2 ranks: counts 6, 2, 2, 2
    out = rank_uniformity(ranks, 7, bins=4)
    assert out["histogram"] == [6, 2, 2, 2]
    expected = 3.0  # 12 ranks / 4 bins
    chi2 = ((6 - expected) ** 2 + 3 * (2 - expected) ** 2) / expected
    assert out["chi2"] == pytest.approx(chi2, rel=1e-12)
    import scipy.stats as st

    assert out["p_value"] == pytest.approx(st.chi2.sf(chi2, 3), rel=1e-12)


@pytest.mark.exact
def test_rank_uniformity__grossly_non_uniform_ranks_are_rejected():
    assert rank_uniformity(np.zeros(200, dtype=int), 99, bins=10)["p_value"] < 1e-100  # all in the first bin
    u_shaped = np.r_[np.zeros(100, dtype=int), np.full(100, 99)]  # an over-confident posterior
    assert rank_uniformity(u_shaped, 99, bins=10)["p_value"] < 1e-100


@pytest.mark.parametrize(
    ("ranks", "bins", "message"),
    [
        ([0, 1, 2], 3, "divide L"),
        ([0, 1, 100], 10, "integers in 0..99"),
        ([0.5, 1.0], 10, "integers"),
        ([], 10, "non-empty"),
    ],
)
@pytest.mark.structural
def test_rank_uniformity__refuses_bad_input(ranks, bins, message):
    with pytest.raises(bb.InputError, match=message):
        rank_uniformity(np.asarray(ranks), 99, bins=bins)


# --- smoke runs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("which", "kernel_name"), [(0, "sigma2_g"), (1, "sigma2_b")])
@pytest.mark.structural
def test_sbc__ten_replications_of_each_model(kernels, which, kernel_name):
    kernel = kernels[which]
    scale = 1.0 if which == 0 else 1.0 / kernel.values.shape[1]  # sigma2_b is per marker: 1/m of sigma2_g
    sbc = bb.simulation_based_calibration(kernel, variance_prior(kernel_name, scale), replications=10, seed=4, **QUICK)
    L = QUICK["draws_per_rank"]
    assert sbc.draws_per_rank == L and sbc.settings["thin"] == 10 and sbc.replications == 10
    assert list(sbc.ranks.columns) == [kernel_name, "sigma2_e", "h2", "mu"]
    assert sbc.ranks.to_numpy().min() >= 0 and sbc.ranks.to_numpy().max() <= L
    c = 1.0 if which == 0 else kernel.scaling.denominator
    truth = sbc.truth
    np.testing.assert_allclose(truth["h2"], c * truth[kernel_name] / (c * truth[kernel_name] + truth["sigma2_e"]))
    assert len(sbc.intervals) == 10 * 4 * 2  # replications x parameters x levels (0.5, 0.9)
    wide, narrow = (sbc.intervals[sbc.intervals["level"] == level] for level in (0.9, 0.5))
    assert (wide["lower"].to_numpy() <= narrow["lower"].to_numpy()).all()
    assert (wide["upper"].to_numpy() >= narrow["upper"].to_numpy()).all()
    assert list(sbc.coverage(0.9)["n"]) == [10] * 4
    table = sbc.uniformity()  # 10 replications: 2 bins (at least 5 expected per bin)
    assert list(table.index) == list(sbc.ranks.columns) and (table["df"] == 1).all()
    assert all(sum(h) == 10 for h in table["histogram"])
    assert set(sbc.diagnostics.columns) == {"seed", "divergences", "min_ess_bulk", "max_r_hat"}
    lines = sbc.lines()
    assert lines[0].startswith(f"{'gblup' if which == 0 else 'mblup'}: 10 replications")
    assert len(lines) == 2 + 4


@pytest.mark.exact
def test_sbc__is_bit_reproducible_and_replications_do_not_depend_on_their_number(kernels):
    G = kernels[0]
    prior = variance_prior("sigma2_g")
    a = bb.simulation_based_calibration(G, prior, replications=3, seed=11, **QUICK)
    b = bb.simulation_based_calibration(G, prior, replications=3, seed=11, **QUICK)
    first_two = bb.simulation_based_calibration(G, prior, replications=2, seed=11, **QUICK)
    other = bb.simulation_based_calibration(G, prior, replications=2, seed=12, **QUICK)
    assert a.ranks.equals(b.ranks) and a.truth.equals(b.truth) and a.intervals.equals(b.intervals)
    assert a.diagnostics.equals(b.diagnostics)
    assert a.truth.iloc[:2].equals(first_two.truth) and a.ranks.iloc[:2].equals(first_two.ranks)
    assert not np.allclose(a.truth.iloc[:2], other.truth)


@pytest.mark.structural
def test_sbc__the_h2_parameterisation_and_interval_coverage(kernels):
    W = kernels[1]
    table = bb.interval_coverage(W, H2_PRIOR, simulations=3, parameters=("h2", "sigma2_b"), seed=2, chains=2, draws=100)
    assert list(table.columns) == ["replication", "parameter", "level", "truth", "lower", "upper", "covered"]
    assert len(table) == 6 and set(table["parameter"]) == {"h2", "sigma2_b"} and (table["level"] == 0.9).all()
    assert ((table["lower"] <= table["truth"]) & (table["truth"] <= table["upper"]) == table["covered"]).all()
    h2 = table[table["parameter"] == "h2"]
    assert h2["truth"].between(0, 1).all()


@pytest.mark.exact
def test_sbc__intervals_are_the_summary_quantiles(kernels, monkeypatch):
    """The 90% interval recorded per replication is the fit's own q05, q95 (summary())."""
    from bayesblup.fitting import BLUPModel

    seen = []
    fit = BLUPModel.fit

    def spy(self, **options):
        seen.append(fit(self, **options))
        return seen[-1]

    monkeypatch.setattr(BLUPModel, "fit", spy)
    table = bb.interval_coverage(kernels[0], variance_prior("sigma2_g"), simulations=1, seed=5, chains=2, draws=100)
    summary = seen[0].summary().loc["h2"]
    assert table.loc[0, ["lower", "upper"]].tolist() == pytest.approx([summary["q05"], summary["q95"]], rel=1e-12)


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ("default", "fixed prior"),
        ({"sigma2_g": bb.Prior("LogNormal", mu=0.0, sigma=1.0), "sigma2_e": bb.Prior("LogNormal", mu=0.0, sigma=1.0)},
         "mu, sigma2_g, sigma2_e"),
        ({"h2": bb.Prior("Beta", alpha=1.0, beta=1.0), "mu": bb.Prior("Normal", mu=0.0, sigma=1.0)},
         "mu, h2, sigma2_p"),
    ],
)  # fmt: skip
@pytest.mark.structural
def test_sbc__refuses_a_data_dependent_or_incomplete_prior(kernels, prior, message):
    with pytest.raises(bb.InputError, match=message):
        bb.simulation_based_calibration(kernels[0], prior, replications=1)


@pytest.mark.structural
def test_sbc__refuses_other_kernels_and_unknown_parameters(kernels):
    with pytest.raises(bb.InputError, match="Relationship"):
        bb.simulation_based_calibration(kernels[0].matrix, variance_prior("sigma2_g"), replications=1)
    with pytest.raises(bb.InputError, match="not among"):
        bb.interval_coverage(kernels[0], variance_prior("sigma2_g"), parameters=("sigma2_b",))
