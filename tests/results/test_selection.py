"""fit.top: the best candidates by posterior mean with P(in the top fraction), from joint draws of g.

The draws themselves are checked against the dense Gaussian conditional in tests/inference/test_joint_draws.py;
here: the top's size and the identity that the probabilities sum to it, ties, seeds, the table's shape, every
route to the draws (one kernel, several, latent form, MAP), the refusals, and recovery of a simulated truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.results.selection import COLUMNS, top_count, top_counts
from bayesblup.testing import simulate_genotypes, simulate_records

N = 60


@pytest.fixture(scope="module")
def data():
    geno, _ = simulate_genotypes(N, 200, seed=31)
    geno, _ = bb.quality_control(geno)
    W = bb.genotype_matrix(geno, scaling="standardized")
    sim = simulate_records(W.values, geno.ids, h2=0.6, unphenotyped=0.25, seed=31)
    G = bb.genomic_relationship(geno, scaling="standardized")
    return geno, G, W, sim


@pytest.fixture(scope="module")
def fit(data):
    _, G, _, sim = data
    return bb.GBLUP(sim.table["y"], G).fit(method="quadrature", seed=3)


# --- the top's size, the identity, ties ---------------------------------------------------------------


@pytest.mark.exact
def test_top_count_is_the_ceiling_of_fraction_times_candidates():
    assert top_count(30, 0.1) == 3  # 0.1 x 30 is 3.0000000000000004 in floating point
    assert top_count(95, 0.1) == 10 and top_count(100, 0.1) == 10 and top_count(101, 0.1) == 11
    assert top_count(5, 0.01) == 1 and top_count(10, 0.99) == 10 and top_count(7, 0.5) == 4


@pytest.mark.exact
def test_probabilities_sum_to_the_top_size_draw_by_draw(fit):
    """Each draw puts exactly t candidates in the top: the counts sum to t D, so the p_top sum to t (rounding)."""
    for candidates in ("all", "unphenotyped", list(fit.genetic_values["id"][::3])):
        table = fit.top(10, fraction=0.15, candidates=candidates)
        full = fit.top(table.attrs["n_candidates"], fraction=0.15, candidates=candidates)
        D, t = full.attrs["n_draws"], full.attrs["n_top"]
        counts = full["p_top"].to_numpy() * D
        np.testing.assert_allclose(counts, np.round(counts), rtol=0, atol=1e-9)  # whole numbers of draws
        assert int(np.round(counts).sum()) == t * D
        assert t == top_count(full.attrs["n_candidates"], 0.15)
        pd.testing.assert_frame_equal(table, full.head(10))  # the same seed: the same draws whatever n


@pytest.mark.exact
def test_a_tie_within_a_draw_goes_to_the_candidate_listed_first():
    draws = np.array([[1.0, 2.0, 2.0, 0.0], [3.0, 3.0, 3.0, 3.0], [0.0, 1.0, 5.0, 1.0]])
    counts, total = top_counts([draws], np.array([3, 1, 2, 0]), 2)  # candidates in the order 3, 1, 2, 0
    # draw 1: values 0, 2, 2, 1 -> 1 and 2; draw 2: all tied -> 3 and 1; draw 3: 1, 1, 5, 0 -> 2, then 3 before 1
    assert total == 3 and counts.tolist() == [2, 2, 2, 0]


@pytest.mark.exact
def test_the_same_seed_gives_the_same_bits_and_the_fit_seed_is_the_default(fit):
    a = fit.top(5, seed=11)
    pd.testing.assert_frame_equal(a, fit.top(5, seed=11))
    pd.testing.assert_frame_equal(fit.top(5), fit.top(5, seed=fit.settings["seed"]))
    assert not np.array_equal(a["p_top"], fit.top(5, seed=12)["p_top"])


# --- the table -------------------------------------------------------------------------------------------


@pytest.mark.structural
def test_the_table_is_the_best_by_mean_with_the_genetic_values_columns(fit):
    table = fit.top(12, fraction=0.2)
    assert list(table.columns) == COLUMNS and table["rank"].tolist() == list(range(1, 13))
    gv = fit.genetic_values.set_index("id")
    best = gv["mean"].sort_values(ascending=False).index[:12]
    assert table["id"].tolist() == list(best)
    for column in ("mean", "sd", "reliability", "phenotyped"):
        assert table[column].tolist() == gv.loc[best, column].tolist()
    assert table["p_top"].between(0, 1).all()
    attrs = table.attrs
    assert (attrs["fraction"], attrs["n_candidates"], attrs["n_top"]) == (0.2, N, 12)
    assert attrs["n_draws"] == 1000 and attrs["n_theta"] == 1000 and not attrs["conditional_on_mode"]
    assert attrs["mc_sd_max"] == pytest.approx(0.5 / np.sqrt(1000))
    only = fit.top(3, candidates="unphenotyped")
    assert not only["phenotyped"].any() and only.attrs["n_candidates"] == (~gv["phenotyped"]).sum()


@pytest.mark.structural
def test_map_on_the_low_rank_path_and_several_kernels_give_draws_of_g(data):
    geno, _, _, sim = data
    y = sim.table["y"]
    low = bb.GBLUP(y, bb.genotype_matrix(geno.select(markers=np.arange(30)))).fit(method="map", seed=1)
    table = low.top(5)
    assert low.model.path == "low-rank" and table["p_top"].sum() > 0
    assert table.attrs["n_theta"] == 1 and table.attrs["n_draws"] == 1000 and table.attrs["conditional_on_mode"]
    sets = bb.relationships_by_set(geno, {"feature": list(geno.markers[::10])})
    several = bb.MultiGBLUP(y, sets).fit(method="map", seed=1)
    full = several.top(N, fraction=0.2, draws=300)
    assert list(full.columns) == COLUMNS and full.attrs["n_draws"] == 300
    assert round(full["p_top"].sum() * 300) == top_count(N, 0.2) * 300


@pytest.mark.exact
def test_the_latent_form_counts_the_samplers_own_draws_of_g(data, mock_pymc_sample):
    """The latent form's p_top is the count, over its posterior draws of g (evenly thinned), of the top t."""
    _, G, _, sim = data
    fit = bb.GBLUP(sim.table["y"], G, form="latent").fit(chains=2, draws=7, tune=0, seed=1)
    table = fit.top(N, fraction=0.1, draws=5)
    g = np.asarray(fit.datatree["posterior"]["g"].values).reshape(14, N)[[0, 3, 6, 10, 13]]  # 5 of 14, even
    ids = fit.genetic_values["id"].to_numpy()
    t = top_count(N, 0.1)
    expected = {i: 0.0 for i in ids}
    for row in g:
        for k in np.argsort(-row, kind="stable")[:t]:
            expected[ids[k]] += 1 / 5
    assert table.attrs["n_draws"] == 5
    np.testing.assert_allclose(table["p_top"], [expected[i] for i in table["id"]], rtol=0, atol=1e-12)


