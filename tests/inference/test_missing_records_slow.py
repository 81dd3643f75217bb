"""Slow tier: the Gibbs path of fit() and NUTS on every unknown give the same posterior (missing records).

Two traits (SIGMA_G, SIGMA_E below), 40 individuals, 25% of the records missing. The Gibbs path (an exact draw of the
missing records beside NUTS, bayesblup.inference.missing) and ``pm.sample`` on the model as it is (NUTS moves the
missing records too) each run 4 chains x 1000 draws (+ 1000 tuning). Posterior means of h2 and r_g are compared in
units of the combined Monte Carlo error (|z| < 4, the sd of a mean from its bulk ESS): a wrong conditional in the
Gibbs draw (a sign, the wrong block of Sigma_e, a stale shift) moves them by many such units.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesblup as bb
from bayesblup.testing import simulate_genotypes, simulate_multitrait

pytestmark = [pytest.mark.slow, pytest.mark.recovery]

SIGMA_G = np.array([[0.6, 0.35], [0.35, 0.5]])
SIGMA_E = np.array([[0.5, 0.1], [0.1, 0.7]])


def test_the_gibbs_path_agrees_with_nuts_on_every_unknown():
    import arviz as az
    import pymc as pm

    rng = np.random.default_rng(16)
    geno, _ = simulate_genotypes(40, 60, allele_freq=rng.uniform(0.1, 0.9, 60), seed=rng)
    G = bb.genomic_relationship(geno)
    Y = simulate_multitrait(G, Sigma_g=SIGMA_G, Sigma_e=SIGMA_E, mu=[1.0, -2.0], missing=0.25, seed=5)
    gibbs = bb.GBLUP(Y, G).fit(chains=4, draws=1000, tune=1000, seed=11)
    assert "Gibbs" in gibbs.settings["missing_records"]
    joint = pm.sample(
        model=bb.GBLUP(Y, G).model, chains=4, draws=1000, tune=1000, random_seed=12, progressbar=False,
        target_accept=0.9, compute_convergence_checks=False,
    )  # fmt: skip
    names = [v for v in gibbs.datatree.posterior.data_vars if v.startswith(("h2_", "r_g_"))]
    assert len(names) == 3
    for name in names:
        a = gibbs.datatree.posterior[name].values.ravel()
        b = joint.posterior[name].values.ravel()
        ess_a = float(az.ess(gibbs.datatree, var_names=[name])[name])
        ess_b = float(az.ess(joint, var_names=[name])[name])
        se = np.sqrt(a.var() / ess_a + b.var() / ess_b)
        assert abs(a.mean() - b.mean()) < 4 * se, name
