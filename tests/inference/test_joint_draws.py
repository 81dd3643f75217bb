"""Joint draws of every individual's genetic value (bayesblup.inference.joint_draws) against the dense Gaussian.

At one theta a draw is an affine map of standard normals, ``g = m + T xi``. Fed the columns of an identity
instead of random normals, the draws are ``m + T`` column by column, and fed zeros, ``m``: the mean and the
covariance ``T T'`` of the draws are then read off exactly and compared with the dense conditional ``N(m, C)``
over every individual (records first), ``m = Cov(g, y) V^-1 (y - mu - X beta)`` and ``C = Var(g) - Cov(g, y) V^-1
Cov(y, g)``, to rounding (1e-9 of the largest prior variance).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesblup as bb
from bayesblup.inference.joint_draws import kernels_draws, single_kernel_draws, theta_plan, unphenotyped_terms
from bayesblup.testing import simulate_genotypes

pytestmark = pytest.mark.exact

N, N_U = 40, 8  # individuals, of which the last N_U have no record


class IdentityNormals:
    """``standard_normal(shape)`` returning the next ``shape[0]`` rows of an identity (or zeros): draw j is T e_j."""

    def __init__(self, width: int, *, zero: bool = False):
        self.rows = np.eye(width)
        self.zero = zero
        self.next = 0

    def standard_normal(self, shape):
        if self.zero:
            return np.zeros(shape)
        block = self.rows[self.next : self.next + shape[0]]
        self.next += shape[0]
        assert block.shape[0] == shape[0], "more normals asked for than the identity has"
        return block.reshape(shape)


def _data(m: int, seed: int = 3):
    geno, _ = simulate_genotypes(N, m, allele_freq=np.random.default_rng(seed).uniform(0.2, 0.8, m), seed=seed)
    geno, _ = bb.quality_control(geno)
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.normal(2.0, 1.0, N), index=geno.ids, name="y")
    y.iloc[N - N_U :] = np.nan
    weights = pd.Series(rng.uniform(0.5, 3.0, N), index=geno.ids)
    return geno, y, weights


def _oracle(K, p, y, mu, s2, noise):
    """Dense conditional mean and covariance of g (every individual) given the records' y: Var(g) = K (scaled)."""
    V = s2 * K[np.ix_(p, p)] + np.diag(noise)
    cross = s2 * K[:, p]
    mean = cross @ np.linalg.solve(V, y - mu)
    cov = s2 * K - cross @ np.linalg.solve(V, cross.T)
    return mean, cov


def _read_off(draw, width: int):
    """(mean, covariance) of the affine map behind ``draw(rng, k)``, from identity and zero normals."""
    mean = np.concatenate(list(draw(IdentityNormals(width, zero=True), 1)))[0]
    identity = IdentityNormals(width)
    T = np.concatenate(list(draw(identity, width))) - mean[None, :]
    assert identity.next == width  # every standard normal of a draw was one of the identity's
    return mean, T.T @ T


