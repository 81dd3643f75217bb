"""Slow tier: several marker sets at a realistic size. A feature set of 200 markers carries h2 = 0.3 and a
background of 10,000 markers h2 = 0.1: recovery, enrichment, and cross-validated prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.testing import simulate_genotypes

pytestmark = [pytest.mark.slow, pytest.mark.recovery]

N, M_FEATURE, M_REST = 1000, 200, 10_000
TRUTH = {"feature": 0.3, "rest": 0.1}


def _simulate(seed: int):
    """Unrelated HWE individuals; g_feature (effects on the 200 feature markers) and g_rest (effects on every
    background marker) scaled to variances 0.3 and 0.1 exactly in the sample, e ~ N(0, 0.6)."""
    rng = np.random.default_rng(seed)
    m = M_FEATURE + M_REST
    geno, _ = simulate_genotypes(N, m, allele_freq=rng.uniform(0.05, 0.95, m), seed=seed + 1)
    geno, _ = bb.quality_control(geno)
    W = bb.genotype_matrix(geno, scaling="standardized").values
    cols = {"feature": np.arange(M_FEATURE), "rest": np.arange(M_FEATURE, geno.n_markers)}
    y = rng.normal(0.0, np.sqrt(0.6), size=N) + 5.0
    for name, c in cols.items():
        g = W[:, c] @ rng.normal(size=c.size)
        y += (g - g.mean()) / g.std() * np.sqrt(TRUTH[name])
    return geno, pd.Series(y, index=geno.ids), {"feature": list(geno.markers[cols["feature"]])}


def test_recovery_of_partitioned_h2_and_enrichment():
    """GFBLUP (Woodbury path) on three simulations recovers h2_feature = 0.3 and h2_rest = 0.1.

    Coverage: each 90% interval misses its truth with probability 0.1 when calibrated, so of the 6
    intervals (3 seeds x 2 components) at least 4 must cover (a calibrated method fails this with
    probability 1.6%; the issue asks that both are covered, and the count is printed). The feature
    set's variance per marker is credibly larger than the background's in every run (P > 0.95; the
    truth is 0.3/200 against 0.1/10,000, 150 times larger), with no divergences and R-hat < 1.03.

    Why 1.03 and not 1.01: with about 500 effective draws over 8 split half-chains (~65 each), the
    chain means of a perfectly mixed run scatter so that R-hat - 1 ~ (chi2_7 / 7 - 1) / (2 * 65), an sd
    of about 0.004 per parameter; the maximum over the variance components then passes 1.01 by chance
    in a noticeable share of runs (CI saw 1.0115 for sigma2_e with bulk ESS 525). 1.03 is 7 sd away,
    while chains that settle in different places give R-hat far above it."""
    covered = []
    for seed in (11, 12, 13):
        geno, y, sets = _simulate(seed)
        model = bb.MultiGBLUP(y, bb.relationships_by_set(geno, sets), prior="default")
        assert model.path == "woodbury" and model.background == "rest"
        fit = model.fit(chains=4, draws=500, tune=500, seed=seed)
        table = fit.summary()
        for name, truth in TRUTH.items():
            row = table.loc[f"h2_{name}"]
            covered.append(bool(row["q05"] <= truth <= row["q95"]))
            print(f"seed {seed} h2_{name}: {row['mean']:.3f} [{row['q05']:.3f}, {row['q95']:.3f}] (truth {truth})")
        assert fit.enrichment().loc["feature", "prob_more_per_marker"] > 0.95
        d = fit.diagnostics()
        assert d["divergences"] == 0 and d["max_r_hat"] < 1.03, d
    print(f"90% intervals covering the truth: {sum(covered)} of {len(covered)}")
    assert sum(covered) >= 4, covered


def test_cross_validated_prediction_gfblup_beats_gblup(capsys):
    """5-fold CV on one simulation: GFBLUP's mean predictive correlation exceeds single-kernel G-BLUP's.

    Expected gap (Daetwyler's approximation, n_train = 800): G-BLUP spreads the feature's signal over
    10,200 markers, r(y, g_hat) ~ 0.1; GFBLUP estimates the 200-marker term with r(g_f, g_f_hat) ~ 0.7,
    r(y, g_hat) ~ 0.4. Both numbers are printed (and recorded in docs/models.md)."""
    geno, y, sets = _simulate(21)
    folds = pd.Series(np.arange(N) % 5, index=y.index)
    G_sets = bb.relationships_by_set(geno, sets)
    G = bb.genomic_relationship(geno)
    options = {"chains": 2, "draws": 300, "tune": 300, "seed": 3}
    gf = bb.cross_validate(lambda t: bb.MultiGBLUP(t, G_sets), y, folds, **options)
    gb = bb.cross_validate(lambda t: bb.GBLUP(t, G), y, folds, **options)
    with capsys.disabled():
        print(f"\nCV (5 folds, n = {N}): GFBLUP {gf.mean_correlation:.3f}, G-BLUP {gb.mean_correlation:.3f}")
    assert gf.mean_correlation > gb.mean_correlation
    # fold by fold too: the gap is several times the fold-to-fold noise (sd of a correlation at n = 200 ~ 0.07)
    assert (gf.folds["correlation"].to_numpy() > gb.folds["correlation"].to_numpy()).sum() >= 4
