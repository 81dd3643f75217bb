"""Genetic values per marker set, in total, and marker effects, from the multi-set marginal form.

Given ``theta`` (mu, beta, the sets' variances, sigma2_e, sigma2_pe), each set's effect ``u_k`` (with
``g_k = L_k u_k``, ``L_k L_k' = K_k`` over every individual; ``u_k = b_k`` for M-BLUP) is Gaussian given
the data. Matheron's rule draws from it exactly with one linear solve, without the n x n
conditional covariance: draw from the prior, ``u~_k ~ N(0, sigma2_k I)``, simulate the data it
implies, ``y~ = S sum_k L_k u~_k + e~``, and correct,

    u_k | y, theta  =d  u~_k + sigma2_k F_k' V^-1 (r - y~),     F_k = S L_k (records' rows),

where ``r = S (ybar - mu 1 - Xbar beta)`` and ``V = sum_k sigma2_k F_k F_k' + diag(noise)``; the
conditional mean is ``sigma2_k F_k' V^-1 r``. V^-1 comes from the model's path (Woodbury or dense),
once per draw of theta.

Posterior mean and sd follow by the laws of total expectation and variance over the draws of
theta (as in :mod:`bayesblup.inference.posterior`): the mean from the exact conditional means, the within-draw
variance from the squared deviation of each exact draw from its conditional mean (an unbiased
estimate; with D draws its relative Monte Carlo error is about ``sqrt(2 / D)``, 3% for 2000
draws, 1.6% on the sd). At most ``max_draws`` draws of theta are used (evenly thinned), and each
gets several Matheron draws when there are fewer than ``min_samples`` (MAP: one theta).
"""

from __future__ import annotations

import numpy as np

from .posterior import Moments, _Accumulator

__all__ = ["set_moments"]

_CHUNK_COLUMNS = 128  # right-hand sides per batch of thetas


def _solve(model, sigma2: dict, noise: np.ndarray, Z: np.ndarray, *, rotated: bool) -> np.ndarray:
    """``V^-1 v`` for the columns of one theta: on the Woodbury path ``Z = U'v`` and the result is ``U'V^-1 v``."""
    if rotated:
        data = model.arrays
        lam, A = data["lam"], data["A"]
        nu = float(noise[0])
        d = sigma2[model.background] * lam + nu
        root = np.concatenate(
            [np.full(w, np.sqrt(sigma2[k])) for k, w in zip(data["low"], data["blocks"], strict=True)]
        )
        M, _ = data["resolvent"](np.log(sigma2[model.background] / nu))  # A'(I + rho Lambda)^-1 A
        C = root[:, None] * M * root[None, :] / nu + np.eye(root.size)
        t = Z / d[:, None]
        return t - (A @ (root[:, None] * np.linalg.solve(C, root[:, None] * (A.T @ t)))) / d[:, None]
    V = sum(sigma2[name] * model.scaled_kernel(name) for name in model.set_names)
    V[np.diag_indices_from(V)] += noise
    return np.linalg.solve(V, Z)


def _factor(model, name: str) -> np.ndarray:
    """L_k over every individual: W_k for M-BLUP (so that u_k is b_k), else the kernel's factor."""
    return model.W[name] if model.name == "mblup" else model.factor_all(name)


