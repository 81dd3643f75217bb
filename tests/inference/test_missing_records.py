"""Missing records of several traits: the canonical likelihood and the exact Gibbs draw (bayesblup.inference.missing).

Exact (closed forms, 1e-10 or 1e-8 relative: the same numbers by another order of operations):

- the canonical basis diagonalises both covariances, also when they are proportional (tied d);
- the canonical log-likelihood and its hand-written gradient (NumPy and the numba loop) equal the per-component
  dense normal density and its central finite differences (step 1e-6: truncation and rounding below 1e-6
  relative);
- NUTS's log density on the Gibbs path (the missing records' shift read from a shared value) equals the
  model's own at the same point.

Monte Carlo (stated in the test): one Gibbs draw started from the exact conditional of the missing records
(dense, tests/models/test_multitrait.py's formula) stays in it. That a fit by the Gibbs path and one by NUTS on
every unknown agree is in the slow tier (test_missing_records_slow.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesblup as bb
from bayesblup.inference.missing import MissingLayout, _conditional_logp, draw_missing
from bayesblup.linalg.canonical import canonical
from bayesblup.models.ops import _canonical_terms_loops, canonical_terms
from bayesblup.testing import simulate_genotypes, simulate_multitrait

SIGMA_G = np.array([[0.6, 0.35, -0.1], [0.35, 0.5, 0.2], [-0.1, 0.2, 0.4]])
SIGMA_E = np.array([[0.5, 0.1, 0.0], [0.1, 0.7, 0.15], [0.0, 0.15, 0.3]])


def _dense_terms(lam, Sk, Se, R) -> float:
    total = 0.0
    for k in range(R.shape[0]):
        V = lam[k] * Sk + Se
        _, logdet = np.linalg.slogdet(V)
        total += -0.5 * (R.shape[1] * np.log(2 * np.pi) + logdet + R[k] @ np.linalg.solve(V, R[k]))
    return total


@pytest.mark.exact
@pytest.mark.parametrize("tied", [False, True])
def test_canonical_basis_diagonalises_both_covariances(tied):
    Sk = 2.0 * SIGMA_E if tied else SIGMA_G
    P, P_inv, d = canonical(Sk, SIGMA_E)
    np.testing.assert_allclose(P @ P.T, SIGMA_E, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(P @ np.diag(d) @ P.T, Sk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(P_inv @ P, np.eye(3), atol=1e-12)
    if tied:
        np.testing.assert_allclose(d, 2.0, rtol=1e-12)


@pytest.mark.exact
@pytest.mark.parametrize("terms", [canonical_terms, _canonical_terms_loops], ids=["numpy", "loops"])
@pytest.mark.parametrize("tied", [False, True])
def test_canonical_likelihood_and_gradient_equal_the_dense_density(terms, tied):
    rng = np.random.default_rng(2)
    n = 40
    lam = np.concatenate([[0.0], rng.uniform(0.0, 3.0, n - 1)])  # a zero eigenvalue included
    R = rng.normal(size=(n, 3))
    Sk = 0.5 * SIGMA_E if tied else SIGMA_G  # tied: every d equal, where eigenvector derivatives are undefined
    logp, grad_k, grad_e, grad_R = terms(lam, Sk, SIGMA_E, R)
    assert logp == pytest.approx(_dense_terms(lam, Sk, SIGMA_E, R), rel=1e-10)
    h = 1e-6
    for a, b in [(0, 0), (0, 1), (1, 2), (2, 2)]:
        E = np.zeros((3, 3))
        E[a, b] = E[b, a] = h
        # a symmetric perturbation moves both entries: the gradient's (a, b) and (b, a) both count
        expected = grad_k[a, b] + grad_k[b, a] if a != b else grad_k[a, a]
        fd = (_dense_terms(lam, Sk + E, SIGMA_E, R) - _dense_terms(lam, Sk - E, SIGMA_E, R)) / (2 * h)
        assert expected == pytest.approx(fd, rel=1e-6, abs=1e-6)
        expected = grad_e[a, b] + grad_e[b, a] if a != b else grad_e[a, a]
        fd = (_dense_terms(lam, Sk, SIGMA_E + E, R) - _dense_terms(lam, Sk, SIGMA_E - E, R)) / (2 * h)
        assert expected == pytest.approx(fd, rel=1e-6, abs=1e-6)
    for k, j in [(0, 0), (7, 2), (39, 1)]:
        E = np.zeros_like(R)
        E[k, j] = h
        fd = (_dense_terms(lam, Sk, SIGMA_E, R + E) - _dense_terms(lam, Sk, SIGMA_E, R - E)) / (2 * h)
        assert grad_R[k, j] == pytest.approx(fd, rel=1e-6, abs=1e-6)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(16)
    geno, _ = simulate_genotypes(40, 60, allele_freq=rng.uniform(0.1, 0.9, 60), seed=rng)
    G = bb.genomic_relationship(geno)
    Y = simulate_multitrait(G, Sigma_g=SIGMA_G, Sigma_e=SIGMA_E, mu=[1.0, -2.0, 0.5], missing=0.25, seed=5)
    return G, Y


def _exact_conditional(model, Gp, mu, Sk, Se):
    """Mean and covariance of the missing records given the observed ones (dense, in the model's order)."""
    from oracles_multitrait import vec

    Y = model.records.Y
    miss = np.isnan(Y)
    n = Y.shape[0]
    cov = np.kron(Sk * model.factor, Gp) + np.kron(Se, np.eye(n))
    m = np.kron(mu, np.ones(n))
    o, u = ~vec(miss), vec(miss)
    y = np.where(miss, 0.0, Y)
    mean = m[u] + cov[np.ix_(u, o)] @ np.linalg.solve(cov[np.ix_(o, o)], vec(y)[o] - m[o])
    covariance = cov[np.ix_(u, u)] - cov[np.ix_(u, o)] @ np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, u)])
    # vec order is trait by trait; the model's is numpy's nonzero order of the missing cells (row by row)
    rows, traits = np.nonzero(miss)
    vec_position = {(r, j): i for i, (j, r) in enumerate(zip(*np.nonzero(miss.T), strict=True))}
    order = np.array([vec_position[(r, j)] for r, j in zip(rows, traits, strict=True)])
    return mean[order], covariance[np.ix_(order, order)]


