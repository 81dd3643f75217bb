"""Slow tier: the 90% intervals of multi-trait G-BLUP cover simulated truths, with 20% of the records missing.

Each replicate simulates its own genotypes (N = 200 individuals x M = 100 markers in Hardy-Weinberg equilibrium),
G = WW'/m (W standardized), and records from :func:`bayesblup.testing.simulate_multitrait` (phenotypic variance 1
per trait, MISSING = 20% of each trait's records missing at random, no individual without a record), fits
``GBLUP(Y, G, prior="default")`` (h2 ~ Beta(1, 1) per trait, LKJ(1) genetic and residual correlations) with
CHAINS x DRAWS = 2 x 300 draws (+ 300 tuning), and asks whether the summary's q05-q95 interval of each trait's h2
and of each r_g holds the truth. Two settings:

- 2 traits, h2 = (0.3, 0.6), residual correlation 0.2; the genetic correlation cycles through -0.5, 0 and 0.7
  over the 30 replicates (ten each);
- 3 traits, h2 = (0.3, 0.5, 0.7), r_g(t1, t2) = -0.5, r_g(t1, t3) = 0, r_g(t2, t3) = 0.7 (residual correlations
  0.2, 0 and 0.3); 24 replicates.

Why 100 markers: G then has rank 100 of 200, so half of its eigen-components carry residual variance alone and the
other half mostly genetic variance. That separates Sigma_g from Sigma_e far better than a G of 500 markers (whose
eigenvalues all lie between about 0.1 and 2.6): in three trial replicates of the 3-trait setting the r_g intervals
were 0.26-0.68 wide, against 0.35-1.26 with 500 markers, which gives the test something to detect, and the fits had
no divergences (0-38 per fit with 500 markers).

The tolerance. For one parameter the replicates are independent (each has its own seed, genotypes and records), so
the number of its intervals that cover is a sum of R independent Bernoulli trials: Binomial(R, p), p the interval's
coverage at that truth (a Poisson-binomial for the 2-trait r_g, whose truth cycles). Intervals of the same replicate
are not independent of one another (h2 and r_g come from the same records, and the traits' estimates are correlated
through Sigma_g and Sigma_e), so the pooled count over a replicate's k intervals is not Binomial(R k, 0.9): its
variance can be up to k times larger. The test therefore checks each parameter's count on its own, against the
exact binomial lower tail, and never a pooled count.

The truths are fixed values, not draws from the prior, so the 90% credible interval need not have 90% frequentist
coverage at them: averaged over the prior it would, at a given point it is only approximately nominal (the
Beta(1, 1) and LKJ(1) priors pull a posterior of sd 0.1-0.2 towards their centre, away from h2 = 0.7 or
r_g = 0.7 in particular). The band allows for that: a count fails only if it is below what a coverage of
P_FLOOR = 0.85 reaches with probability 1 - ALPHA = 0.999, i.e. it must reach the smallest c with
P(Binomial(R, 0.85) < c) <= 0.001: 19 of 30, 14 of 24. Over the 9 counts of the two settings the false alarm is
then at most 0.5% whenever every interval's true coverage is at least 0.85 (Bonferroni: 3 x 0.0008 + 6 x 0.0003),
about 1e-4 at a true 0.9.
The price is power: such counts detect a coverage of 0.5 with probability 0.9 (30) and 0.73 (24), a coverage of
0.7 with 0.16 and 0.07. The test catches gross failures (intervals of half the width they need, a sign or a
trait-order error in the correlations, missing records mishandled), not a coverage of 0.8. Coverage above 90%
(intervals too wide) is not tested. Every count and every miss is printed (``-s``). A run on 2 cores covered 27, 26
and 29 of 30 (2 traits: h2_t1, h2_t2, r_g) and 23, 22, 20, 23, 20, 19 of 24 (3 traits: h2_t1-t3, then r_g of
t1-t2, t1-t3, t2-t3): the lowest at the truths of 0.7, as expected from the priors' pull.

Why so few replicates: a multi-trait model with missing records is never taken from the compiled-model cache
(the Gibbs draw of the missing records holds U's rows), so every fit compiles its log density again. Measured
before the Gibbs draw (missing records moved by NUTS) on a quiet 2-core machine: a 2-trait fit about 4.2 s
(compile and NUTS initialisation 1.7 s, draws 2.2 s), a 3-trait fit 6.7 s (3.1 s and 3.4 s), the file 4.8
minutes. With the Gibbs draw a 3-trait fit took 5.0 s (2.3 s and 2.6 s), and the file 12.6 minutes while other
jobs shared the cores. Raise the replicates when fits get cheaper.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import stats

import bayesblup as bb
from bayesblup.testing import simulate_genotypes, simulate_multitrait

pytestmark = [pytest.mark.slow, pytest.mark.recovery]

N, M = 200, 100
CHAINS, DRAWS, TUNE = 2, 300, 300
MISSING = 0.2
P_FLOOR, ALPHA = 0.85, 0.001
R_G_CYCLE = (-0.5, 0.0, 0.7)  # the 2-trait setting's genetic correlation, replicate r takes R_G_CYCLE[r % 3]
SETTINGS = {
    "2 traits": {"h2": (0.3, 0.6), "R_e": [[1.0, 0.2], [0.2, 1.0]], "replicates": 30, "seed": 100},
    "3 traits": {
        "h2": (0.3, 0.5, 0.7),
        "R_g": [[1.0, -0.5, 0.0], [-0.5, 1.0, 0.7], [0.0, 0.7, 1.0]],
        "R_e": [[1.0, 0.2, 0.0], [0.2, 1.0, 0.3], [0.0, 0.3, 1.0]],
        "replicates": 24,
        "seed": 200,
    },
}


def min_covering(replicates: int) -> int:
    """The smallest count c with P(Binomial(replicates, P_FLOOR) < c) <= ALPHA."""
    return max(c for c in range(replicates + 1) if stats.binom.cdf(c - 1, replicates, P_FLOOR) <= ALPHA)


def _truth(setting: dict, replicate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h2 = np.asarray(setting["h2"])
    if "R_g" in setting:
        R_g = np.asarray(setting["R_g"])
    else:
        r = R_G_CYCLE[replicate % len(R_G_CYCLE)]
        R_g = np.array([[1.0, r], [r, 1.0]])
    return h2, R_g, np.asarray(setting["R_e"])


def _replicate(setting: dict, replicate: int) -> tuple[dict, dict, dict]:
    """{parameter: truth}, {parameter: (q05, q95)} and the divergences and seconds of one simulated fit."""
    h2, R_g, R_e = _truth(setting, replicate)
    rng = np.random.default_rng(setting["seed"] + replicate)
    geno, _ = simulate_genotypes(N, M, allele_freq=rng.uniform(0.1, 0.9, M), seed=rng)  # none monomorphic
    G = bb.genomic_relationship(geno, scaling="standardized")
    sd_g, sd_e = np.sqrt(h2), np.sqrt(1.0 - h2)
    Y = simulate_multitrait(
        G, Sigma_g=R_g * np.outer(sd_g, sd_g), Sigma_e=R_e * np.outer(sd_e, sd_e), mu=np.arange(h2.size),
        missing=MISSING, seed=rng,
    )  # fmt: skip
    traits = list(Y.columns)
    assert Y.isna().to_numpy().mean() == pytest.approx(MISSING, abs=0.01)
    truth = {f"h2_{t}": h for t, h in zip(traits, h2, strict=True)}
    for a in range(len(traits)):
        for b in range(a + 1, len(traits)):
            truth[f"r_g_{traits[a]}_{traits[b]}"] = R_g[a, b]
    fit = bb.GBLUP(Y, G, prior="default").fit(chains=CHAINS, draws=DRAWS, tune=TUNE, seed=replicate + 1)
    table = fit.summary()
    intervals = {p: (table.loc[p, "q05"], table.loc[p, "q95"]) for p in truth}
    t = fit.timings
    facts = {"divergences": fit.diagnostics()["divergences"], "compile": t["sampling_s"] - t["draws_s"]}
    return truth, intervals, facts | {"draws": t["draws_s"]}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_multitrait_intervals_cover_the_truth(name, caplog):
    setting = SETTINGS[name]
    replicates = setting["replicates"]
    caplog.set_level(logging.ERROR, logger="pymc")  # no progress lines per fit (restored after the test)
    covered: dict[str, list[bool]] = {}
    facts = []
    for r in range(replicates):
        truth, intervals, fact = _replicate(setting, r)
        facts.append(fact)
        for p, value in truth.items():
            lo, hi = intervals[p]
            covered.setdefault(p, []).append(bool(lo <= value <= hi))
            if not lo <= value <= hi:
                print(f"{name} replicate {r}: {p} = {value:+.2f} outside [{lo:+.3f}, {hi:+.3f}]")
    need = min_covering(replicates)
    counts = {p: sum(c) for p, c in covered.items()}
    print(
        f"{name}: 90% intervals covering the truth, of {replicates} (at least {need} needed): "
        + ", ".join(f"{p} {k}" for p, k in counts.items())
        + f"; divergences per fit {[f['divergences'] for f in facts]}; mean seconds per fit: compile+init "
        + f"{np.mean([f['compile'] for f in facts]):.1f}, draws {np.mean([f['draws'] for f in facts]):.1f}"
    )
    failing = {p: k for p, k in counts.items() if k < need}
    assert not failing, (failing, need, replicates)