# --- refusals --------------------------------------------------------------------------------------------


@pytest.mark.structural
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "must be an integer of at least 1, got 0"),
        ({"n": N + 1}, f"the fit has {N}: give at most {N}"),
        ({"n": 5, "candidates": "unphenotyped"}, None),
        ({"n": 16, "candidates": "unphenotyped"}, "the fit has 15: give at most 15"),
        ({"n": 5, "fraction": 0.0}, "must lie strictly between 0 and 1, got 0.0"),
        ({"n": 5, "fraction": 1.0}, "must lie strictly between 0 and 1, got 1.0"),
        ({"n": 5, "candidates": "best"}, "candidates is 'all', 'unphenotyped' or a list of individual IDs"),
        ({"n": 1, "candidates": ["ind1", "nobody"]}, "1 candidates are not individuals of the fit: nobody"),
        ({"n": 1, "candidates": ["ind1", "ind1"]}, "candidates name ind1 more than once"),
        ({"n": 5, "draws": 0}, "draws must be an integer of at least 1"),
    ],
)
def test_bad_options_are_refused(fit, kwargs, message):
    n = kwargs.pop("n")
    if message is None:
        assert len(fit.top(n, **kwargs)) == n
        return
    with pytest.raises(bb.InputError, match=message.replace("(", r"\(")):
        fit.top(n, **kwargs)