@pytest.mark.recovery
def test_a_gibbs_draw_leaves_the_exact_conditional_of_the_missing_records_invariant(small):
    """Draws from the exact conditional, one Gibbs draw each: still the exact conditional.

    N = 4000 independent pairs. Each coordinate's mean is compared in units of its Monte Carlo sd
    (|z| < 4.5 over ~36 coordinates: a false alarm below 3e-4) and its variance within 15% (the sd of a
    sample variance of 4000 normals is 2.2%). A step that returned its input would pass this: the lag-one
    correlation is checked to be below 0.95 as well.
    """
    G, Y = small
    model = bb.GBLUP(Y, G)
    Gp = G.matrix[np.ix_(G.index(model.ids), G.index(model.ids))]
    mu = np.array([1.1, -1.9, 0.4])
    Sk = SIGMA_G / model.factor
    mean, cov = _exact_conditional(model, Gp, mu, Sk, SIGMA_E)
    rng = np.random.default_rng(7)
    N = 4000
    start = rng.multivariate_normal(mean, cov, size=N)
    layout = MissingLayout(model.multitrait_data)
    after = np.array([draw_missing(layout, mu, None, Sk, SIGMA_E, y, rng)[0] for y in start])
    sd = np.sqrt(np.diag(cov))
    z = (after.mean(axis=0) - mean) / (sd / np.sqrt(N))
    assert np.max(np.abs(z)) < 4.5
    np.testing.assert_allclose(after.var(axis=0, ddof=1), np.diag(cov), rtol=0.15)
    lag = [np.corrcoef(start[:, i], after[:, i])[0, 1] for i in range(mean.size)]
    assert max(lag) < 0.95


@pytest.mark.exact
def test_the_gibbs_path_log_density_is_the_models(small):
    """NUTS's density with the shift read from a shared value equals the model's own, to 1e-10."""
    G, Y = small
    model = bb.GBLUP(Y, G)
    pm_model = model.model
    z = pm_model.rvs_to_values[pm_model["z_missing"]]
    others = [v for v in pm_model.value_vars if v is not z]
    point = pm_model.initial_point()
    rng = np.random.default_rng(3)
    full = pm_model.compile_logp()
    fn, completed = _conditional_logp(pm_model, others, point)
    layout = MissingLayout(model.multitrait_data)
    data = model.multitrait_data
    for _ in range(3):
        point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in point.items()}
        y = data.fill[data.missing_traits] + data.scale[data.missing_traits] * point["z_missing"]
        completed.set_value(layout.shift(y))
        x = np.concatenate([np.ravel(point[v.name]) for v in others])
        fn.set_extra_values(point)  # z_missing (its flat prior's term), as NUTS sets it from each point
        assert float(fn(x)[0]) == pytest.approx(float(full(point)), rel=1e-10)


@pytest.mark.structural
def test_the_gibbs_path_in_worker_processes_gives_the_same_draws(small):
    """cores=2 sends the steps to worker processes: each must keep its Gibbs step and NUTS on one shared shift."""
    G, Y = small
    Y2 = Y.iloc[:, :2]
    one = bb.GBLUP(Y2, G).fit(chains=2, draws=100, tune=100, seed=3, cores=1)
    two = bb.GBLUP(Y2, G).fit(chains=2, draws=100, tune=100, seed=3, cores=2)
    for name in ("h2", "mu", "y_missing"):
        np.testing.assert_array_equal(one.datatree.posterior[name].values, two.datatree.posterior[name].values)


@pytest.mark.structural
def test_default_sampler_is_pymc_even_with_nutpie_installed(small, monkeypatch):
    """nuts_sampler=None is PyMC's NUTS whether or not nutpie is installed, with or without the Gibbs step.

    nutpie compiles with Numba at every fit (10 s on wheat, against 1.5 s for PyMC's whole fit; the samplers
    module's docstring), so it runs only when named.
    """
    import importlib.util

    from bayesblup.inference import samplers

    G, Y = small
    real = importlib.util.find_spec
    monkeypatch.setattr(
        samplers.importlib.util, "find_spec", lambda name, *a: object() if name == "nutpie" else real(name, *a)
    )
    holes, complete = bb.GBLUP(Y, G), bb.GBLUP(Y.dropna(), G)
    assert holes.gibbs_missing and not complete.gibbs_missing
    assert samplers.choose_nuts(holes, holes.model, None, chains=2, progressbar=False).sampler == "pymc"
    assert samplers.choose_nuts(complete, complete.model, None, chains=2, progressbar=False).sampler == "pymc"
    assert samplers.choose_nuts(complete, complete.model, "nutpie", chains=2, progressbar=False).sampler == "nutpie"
