"""Wheat y1, y2, y4, y5 jointly against BGLR's ``Multitrait`` (RKHS, K = G, its default priors).

The reference runs are described in tests/data/reference/README.md: 12,000 Gibbs iterations, 2000
kept, complete records and 20% of each trait's records missing at random. With ``prior="bglr"`` each
h2, genetic variance and correlation must agree with BGLR's posterior mean within 4 combined Monte
Carlo standard errors, ``|ours - BGLR| < 4 sqrt(mcse_ours^2 + mcse_BGLR^2)``: both are estimates of the
same posterior mean, so under agreement the z-score is standard normal, and 4 leaves a false alarm
about once in 16,000 comparisons (48 here). BGLR's MC error dominates (its ESS is 190-480).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb

pytestmark = [pytest.mark.slow, pytest.mark.recovery]

TRAITS = ["y1", "y2", "y4", "y5"]


@pytest.mark.parametrize("case", ["complete", "missing"])
def test_multitrait_wheat_agrees_with_bglr(wheat, wheat_G, reference_dir, case):
    if case == "complete":
        Y = wheat.phenotypes[TRAITS]
        ref = pd.read_csv(reference_dir / "bglr_wheat_multitrait.csv").set_index("param")
    else:
        Y = pd.read_csv(reference_dir / "bglr_wheat_multitrait_missing_phenotypes.csv", index_col=0)
        Y.index = Y.index.astype(str)
        ref = pd.read_csv(reference_dir / "bglr_wheat_multitrait_missing.csv").set_index("param")
        assert np.isnan(Y.to_numpy()).mean() == pytest.approx(0.2, abs=0.01)
    fit = bb.GBLUP(Y, wheat_G, prior="bglr").fit(chains=4, draws=1000, tune=1000, seed=1)
    table = fit.summary()
    checked = [p for p in ref.index if p.startswith(("h2_", "r_g_", "r_e_", "sigma2_g_"))]
    assert len(checked) == 4 + 6 + 6 + 4
    z = {
        p: (table.loc[p, "mean"] - ref.loc[p, "mean"]) / np.hypot(table.loc[p, "mcse_mean"], ref.loc[p, "mcse"])
        for p in checked
    }
    worst = max(z, key=lambda p: abs(z[p]))
    assert abs(z[worst]) < 4, (worst, z[worst])
    diagnostics = fit.diagnostics()
    assert diagnostics["divergences"] == 0 and diagnostics["max_r_hat"] < 1.01