def set_moments(
    model,
    mu: np.ndarray,
    sigma2: dict[str, np.ndarray],
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None = None,
    sigma2_pe: np.ndarray | None = None,
    seed: int | None = None,
    max_draws: int = 1000,
    min_samples: int = 200,
) -> tuple[dict[str, Moments], Moments, dict[str, Moments]]:
    """Posterior mean and sd of each set's genetic values, of their total, and of M-BLUP's marker effects.

    Parameters
    ----------
    model : SetsModel
        A marginal-form model with several marker sets.
    mu, sigma2_e : ndarray, shape (D,)
        Draws, flattened over chains; ``sigma2`` maps each set to its draws of ``sigma2_k``.
    beta, sigma2_pe : ndarray, optional
        Draws of the fixed effects (D, q) and of the permanent-environment variance.
    seed : int, optional
        Seed of the Matheron draws.
    max_draws, min_samples : int
        Draws of theta used at most, and Matheron draws in all at least (module docstring).

    Returns
    -------
    (dict, Moments, dict)
        ``{set: g_k}`` and the total g over every individual (records first), and ``{set: b_k}``
        for M-BLUP (empty for G-BLUP).
    """
    data = model.arrays
    scaled = data.get("scaled", data)
    y, one, X = scaled["y"], scaled["one"], scaled["X"]
    s = data["scale"]
    a, b = data["noise"]
    a = np.full(model.n, float(a)) if np.ndim(a) == 0 else np.asarray(a, dtype=np.float64)
    rotated = model.path == "woodbury"
    U = data["U"] if rotated else None
    names = model.set_names
    factors = {name: _factor(model, name) for name in names}
    scaled_factors = {name: s[:, None] * L[: model.n] for name, L in factors.items()}
    D = mu.size
    used = np.unique(np.linspace(0, D - 1, min(D, max_draws)).round().astype(int))
    repeats = max(1, -(-min_samples // used.size))
    rng = np.random.default_rng(seed)
    g_acc = {name: _Accumulator() for name in names}
    total_acc = _Accumulator()
    b_acc = {name: _Accumulator() for name in names} if model.name == "mblup" else {}
    # Thetas are taken a chunk at a time, so that the n x n products (rotations, the background's
    # factor) are matrix-matrix products over many columns rather than one vector per draw.
    chunk = max(1, _CHUNK_COLUMNS // (1 + repeats))
    for start in range(0, used.size, chunk):
        idx = used[start : start + chunk]
        k = idx.size
        s2 = {name: np.asarray(sigma2[name], dtype=np.float64)[idx] for name in names}  # (k,)
        noise = a[:, None] * sigma2_e[idx][None, :] + (0.0 if sigma2_pe is None else b * sigma2_pe[idx][None, :])
        r = y[:, None] - one[:, None] * mu[idx][None, :] - (0.0 if X is None else X @ beta[idx].T)  # (n, k)
        # Prior draws of every set's effect, and the data they imply: (.., k, repeats).
        prior_u = {
            name: np.sqrt(s2[name])[None, :, None] * rng.standard_normal((factors[name].shape[1], k, repeats))
            for name in names
        }
        implied = sum(scaled_factors[name] @ prior_u[name].reshape(-1, k * repeats) for name in names)
        implied = implied.reshape(model.n, k, repeats)
        implied += np.sqrt(noise)[:, :, None] * rng.standard_normal((model.n, k, repeats))
        rhs = np.concatenate([r[:, :, None], r[:, :, None] - implied], axis=2)  # (n, k, 1 + repeats)
        Z = (U.T @ rhs.reshape(model.n, -1)).reshape(rhs.shape) if rotated else rhs
        alpha = np.empty_like(Z)
        for j in range(k):
            alpha[:, j] = _solve(model, {name: s2[name][j] for name in names}, noise[:, j], Z[:, j], rotated=rotated)
        if rotated:
            alpha = (U @ alpha.reshape(model.n, -1)).reshape(alpha.shape)
        total_mean = total_draw = 0.0
        for name in names:
            F_alpha = (scaled_factors[name].T @ alpha.reshape(model.n, -1)).reshape(-1, k, 1 + repeats)
            u_mean = s2[name][None, :] * F_alpha[:, :, 0]
            u_draw = prior_u[name] + s2[name][None, :, None] * F_alpha[:, :, 1:]
            L = factors[name]
            g_mean = L @ u_mean
            g_draw = (L @ u_draw.reshape(L.shape[1], -1)).reshape(-1, k, repeats)
            _add(g_acc[name], g_mean, g_draw)
            if name in b_acc:
                _add(b_acc[name], u_mean, u_draw)
            total_mean = total_mean + g_mean
            total_draw = total_draw + g_draw
        _add(total_acc, total_mean, total_draw)
    return (
        {name: acc.result() for name, acc in g_acc.items()},
        total_acc.result(),
        {name: acc.result() for name, acc in b_acc.items()},
    )


def _add(acc: _Accumulator, mean: np.ndarray, draws: np.ndarray) -> None:
    """Add a chunk of thetas: conditional means (len, k) and exact draws (len, k, repeats) of each conditional."""
    within = ((draws - mean[:, :, None]) ** 2).mean(2)
    acc.add(mean, within)
