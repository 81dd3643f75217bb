"""REML point estimates (bayesblup.analyses.reml): against rrBLUP on wheat and against a dense REML oracle.

Tolerances: rrBLUP's ``REML_tight_G`` was optimised to 1e-16 (tests/data/reference/README.md), so the
two maximisers agree to the optimiser's tolerance (1e-6 relative is far above it and far below any
meaningful difference). The dense oracle maximises the textbook restricted likelihood
``-1/2 [log|V| + log|X'V^-1 X| + y'Py]`` over (log sigma2_g, log sigma2_e) with a general-purpose
optimiser, so agreement to 1e-5 checks the EMMA reduction, the projection and the profiling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.errors import InputError
from bayesblup.testing import simulate_genotypes


def _rrblup(reference_dir, method: str, param: str) -> float:
    table = pd.read_csv(reference_dir / "rrblup_wheat.csv")
    return float(table.set_index(["method", "param"]).loc[(method, param), "value"])


@pytest.mark.exact
def test_reml_on_wheat_matches_rrblup(wheat, wheat_G, reference_dir):
    est = bb.reml(wheat.phenotypes["y1"], wheat_G)
    assert est.sigma2_g == pytest.approx(_rrblup(reference_dir, "REML_tight_G", "sg2"), rel=1e-6)
    assert est.sigma2_e == pytest.approx(_rrblup(reference_dir, "REML_tight_G", "se2"), rel=1e-6)
    assert est.h2 == pytest.approx(_rrblup(reference_dir, "REML_tight_G", "h2"), rel=1e-6)
    # the restricted log-likelihood at the maximum, in rrBLUP's convention (omits log det(X'X) / 2)
    ll = _rrblup(reference_dir, "REML_tight_G", "LL(rrBLUP convention)")
    assert est.loglik == pytest.approx(ll, abs=1e-6)
    assert est.n == 599 and list(est.beta.index) == ["mu"]
    assert set(est.to_dict()) == {"sigma2_g", "sigma2_e", "h2", "beta", "loglik", "n"}


def _dense_reml(y: np.ndarray, K: np.ndarray, X: np.ndarray) -> tuple[float, float, np.ndarray]:
    from scipy.optimize import minimize

    def negative(theta):
        sg, se = np.exp(theta)
        V = sg * K + se * np.eye(y.size)
        Vi = np.linalg.inv(V)
        XtViX = X.T @ Vi @ X
        P = Vi - Vi @ X @ np.linalg.solve(XtViX, X.T @ Vi)
        return 0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + y @ P @ y)

    start = np.log([np.var(y) / 2, np.var(y) / 2])
    opt = minimize(negative, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
    sg, se = np.exp(opt.x)
    V = sg * K + se * np.eye(y.size)
    beta = np.linalg.solve(X.T @ np.linalg.solve(V, X), X.T @ np.linalg.solve(V, y))
    return float(sg), float(se), beta


@pytest.mark.exact
def test_reml_with_fixed_effects_matches_dense_oracle():
    rng = np.random.default_rng(7)
    geno, _ = simulate_genotypes(120, 300, allele_freq=rng.uniform(0.1, 0.9, 300), seed=rng)
    G = bb.genomic_relationship(geno)
    W = bb.genotype_matrix(geno).values
    sex = rng.integers(0, 2, 120).astype(float)
    age = rng.normal(size=120)
    y = 3.0 + 0.8 * sex - 0.5 * age + W @ rng.normal(0, np.sqrt(0.6 / 300), 300) + rng.normal(0, 0.7, 120)
    pheno = pd.DataFrame({"y": y, "sex": sex, "age": age}, index=geno.ids)
    est = bb.reml(pheno["y"], G, fixed=pheno[["sex", "age"]])
    X = np.column_stack([np.ones(120), sex, age])
    sg, se, beta = _dense_reml(y, G.matrix, X)
    assert est.sigma2_g == pytest.approx(sg, rel=1e-5)
    assert est.sigma2_e == pytest.approx(se, rel=1e-5)
    np.testing.assert_allclose(est.beta.to_numpy(), beta, rtol=1e-5, atol=1e-7)
    assert list(est.beta.index) == ["mu", "sex", "age"]


@pytest.mark.structural
def test_reml_drops_unphenotyped_and_refuses_what_it_cannot_fit(wheat, wheat_G):
    y = wheat.phenotypes["y1"].copy()
    y.iloc[:50] = np.nan
    assert bb.reml(y, wheat_G).n == 549
    with pytest.raises(InputError, match="Relationship"):
        bb.reml(y, wheat_G.matrix)
    a = np.arange(y.size, dtype=float)
    collinear = pd.DataFrame({"a": a, "b": 2 * a + 1}, index=y.index)
    with pytest.raises(InputError, match="collinear"):
        bb.reml(wheat.phenotypes["y1"], wheat_G, fixed=collinear)
