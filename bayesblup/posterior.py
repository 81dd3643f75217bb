"""Genetic values and marker effects from the marginal form, exactly, draw by draw.

Given ``theta = (mu, sigma2_k, sigma2_e)``, with ``K = U diag(lam) U'`` and ``r* = U'(y - mu 1)``,
``g | y, theta`` is Gaussian with

    E[g | y, theta]   = U diag(w) r*,                  w_k = sigma2_k lam_k / (sigma2_k lam_k + sigma2_e)
    Var[g | y, theta] = U diag(sigma2_e w) U'.

Any other vector T with ``Cov(T, y) = sigma2_k M`` and prior variance ``sigma2_k v`` follows the same
way, with ``A = M U`` computed once and ``d_k = sigma2_k lam_k + sigma2_e``:

    E[T | y, theta]     = sigma2_k A diag(1/d) r*
    Var[T_j | y, theta] = sigma2_k v_j - sigma2_k^2 sum_k A_jk^2 / d_k.

That covers M-BLUP's marker effects (``M = W'``, ``v = 1``) and the genetic values of individuals
without a record, genotyped at fit time or later (``M = c G_21``, ``v = c diag(G_22)``): the
cross-relationship prediction ``G_21 G_11^-1 g`` with its uncertainty, with no inverse of G needed.

The posterior mean and variance follow by the laws of total expectation and variance over the
draws of theta: ``E[g] = mean_d E[g | theta_d]`` and ``Var[g] = mean_d Var[g | theta_d] +
var_d E[g | theta_d]`` (the seed's Stat 1). Draws are processed in chunks, so memory stays at a few
n x chunk arrays whatever the number of draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Moments", "conditional_genetic_values", "posterior_moments"]

_CHUNK = 256


@dataclass(frozen=True)
class Moments:
    """Posterior mean and sd of a vector quantity, and draws when asked for."""

    mean: np.ndarray
    sd: np.ndarray
    draws: np.ndarray | None = None  # (n_draws_kept, len)


class _Accumulator:
    """Running totals for the law of total variance, shifted by the first draw for precision."""

    def __init__(self):
        self.count = 0
        self.shift = self.sum = self.sum_sq = self.sum_var = None

    def add(self, cond_mean: np.ndarray, cond_var: np.ndarray) -> None:  # (len, d) each
        if self.shift is None:
            self.shift = cond_mean[:, 0].copy()
            self.sum = np.zeros_like(self.shift)
            self.sum_sq = np.zeros_like(self.shift)
            self.sum_var = np.zeros_like(self.shift)
        dev = cond_mean - self.shift[:, None]
        self.sum += dev.sum(1)
        self.sum_sq += (dev**2).sum(1)
        self.sum_var += cond_var.sum(1)
        self.count += cond_mean.shape[1]

    def result(self, draws=None) -> Moments:
        mean_dev = self.sum / self.count
        between = np.maximum(self.sum_sq / self.count - mean_dev**2, 0.0)
        within = self.sum_var / self.count
        return Moments(mean=self.shift + mean_dev, sd=np.sqrt(within + between), draws=draws)


def _spectral_terms(model):
    sp = model.spectral
    lam = model.factor * sp.values
    X = model.records.X
    return sp.vectors, lam, sp.rotate(model.y), sp.rotate(np.ones(model.n)), None if X is None else sp.rotate(X)


def _residuals(y_star, one_star, X_star, mu, beta) -> np.ndarray:
    """``U'(y - mu 1 - X beta)`` for a chunk of draws: (n, d)."""
    r = y_star[:, None] - one_star[:, None] * np.atleast_1d(mu)[None, :]
    if X_star is not None:
        r = r - X_star @ np.atleast_2d(beta).T
    return r


def conditional_genetic_values(
    model, mu: float, sigma2_k: float, sigma2_e: float, beta: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``E[g | y, theta]`` and ``Var[g_i | y, theta]`` at one parameter value (the Henderson BLUP)."""
    U, lam, y_star, one_star, X_star = _spectral_terms(model)
    w = sigma2_k * lam / (sigma2_k * lam + sigma2_e)
    r = _residuals(y_star, one_star, X_star, mu, beta)[:, 0]
    return U @ (w * r), (U**2) @ (sigma2_e * w)


def posterior_moments(
    model,
    mu: np.ndarray,
    sigma2_k: np.ndarray,
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None = None,
    targets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    keep_draws: np.ndarray | None = None,
    seed: int | None = None,
) -> tuple[Moments, dict[str, Moments]]:
    """Posterior mean and sd of g on the phenotyped individuals, and of other Gaussian targets.

    Parameters
    ----------
    model : BLUPModel
        A marginal-form model (its spectral decomposition is reused).
    mu, sigma2_k, sigma2_e : ndarray, shape (D,)
        Draws of the parameters, flattened over chains.
    beta : ndarray, shape (D, q), optional
        Draws of the fixed effects, when the model has covariates.
    targets : dict, optional
        ``{name: (M, v)}`` for vectors T with ``Cov(T, y) = sigma2_k M`` (rows of M: elements of T;
        columns: records) and prior variances ``sigma2_k v``. Then ``E[T | y, theta] = sigma2_k
        M V^-1 (y - mu 1)`` and ``Var[T_j | y, theta] = sigma2_k v_j - sigma2_k^2 (M V^-1 M')_jj``:
        marker effects (``M = W'``, ``v = 1``), unphenotyped or new individuals (``M = c G_21``,
        ``v = c diag(G_22)``).
    keep_draws : ndarray of bool, shape (D,), optional
        Draws at which to also return a full posterior draw of g (phenotyped individuals): the
        conditional mean plus ``U diag(sqrt(sigma2_e w)) xi`` with ``xi ~ N(0, I)``, an exact draw
        from ``g | y, theta``.
    seed : int, optional
        Seed of those draws.
    """
    U, lam, y_star, one_star, X_star = _spectral_terms(model)
    U2 = U**2
    rotated = {name: (M @ U, np.asarray(v, dtype=np.float64)) for name, (M, v) in (targets or {}).items()}
    squared = {name: A**2 for name, (A, _) in rotated.items()}
    rng = np.random.default_rng(seed)
    g_acc = _Accumulator()
    accs = {name: _Accumulator() for name in rotated}
    kept = []
    for start in range(0, mu.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        sk, se = sigma2_k[sl][None, :], sigma2_e[sl][None, :]
        d = sk * lam[:, None] + se  # (n, chunk)
        r = _residuals(y_star, one_star, X_star, mu[sl], None if beta is None else beta[sl])
        w = sk * lam[:, None] / d
        g_mean = U @ (w * r)
        g_acc.add(g_mean, U2 @ (se * w))
        if keep_draws is not None and keep_draws[sl].any():
            pick = keep_draws[sl]
            noise = np.sqrt(se * w)[:, pick] * rng.standard_normal((lam.size, int(pick.sum())))
            kept.append((g_mean[:, pick] + U @ noise).T)
        for name, (A, v) in rotated.items():
            accs[name].add(A @ (sk / d * r), sk * v[:, None] - sk**2 * (squared[name] @ (1.0 / d)))
    draws = np.concatenate(kept) if kept else None
    return g_acc.result(draws), {name: acc.result() for name, acc in accs.items()}