CASES = {  # model, m markers: the full path with G, with weights (S != I) and a covariate, M-BLUP, the low-rank path
    "gblup-dense": ("gblup", 120),
    "gblup-weighted": ("gblup-weighted", 120),
    "mblup-dense": ("mblup", 120),
    "gblup-low-rank": ("gblup-W", 20),
    "gblup-low-rank-weighted": ("gblup-W-weighted", 20),
    "mblup-low-rank": ("mblup", 20),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_kernel_draws_have_the_dense_conditional_mean_and_covariance(case):
    name, m = CASES[case]
    geno, y, weights = _data(m)
    G = bb.genomic_relationship(geno, scaling="standardized-hwe")
    W = bb.genotype_matrix(geno, scaling="standardized-hwe")
    weighted = name.endswith("weighted")
    fixed = pd.DataFrame({"x": np.linspace(-1, 1, N)}, index=geno.ids) if weighted else None
    if name.startswith("gblup"):
        kernel = W if name.startswith("gblup-W") else G
        model = bb.GBLUP(y, kernel, weights=weights if weighted else None, fixed=fixed)
    else:
        model = bb.MBLUP(y, W)
    assert model.path == ("low-rank" if m < N - N_U else "spectral")
    assert (model.scale is not None) == weighted  # S != I: the kernel rescaled by the root weights
    order = G.index(model.individuals)
    K_all = G.matrix[np.ix_(order, order)] * model.factor  # K = c G (M-BLUP: W W')
    mu, s2, se = 1.7, 0.6 / model.factor, 0.8
    w = weights[model.ids].to_numpy() if weighted else np.ones(model.n)
    beta = np.array([0.4]) if weighted else None
    p = np.arange(model.n)
    y_fixed = model.y - (model.records.X @ beta if weighted else 0.0)
    mean, cov = _oracle(K_all, p, y_fixed, mu, s2, se / w)
    data = model.spectral_data
    unph = unphenotyped_terms(data, model.kernels[0], model.targets.get("unphenotyped"), model.factor)
    width = data.lam.size + unph.width

    def draw(rng, k):
        args = np.full(k, mu), np.full(k, s2), np.full(k, se)
        b = None if beta is None else np.tile(beta, (k, 1))
        return single_kernel_draws(data, unph, *args, beta=b, columns=np.zeros(k, dtype=int), rng=rng)

    got_mean, got_cov = _read_off(draw, width)
    scale = s2 * np.diag(K_all).max()
    np.testing.assert_allclose(got_mean, mean, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(got_cov, cov, rtol=0, atol=1e-9 * scale)
    assert np.diag(cov)[model.n :].min() > 1e-3 * scale  # the candidates without a record have their own spread


@pytest.mark.parametrize("path", ["woodbury", "dense"])
def test_several_kernel_draws_have_the_dense_conditional_mean_and_covariance(path):
    """Matheron's draws of the total g over every individual (two G_k, a fixed effect, unphenotyped ones)."""
    geno, y, _ = _data(120)
    sets = {"feature": list(geno.markers[::15])}
    G = bb.relationships_by_set(geno, sets, scaling="standardized")
    fixed = pd.DataFrame({"x": np.linspace(-1, 1, N)}, index=geno.ids)
    model = bb.MultiGBLUP(y, G, fixed=fixed, path=path)
    assert model.path == path
    order = G["rest"].index(model.individuals)
    s2 = {"feature": 0.3, "rest": 0.6}
    mu, se, beta = 1.7, 0.8, np.array([0.4])
    K = sum(s2[k] * G[k].matrix[np.ix_(order, order)] for k in s2)
    p = np.arange(model.n)
    mean, cov = _oracle(K, p, model.y - model.records.X @ beta, mu, 1.0, np.full(model.n, se))
    data = model.kernels_data
    width = sum(data.effects[k].shape[1] for k in data.names) + model.n

    def draw(rng, k):
        return kernels_draws(
            data, np.array([mu]), {k_: np.array([v]) for k_, v in s2.items()}, np.array([se]), beta=beta[None, :],
            used=np.array([0]), repeats=k, rng=rng,
        )  # fmt: skip

    got_mean, got_cov = _read_off(draw, width)
    scale = np.diag(K).max()
    np.testing.assert_allclose(got_mean, mean, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(got_cov, cov, rtol=0, atol=1e-9 * scale)


def test_theta_plan_spreads_at_most_draws_thetas_and_repeats_to_reach_draws():
    used, repeats = theta_plan(4000, 1000)
    assert used.size == 1000 and repeats == 1 and used[0] == 0 and used[-1] == 3999
    used, repeats = theta_plan(600, 1000)
    assert used.tolist() == list(range(600)) and repeats == 2  # 1200 draws of g: at least 1000
    used, repeats = theta_plan(1, 1000)  # MAP: the mode, 1000 draws of g given it
    assert used.tolist() == [0] and repeats == 1000