@pytest.mark.structural
def test_what_cannot_be_ranked_yet_is_refused(data, fit, tmp_path):
    geno, G, _, sim = data
    fit.save(tmp_path / "fit")
    with pytest.raises(bb.InputError, match=r"fit\.top\) needs the model: this fit was loaded from files"):
        bb.load_fit(tmp_path / "fit").top(5)
    back = bb.load_fit(tmp_path / "fit", model=bb.GBLUP(sim.table["y"], G))
    pd.testing.assert_frame_equal(back.top(5), fit.top(5))  # with its model, a loaded fit ranks as the fresh one
    everyone = sim.table["y"].reindex(geno.ids).fillna(0.0)
    with pytest.raises(bb.InputError, match="every individual of this fit has a record"):
        bb.results.selection.check_top(bb.GBLUP(everyone, G), 5, 0.1, method="nuts", candidates="unphenotyped")
    noise = np.random.default_rng(1).normal(size=len(sim.table))
    two = pd.DataFrame({"a": sim.table["y"], "b": sim.table["y"] * 0.5 + noise})
    multi = bb.GBLUP(two, G)
    with pytest.raises(bb.InputError, match="not available for several traits yet"):
        bb.results.selection.check_top(multi, 5, 0.1, method="nuts")
    binary = bb.GBLUP((sim.table["y"] > sim.table["y"].median()).astype(float), G, family="binary")
    with pytest.raises(bb.InputError, match="the Laplace mode of a binary or ordinal trait"):
        bb.results.selection.check_top(binary, 5, 0.1, method="map")


# --- recovery --------------------------------------------------------------------------------------------


@pytest.mark.recovery
def test_p_top_is_calibrated_against_a_simulated_truth():
    """1000 individuals (200 without a record), h2 = 0.6, the low-rank path (500 markers), quadrature: the truly
    best 10% (by the simulated g) against p_top. If p_top is calibrated, candidates with p_top >= 0.5 are in the
    true top at the rate of their mean p_top (about 0.7 over about 60 of them): within 4 sd of the Bernoulli
    sums, sqrt(sum p (1 - p)) / count (about 0.055), a false alarm below 1e-4 (normal approximation); the Monte
    Carlo error of p_top (at most 0.016 each, independent draws) adds under 0.003 to a group's mean. Those with
    p_top < 0.05 (about 700, mean 0.01) are in the true top at a rate below 0.05 (a calibrated rate of 0.01 gives
    about 7 of them; 35 would be 10 Poisson sd out). The 100 best by posterior mean hold as many truly-top
    individuals as the sum of their p_top, within 4 sd."""
    geno, _ = simulate_genotypes(1000, 500, seed=1)
    geno, _ = bb.quality_control(geno)
    W = bb.genotype_matrix(geno, scaling="standardized")
    sim = simulate_records(W.values, geno.ids, h2=0.6, unphenotyped=0.2, seed=1)
    fit = bb.GBLUP(sim.table["y"], W).fit(method="quadrature", seed=1)
    assert fit.model.path == "low-rank"
    table = fit.top(1000, fraction=0.1)
    t = table.attrs["n_top"]
    truth = sim.genetic_values[table["id"]].to_numpy()
    in_top = truth >= np.sort(truth)[-t]
    p = table["p_top"].to_numpy()

    def within(group):
        sd = np.sqrt((p[group] * (1 - p[group])).sum()) / group.sum()
        return abs(in_top[group].mean() - p[group].mean()) <= 4 * sd + 0.003

    high, low = p >= 0.5, p < 0.05
    assert high.sum() >= 30 and low.sum() >= 500
    assert within(high) and in_top[high].mean() > 0.5
    assert in_top[low].mean() < 0.05
    best = np.arange(1000) < t
    assert abs(in_top[best].sum() - p[best].sum()) <= 4 * np.sqrt((p[best] * (1 - p[best])).sum())
