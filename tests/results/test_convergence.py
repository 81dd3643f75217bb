"""The summary's R-hat and ESS (bayesblup.results.convergence) equal ArviZ's, which they replace on the fit path.

ArviZ takes about 1.5 s to import; the package computes the same three estimators in NumPy. The
oracle is ArviZ itself on draws shaped like a sampler's: autocorrelated chains, offset chains (R-hat
well above 1), ties (rounded draws), one chain, odd draw counts. Tolerance 1e-10 relative: the same
arithmetic in another order (FFT of the same padded length) differs by rounding only (measured 6e-15).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from bayesblup.results.convergence import ess_bulk, ess_tail, rhat

pytestmark = pytest.mark.exact


def _draws(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chains, n = int(rng.integers(1, 5)), int(rng.integers(4, 700))
    walk = rng.normal(size=(chains, n)).cumsum(axis=1) * rng.uniform(0, 1)  # autocorrelated
    x = walk + rng.normal(size=(chains, n))
    if seed % 3 == 0:
        x = np.round(x, 1)  # ties: average ranks
    if seed % 4 == 0:
        x[0] += 3.0  # a chain elsewhere: R-hat far above 1
    return x


@pytest.mark.parametrize("seed", range(40))
def test_equal_to_arviz(seed):
    x = _draws(seed)
    assert ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-10)
    assert ess_tail(x) == pytest.approx(float(az.ess(x, method="tail", prob=(0.05, 0.95))), rel=1e-10)
    if x.shape[0] > 1:
        assert rhat(x) == pytest.approx(float(az.rhat(x)), rel=1e-10)
    else:
        assert np.isnan(rhat(x))


def test_degenerate_draws():
    constant = np.ones((2, 10))
    assert np.isnan(rhat(constant))
    assert ess_bulk(constant) == pytest.approx(float(az.ess(constant, method="bulk")))
    assert np.isnan(ess_bulk(np.ones((2, 3))))  # fewer than 4 draws, as ArviZ
    with_nan = np.arange(20.0).reshape(2, 10)
    with_nan[1, 3] = np.nan
    assert np.isnan(rhat(with_nan)) and np.isnan(ess_bulk(with_nan))


def test_summary_does_not_import_arviz():
    """A fit's summary runs without ArviZ in the process (its import is what the module avoids)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, pandas as pd, bayesblup as bb\n"
        "from bayesblup.testing import simulate_genotypes\n"
        "geno, _ = simulate_genotypes(40, 60, seed=1)\n"
        "G = bb.genomic_relationship(geno)\n"
        "y = pd.Series(np.random.default_rng(1).normal(size=40), index=geno.ids)\n"
        "fit = bb.GBLUP(y, G).fit(chains=2, draws=50, tune=50, seed=1, cores=1)\n"
        "fit.summary(); fit.diagnostics()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('arviz', 'arviz_stats', 'arviz_plots')))\n"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
