"""G and G*: exact oracles, closed forms, and calibration on simulated HWE and pedigree data."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import exact_relationship

import bayesblup as bb
from bayesblup.testing import simulate_genotypes, simulate_offspring

SCALINGS = ["standardized", "standardized-hwe", "centered"]


# --- exact: a tiny case worked by hand ------------------------------------------------------
# M = [[0,1],[1,2],[2,0]] (0/1/2 counts). Both markers: p = 3/6 = 0.5, mean 1, sample var 1.
# W* = M - 2p = [[-1,0],[0,1],[1,-1]], W*W*' = [[1,0,-1],[0,1,-1],[-1,-1,2]].
# centered:         nu_p = 2 (0.25 + 0.25) = 1            -> G* = W*W*'
# standardized-hwe: 2p(1-p) = 0.5, G = W*W*' / (0.5 * 2)   -> the same
# standardized:     sd = 1, G = W*W*' / m = W*W*' / 2
HAND_M = np.array([[0, 1], [1, 2], [2, 0]])
HAND_WWT = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0], [-1.0, -1.0, 2.0]])
HAND_G = {"centered": HAND_WWT, "standardized-hwe": HAND_WWT, "standardized": HAND_WWT / 2}


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.exact
def test_genomic_relationship__by_hand(scaling):
    geno = bb.Genotypes.from_array(HAND_M, ids=["a", "b", "c"], coding="additive")
    G = bb.genomic_relationship(geno, scaling=scaling)
    # Tolerance: float64 rounding of a handful of operations.
    np.testing.assert_allclose(G.matrix, HAND_G[scaling], rtol=0, atol=1e-14)
    assert list(G.ids) == ["a", "b", "c"]


def _random_calls(rng, n, m, k, missing_rate):
    calls = rng.integers(0, k + 1, size=(n, m)).astype(float)
    calls[rng.random((n, m)) < missing_rate] = np.nan
    calls[0, :] = 0  # every marker polymorphic: row 0 holds 0, row 1 holds k
    calls[1, :] = k
    return calls


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("coding", ["additive", "presence-absence"])
@pytest.mark.parametrize("missing_rate", [0.0, 0.15])
@pytest.mark.exact
def test_genomic_relationship__matches_exact_oracle(rng, scaling, coding, missing_rate):
    k = 2 if coding == "additive" else 1
    calls = _random_calls(rng, 9, 13, k, missing_rate)
    geno = bb.Genotypes.from_array(calls, ids=[f"i{i}" for i in range(9)], coding=coding)
    expected = exact_relationship(calls, scaling=scaling, k=k)
    # block_size=4 forces several syrk blocks, the last one partial.
    G = bb.genomic_relationship(geno, scaling=scaling, block_size=4).matrix
    # Tolerance: the oracle is exact; the package differs by float64 rounding only (~1e-15 relative).
    np.testing.assert_allclose(G, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("scaling", ["standardized-hwe", "centered"])
@pytest.mark.exact
def test_genomic_relationship__base_population_frequencies(rng, scaling):
    calls = _random_calls(rng, 7, 11, 2, 0.1)
    base = rng.uniform(0.1, 0.9, size=11)
    geno = bb.Genotypes.from_array(calls, ids=list("abcdefg"), coding="additive")
    G = bb.genomic_relationship(geno, scaling=scaling, allele_freq=base)
    expected = exact_relationship(calls, scaling=scaling, k=2, base_p=base)
    np.testing.assert_allclose(G.matrix, expected, rtol=1e-12, atol=1e-13)
    assert G.marker_scaling.allele_freq_source == "base"
    np.testing.assert_array_equal(G.marker_scaling.allele_freq, base)


@pytest.mark.exact
def test_genomic_relationship__base_frequencies_by_marker_name(rng):
    import pandas as pd

    calls = _random_calls(rng, 6, 5, 2, 0.0)
    geno = bb.Genotypes.from_array(calls, ids=list("abcdef"), markers=list("vwxyz"))
    base = rng.uniform(0.2, 0.8, size=5)
    shuffled = pd.Series(base, index=list("vwxyz")).iloc[::-1]  # given in another order
    by_name = bb.genomic_relationship(geno, scaling="centered", allele_freq=shuffled)
    by_position = bb.genomic_relationship(geno, scaling="centered", allele_freq=base)
    np.testing.assert_array_equal(by_name.matrix, by_position.matrix)


@pytest.mark.exact
def test_genotype_matrix__is_the_factor_of_G(rng):
    calls = _random_calls(rng, 8, 10, 2, 0.1)
    geno = bb.Genotypes.from_array(calls, ids=[f"i{i}" for i in range(8)])
    for scaling in SCALINGS:
        W = bb.genotype_matrix(geno, scaling=scaling)
        G = bb.genomic_relationship(geno, scaling=scaling)
        np.testing.assert_allclose(W.values @ W.values.T / W.scaling.denominator, G.matrix, rtol=1e-12, atol=1e-14)
        assert W.values.shape == (8, 10)
        da = W.to_dataarray()
        assert da.dims == ("individual", "marker")


# --- exact: the wheat data against a direct computation as in R --------------------------------


@pytest.mark.exact
def test_wheat_standardized__equals_r_scale(wheat):
    """G = scale(X) scale(X)' / m, the G of the BGLR/rrBLUP reference runs (reference README)."""
    X = wheat.genotypes.calls.astype(float)
    W = (X - X.mean(0)) / X.std(0, ddof=1)  # R's scale(): divisor n - 1
    expected = W @ W.T / X.shape[1]
    G = bb.genomic_relationship(wheat.genotypes, scaling="standardized")
    np.testing.assert_allclose(G.matrix, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.exact
def test_wheat_standardized__mean_diagonal_is_n_minus_1_over_n(wheat):
    """Closed form: each column of W has sum of squares n - 1 (ddof=1), so trace(G) = m (n-1) / m.

    The mean diagonal is therefore (n-1)/n, not 1; the mean of the n-1 non-zero eigenvalues
    (BGLR's `mean(d)`) is exactly 1. Tolerance: float64 rounding.
    """
    G = bb.genomic_relationship(wheat.genotypes, scaling="standardized")
    n = G.n_individuals
    assert G.summary()["mean_diagonal"] == pytest.approx((n - 1) / n, abs=1e-12)
    eigenvalues = np.linalg.eigvalsh(G.matrix)
    assert eigenvalues[0] == pytest.approx(0.0, abs=1e-10)  # centring removes one rank
    assert eigenvalues[1:].mean() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.exact
def test_wheat_centered__presence_absence_uses_bernoulli_variance(wheat):
    """0/1 DArT calls: W* = X - p, nu_p = sum p(1-p) (k = 1), by direct computation."""
    X = wheat.genotypes.calls.astype(float)
    p = X.mean(0)
    expected = (X - p) @ (X - p).T / np.sum(p * (1 - p))
    G = bb.genomic_relationship(wheat.genotypes, scaling="centered")
    np.testing.assert_allclose(G.matrix, expected, rtol=1e-10, atol=1e-12)
    assert G.denominator == pytest.approx(np.sum(p * (1 - p)), rel=1e-12)


# --- numerics: blocking and precision ---------------------------------------------------------


@pytest.mark.exact
def test_relationship_matrix__block_size_does_not_change_G(rng):
    geno, _ = simulate_genotypes(50, 700, seed=rng, missing_rate=0.05)
    geno, _ = bb.quality_control(geno)
    reference = bb.genomic_relationship(geno, scaling="centered", block_size=geno.n_markers).matrix
    for block in (1, 7, 256):
        G = bb.genomic_relationship(geno, scaling="centered", block_size=block).matrix
        # Tolerance: only the order of float64 summation changes.
        np.testing.assert_allclose(G, reference, rtol=1e-12, atol=1e-13)


@pytest.mark.exact
def test_relationship_matrix__float32(rng):
    geno, _ = simulate_genotypes(80, 3000, seed=rng)
    geno, _ = bb.quality_control(geno)
    G64 = bb.genomic_relationship(geno, scaling="standardized-hwe").matrix
    G32 = bb.genomic_relationship(geno, scaling="standardized-hwe", dtype=np.float32).matrix
    assert G32.dtype == np.float32
    # Tolerance: float32 eps (6e-8) times sqrt(m) accumulation ~ 3e-6 relative to |G| ~ 1; 1e-4 is loose.
    np.testing.assert_allclose(G32, G64, rtol=0, atol=1e-4)


@pytest.mark.structural
def test_relationship_matrix__result_is_symmetric_and_c_contiguous(rng):
    geno, _ = simulate_genotypes(30, 200, seed=rng)
    G = bb.genomic_relationship(geno, scaling="standardized-hwe").matrix
    assert G.flags.c_contiguous
    np.testing.assert_array_equal(G, G.T)


# --- calibration on simulated unrelated HWE genotypes ---------------------------------------


def _hwe_moments(p):
    """Exact moments of w = x - 2p for x ~ Binomial(2, p): E[w^2] = 2pq, E[w^4]."""
    q = 1 - p
    values = np.array([0.0, 1.0, 2.0])[:, None] - 2 * p
    probs = np.stack([q**2, 2 * p * q, p**2])
    return (probs * values**2).sum(0), (probs * values**4).sum(0)


@pytest.mark.recovery
def test_centered__unrelated_hwe_with_true_frequencies(rng):
    """With the true p, E[G*_ii] = 1 and E[G*_ik] = 0 exactly; tolerances are 4 analytic sds."""
    n, m = 300, 5000
    geno, p = simulate_genotypes(n, m, seed=rng)
    G = bb.genomic_relationship(geno, scaling="centered", allele_freq=p).matrix
    nu = np.sum(2 * p * (1 - p))
    m2, m4 = _hwe_moments(p)
    sd_diag_mean = np.sqrt(np.sum(m4 - m2**2)) / nu / np.sqrt(n)  # diagonals independent across i
    sd_offdiag = np.sqrt(np.sum(m2**2)) / nu  # one off-diagonal element
    n_pairs = n * (n - 1) / 2  # off-diagonals are uncorrelated when p is the true frequency
    off = G[np.triu_indices(n, 1)]
    assert abs(np.diag(G).mean() - 1.0) < 4 * sd_diag_mean
    assert abs(off.mean()) < 4 * sd_offdiag / np.sqrt(n_pairs)
    # The spread of off-diagonals matches sum(2pq)^2 / nu^2; its estimate has relative sd ~ sqrt(2/n_pairs),
    # plus a kurtosis term; 5% is > 10 of those sds for 44,850 pairs.
    assert off.std() == pytest.approx(sd_offdiag, rel=0.05)


@pytest.mark.recovery
def test_centered__unrelated_hwe_with_sample_frequencies(rng):
    """With p from the sample, centring makes every row of G* sum to zero (closed form):
    mean off-diagonal = -trace / (n (n-1)). The mean diagonal is 1 - O(1/n): E[p(1-p)] is shrunk
    by 1/(2n); tolerance 0.01 covers that bias (0.0017 at n = 300) and Monte Carlo error (~0.001).
    """
    n, m = 300, 5000
    geno, _ = simulate_genotypes(n, m, seed=rng)
    G = bb.genomic_relationship(geno, scaling="centered")
    s = G.summary()
    np.testing.assert_allclose(G.matrix.sum(1), 0.0, atol=1e-9)
    assert s["mean_off_diagonal"] == pytest.approx(-s["mean_diagonal"] / (n - 1), abs=1e-12)
    assert abs(s["mean_diagonal"] - 1.0) < 0.01
    assert abs(s["mean_off_diagonal"]) < 0.01


# --- the pedigree scale: realised relationships of relatives ----------------------------------


@pytest.mark.recovery
def test_centered__relatives_and_inbreeding_on_the_pedigree_scale(rng):
    """G* with base-population p recovers pedigree expectations: parent-offspring and full sibs 1/2,
    half sibs 1/4, unrelated 0, and offspring of full sibs have F = 1/4.

    Markers are unlinked, so the realised relationship of a pair has sd about sqrt(sum (2pq)^2)/nu
    (~0.009 here, checked below); each expectation is an average over 20 pairs, so its sd is ~0.002
    and the tolerance 0.02 is about 10 sds.
    """
    m, pairs = 20000, 20
    founders, p = simulate_genotypes(4 * pairs, m, seed=rng)
    F = founders.calls
    dams, sires, others = F[:pairs], F[pairs : 2 * pairs], F[2 * pairs : 3 * pairs]
    sib1 = simulate_offspring(dams, sires, seed=rng)
    sib2 = simulate_offspring(dams, sires, seed=rng)
    half = simulate_offspring(dams, others, seed=rng)  # same dam as sib1, another sire
    inbred = simulate_offspring(sib1, sib2, seed=rng)  # full-sib mating
    calls = np.vstack([dams, sires, sib1, sib2, half, inbred])
    groups = ["dam", "sire", "sib1", "sib2", "half", "inbred"]
    ids = [f"{g}{i}" for g in groups for i in range(pairs)]
    geno = bb.Genotypes.from_array(calls, ids=ids, markers=founders.markers, coding="additive")
    geno, _ = bb.quality_control(geno)
    G = bb.genomic_relationship(geno, scaling="centered", allele_freq=p[np.isin(founders.markers, geno.markers)])
    block = {g: slice(k * pairs, (k + 1) * pairs) for k, g in enumerate(groups)}

    def mean_pair(a, b):
        return np.diag(G.matrix[block[a], block[b]]).mean()

    sd_pair = np.sqrt(np.sum((2 * p * (1 - p)) ** 2)) / np.sum(2 * p * (1 - p))
    assert sd_pair < 0.01
    tol = 0.02
    assert mean_pair("dam", "sib1") == pytest.approx(0.5, abs=tol)
    assert mean_pair("sire", "sib1") == pytest.approx(0.5, abs=tol)
    assert mean_pair("sib1", "sib2") == pytest.approx(0.5, abs=tol)
    assert mean_pair("sib1", "half") == pytest.approx(0.25, abs=tol)
    assert mean_pair("dam", "sire") == pytest.approx(0.0, abs=tol)
    inbreeding = G.inbreeding()
    assert inbreeding[block["sib1"]].mean() == pytest.approx(0.0, abs=tol)
    assert inbreeding[block["inbred"]].mean() == pytest.approx(0.25, abs=tol)
    a, b = geno.ids[block["sib1"]][0], geno.ids[block["sib2"]][0]
    coefficient = G.relationship_coefficient(a, b)
    i, j = G.index([a, b])
    assert coefficient == pytest.approx(G.matrix[i, j] / np.sqrt(G.matrix[i, i] * G.matrix[j, j]), rel=1e-12)
    assert G.relationship_coefficient(a, a) == pytest.approx(1.0, rel=1e-12)


# --- the Relationship object ----------------------------------------------------------------


@pytest.mark.exact
def test_relationship__summary_and_labels():
    geno = bb.Genotypes.from_array(HAND_M, ids=["a", "b", "c"], coding="additive")
    G = bb.genomic_relationship(geno, scaling="centered")
    s = G.summary()
    assert s["n_individuals"] == 3 and s["n_markers"] == 2
    assert s["mean_diagonal"] == pytest.approx(4 / 3)
    assert (s["min_off_diagonal"], s["max_off_diagonal"]) == pytest.approx((-1.0, 0.0))
    assert s["mean_off_diagonal"] == pytest.approx(-4 / 6)
    np.testing.assert_allclose(G.inbreeding(), [0.0, 0.0, 1.0])
    da = G.to_dataarray()
    assert da.dims == ("individual_0", "individual_1")
    assert list(da["individual_0"].values) == ["a", "b", "c"]


@pytest.mark.structural
def test_relationship__index_names_absent_ids():
    geno = bb.Genotypes.from_array(HAND_M, ids=["a", "b", "c"], coding="additive")
    G = bb.genomic_relationship(geno, scaling="centered")
    with pytest.raises(bb.InputError, match=r"2 IDs are not in the relationship matrix: x, y"):
        G.index(["a", "x", "y"])


# --- errors, one test per message -------------------------------------------------------------


@pytest.mark.structural
def test_genomic_relationship__raise_on_monomorphic_marker():
    geno = bb.Genotypes.from_array(np.array([[0, 1], [1, 1], [2, 1]]), ids=list("abc"), markers=["ok", "flat"])
    with pytest.raises(bb.InputError, match=r"1 markers are monomorphic.*flat.*quality_control"):
        bb.genomic_relationship(geno, scaling="centered")


@pytest.mark.structural
def test_genomic_relationship__raise_on_unknown_scaling():
    geno = bb.Genotypes.from_array(HAND_M, ids=list("abc"))
    with pytest.raises(bb.InputError, match=r"scaling must be one of standardized, standardized-hwe, centered"):
        bb.genomic_relationship(geno, scaling="vanraden")


@pytest.mark.structural
def test_genomic_relationship__raise_on_base_frequencies_with_standardized():
    geno = bb.Genotypes.from_array(HAND_M, ids=list("abc"))
    with pytest.raises(bb.InputError, match=r"allele_freq applies to 'standardized-hwe' and 'centered' only"):
        bb.genomic_relationship(geno, scaling="standardized", allele_freq=[0.5, 0.5])


@pytest.mark.structural
def test_genomic_relationship__raise_on_base_frequencies_wrong_length():
    geno = bb.Genotypes.from_array(HAND_M, ids=list("abc"))
    with pytest.raises(bb.InputError, match=r"one frequency per marker \(2\), got shape \(3,\)"):
        bb.genomic_relationship(geno, scaling="centered", allele_freq=[0.5, 0.5, 0.5])


@pytest.mark.structural
def test_genomic_relationship__raise_on_base_frequencies_out_of_range():
    geno = bb.Genotypes.from_array(HAND_M, ids=list("abc"), markers=["m1", "m2"])
    with pytest.raises(bb.InputError, match=r"must lie in \[0, 1\]; markers m2"):
        bb.genomic_relationship(geno, scaling="centered", allele_freq=[0.5, 1.5])


@pytest.mark.structural
def test_genomic_relationship__raise_on_base_frequencies_missing_marker_name():
    import pandas as pd

    geno = bb.Genotypes.from_array(HAND_M, ids=list("abc"), markers=["m1", "m2"])
    with pytest.raises(bb.InputError, match=r"no value for 1 markers: m2"):
        bb.genomic_relationship(geno, scaling="centered", allele_freq=pd.Series([0.5], index=["m1"]))


@pytest.mark.structural
def test_genomic_relationship__raise_on_fixed_base_frequency_with_hwe():
    geno = bb.Genotypes.from_array(HAND_M, ids=list("abc"), markers=["m1", "m2"])
    with pytest.raises(bb.InputError, match=r"allele_freq is 0 or 1 at 1 markers \(m1\)"):
        bb.genomic_relationship(geno, scaling="standardized-hwe", allele_freq=[0.0, 0.5])


@pytest.mark.structural
def test_relationship_matrix__raise_on_bad_dtype():
    geno = bb.Genotypes.from_array(HAND_M, ids=list("abc"))
    with pytest.raises(bb.InputError, match=r"dtype must be float64 or float32"):
        bb.genomic_relationship(geno, dtype=np.int64)


@pytest.mark.structural
def test_from_matrix__a_users_own_matrix_fits_as_the_package_s_own():
    """Relationship.from_matrix(G, ids): scaling 'user', and the same model as the G it was given (the same marginal
    log-density at a point, to rounding); bad matrices refused in one line naming what is wrong."""
    import pandas as pd

    from bayesblup.testing import simulate_genotypes

    geno, _ = simulate_genotypes(30, 60, seed=8)
    G = bb.genomic_relationship(geno)
    own = bb.Relationship.from_matrix(G.matrix.tolist(), list(geno.ids))
    assert own.scaling == "user" and own.n_markers is None and list(own.ids) == list(G.ids)
    y = pd.Series(np.random.default_rng(8).normal(size=30), index=geno.ids, name="y")
    point = {"mu": 0.1, "h2_logodds__": -0.3, "sigma2_p_log__": 0.2}
    a, b = (bb.GBLUP(y, K).model.compile_logp()(point) for K in (G, own))
    assert a == pytest.approx(b, rel=1e-12)
    bad = G.matrix.copy()
    bad[0, 1] += 0.1
    for matrix, ids, message in [
        (bad, list(geno.ids), "not symmetric"),
        (G.matrix, list(geno.ids)[:-1], "29 IDs given for a 30 x 30"),
        (G.matrix[:, :-1], list(geno.ids), "must be square"),
        (G.matrix, ["a"] * 30, "IDs repeat"),
    ]:
        with pytest.raises(bb.InputError, match=message):
            bb.Relationship.from_matrix(matrix, ids)
