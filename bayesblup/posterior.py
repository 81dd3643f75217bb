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
var_d E[g | theta_d]`` (the seed's Stat 1).

With repeated or weighted records the same holds on the individuals' weighted mean records, in the
eigenbasis of ``S K S`` with ``S = diag(sqrt(W_i))`` (:mod:`bayesblup.models.base`): with ``d_k =
sigma2_k lam_k + nu`` and ``nu = sigma2_e (+ W sigma2_pe)``, ``E[g | y, theta] = S^-1 U diag(w) r*``
and ``Var[g | y, theta] = S^-1 U diag(w nu) U' S^-1``. Draws are processed in chunks, so memory stays at a few
n x chunk arrays whatever the number of draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Moments", "conditional_fixed_effects", "conditional_genetic_values", "posterior_moments"]

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


def _residuals(data, mu, beta, excess) -> np.ndarray:
    """``U' S (ybar - mu 1 - Xbar beta - eps)`` for a chunk of draws: (n, d)."""
    r = data.y[:, None] - data.one[:, None] * np.atleast_1d(mu)[None, :]
    if data.X is not None:
        r = r - data.X @ np.atleast_2d(beta).T
    if excess is not None:  # the explicit residual excess (pe_path "augmented"): its draws, rotated
        r = r - data.rotate_scaled(np.atleast_2d(excess).T)
    return r


def _noise(data, sigma2_e, sigma2_pe):
    """``nu``, what adds to ``sigma2_k lam_k`` in every component: ``a sigma2_e + b sigma2_pe``."""
    a, b = data.noise
    return a * sigma2_e if b == 0 else a * sigma2_e + b * sigma2_pe


def _inverse_scale(data) -> np.ndarray:
    return np.ones(data.lam.size) if data.scale is None else 1.0 / data.scale


def conditional_genetic_values(
    model,
    mu: float,
    sigma2_k: float,
    sigma2_e: float,
    beta: np.ndarray | None = None,
    *,
    sigma2_pe: float | None = None,
    excess: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``E[g | y, theta]`` and ``Var[g_i | y, theta]`` at one parameter value (the Henderson BLUP).

    With a permanent environment give ``sigma2_pe``; where the residual excess is explicit
    (``model.pe_path == "augmented"``) give its value ``excess`` too, and the moments are
    conditional on it.
    """
    data = model.rotated
    _check_pe(model, sigma2_pe, excess)
    nu = _noise(data, sigma2_e, sigma2_pe)
    d = sigma2_k * data.lam + nu
    w = sigma2_k * data.lam / d
    r = _residuals(data, mu, beta, excess)[:, 0]
    inv = _inverse_scale(data)
    return inv * (data.vectors @ (w * r)), inv**2 * ((data.vectors**2) @ (w * nu))


def conditional_fixed_effects(
    model, sigma2_k: float, sigma2_e: float, *, sigma2_pe: float | None = None, excess: np.ndarray | None = None
) -> np.ndarray:
    """``E[(mu, beta) | y, theta]`` under a flat prior: generalised least squares, ``(mu, beta_1, ...)``.

    The rotated means give ``X*' V*^-1 X*``; with repeated records the within-individual scatter adds
    ``C / sigma2_e`` (covariates that vary within an individual are also estimated from the
    differences between its records). Henderson's equations give the same beta.
    """
    data = model.rotated
    _check_pe(model, sigma2_pe, excess)
    d = sigma2_k * data.lam + _noise(data, sigma2_e, sigma2_pe)
    X1 = data.one[:, None] if data.X is None else np.hstack([data.one[:, None], data.X])
    y = data.y if excess is None else data.y - data.rotate_scaled(np.asarray(excess, dtype=np.float64))
    lhs = X1.T @ (X1 / d[:, None])
    rhs = X1.T @ (y / d)
    if data.within is not None and data.X is not None:
        _, b, C, _, _ = data.within
        lhs[1:, 1:] += C / sigma2_e
        rhs[1:] += b / sigma2_e
    return np.linalg.solve(lhs, rhs)


def _check_pe(model, sigma2_pe, excess) -> None:
    """Refuse a missing ``sigma2_pe`` or ``excess`` (values or draws) where the model needs them."""
    if model.permanent_environment and sigma2_pe is None:
        raise ValueError("this model has a permanent-environment effect: give sigma2_pe.")
    if model.pe_path == "augmented" and excess is None:
        raise ValueError("this model samples a residual excess (unequal total weights with p): give excess.")


def posterior_moments(
    model,
    mu: np.ndarray,
    sigma2_k: np.ndarray,
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None = None,
    sigma2_pe: np.ndarray | None = None,
    excess: np.ndarray | None = None,
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
    sigma2_pe : ndarray, shape (D,), optional
        Draws of the permanent-environment variance, when the model has one.
    excess : ndarray, shape (D, n), optional
        Draws of the residual excess ``eps`` where it is explicit (``pe_path == "augmented"``); g is
        then drawn conditional on them, and averaged over them.
    targets : dict, optional
        ``{name: (M, v)}`` for vectors T with ``Cov(T, ybar) = sigma2_k M`` (rows of M: elements of T;
        columns: phenotyped individuals) and prior variances ``sigma2_k v``. Then ``E[T | y, theta] =
        sigma2_k M V^-1 (ybar - mu 1)`` and ``Var[T_j | y, theta] = sigma2_k v_j - sigma2_k^2 (M V^-1
        M')_jj``: marker effects (``M = W'``, ``v = 1``), unphenotyped or new individuals (``M = c
        G_21``, ``v = c diag(G_22)``).
    keep_draws : ndarray of bool, shape (D,), optional
        Draws at which to also return a full posterior draw of g (phenotyped individuals): the
        conditional mean plus ``S^-1 U diag(sqrt(sigma2_k lam nu / d)) xi`` with ``xi ~ N(0, I)``, an
        exact draw from ``g | y, theta``.
    seed : int, optional
        Seed of those draws.
    """
    data = model.rotated
    _check_pe(model, sigma2_pe, excess)
    U, lam = data.vectors, data.lam
    U2 = U**2
    inv = _inverse_scale(data)[:, None]
    s = np.ones(lam.size) if data.scale is None else data.scale
    # Cov(T, S ybar) = sigma2_k M S, so A = M S U.
    rotated = {
        name: ((M * s[None, :]) @ U, np.asarray(v, dtype=np.float64)) for name, (M, v) in (targets or {}).items()
    }
    squared = {name: A**2 for name, (A, _) in rotated.items()}
    rng = np.random.default_rng(seed)
    g_acc = _Accumulator()
    accs = {name: _Accumulator() for name in rotated}
    kept = []
    for start in range(0, mu.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        sk = sigma2_k[sl][None, :]
        nu = _noise(data, sigma2_e[sl][None, :], None if sigma2_pe is None else sigma2_pe[sl][None, :])
        d = sk * lam[:, None] + nu  # (n, chunk)
        r = _residuals(data, mu[sl], None if beta is None else beta[sl], None if excess is None else excess[sl])
        w = sk * lam[:, None] / d
        g_mean = inv * (U @ (w * r))
        g_acc.add(g_mean, inv**2 * (U2 @ (w * nu)))
        if keep_draws is not None and keep_draws[sl].any():
            pick = keep_draws[sl]
            noise = np.sqrt(w * nu)[:, pick] * rng.standard_normal((lam.size, int(pick.sum())))
            kept.append((g_mean[:, pick] + inv * (U @ noise)).T)
        for name, (A, v) in rotated.items():
            accs[name].add(A @ (sk / d * r), sk * v[:, None] - sk**2 * (squared[name] @ (1.0 / d)))
    draws = np.concatenate(kept) if kept else None
    return g_acc.result(draws), {name: acc.result() for name, acc in accs.items()}
