"""Posterior draws as flat arrays, the form the conditional computations of :mod:`bayesblup.inference` take.

Shared by the fit's tables (:mod:`.fit`), the selection lists (:mod:`.selection`) and the pointwise densities
(:mod:`.loo`): chains and draws flattened into one axis, in PyMC's (chain, draw) order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["beta_draws", "flat_draws", "theta_draws"]


def flat_draws(post, name: str) -> np.ndarray:
    """Draws of a scalar parameter, (D,)."""
    return np.asarray(post[name].values, dtype=np.float64).reshape(-1)


def beta_draws(post, model) -> np.ndarray | None:
    """Draws of the fixed effects, (D, q), or None without covariates."""
    if model.records.X is None:
        return None
    return np.asarray(post["beta"].values, dtype=np.float64).reshape(-1, model.records.n_covariates)


def theta_draws(post, model) -> dict:
    """Flattened draws of everything ``posterior_moments`` conditions on (one kernel)."""
    out = {
        "mu": flat_draws(post, "mu"),
        "sigma2_k": flat_draws(post, model.kernels[0].variance_name),
        "sigma2_e": flat_draws(post, "sigma2_e"),
        "beta": beta_draws(post, model),
    }
    if model.permanent_environment:
        out["sigma2_pe"] = flat_draws(post, "sigma2_pe")
    if model.samples_excess:  # eps = sqrt(sigma2_e Delta) z, per draw
        z = np.asarray(post["z_excess"].values, dtype=np.float64).reshape(-1, model.n)
        out["excess"] = np.sqrt(out["sigma2_e"][:, None] * model.spectral_data.excess[None, :]) * z
    return out
