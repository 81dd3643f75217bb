"""Convergence diagnostics of MCMC draws: rank-normalised split R-hat, bulk and tail ESS.

The same estimators as ArviZ's ``rhat`` (method ``"rank"``) and ``ess`` (methods ``"bulk"`` and
``"tail"``), following Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC", Bayesian Analysis
16(2): rank-normalise the split chains, then Geyer's initial monotone sequence on the autocorrelations
(computed by FFT). The test suite holds them equal to ArviZ's to rounding.

Why not call ArviZ: importing it takes about 1.5 s (its LOO and plotting modules, ``scipy.stats``),
more than a whole fit of the wheat data draws; a fit's summary needs these three numbers only. ArviZ
stays what a user reaches for with the fit's DataTree.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len
from scipy.special import ndtri

__all__ = ["ess_bulk", "ess_tail", "rhat"]


def _valid(x: np.ndarray, *, min_chains: int) -> bool:
    return x.ndim == 2 and x.shape[1] >= 4 and x.shape[0] >= min_chains and not np.isnan(x).any()


def _split(x: np.ndarray) -> np.ndarray:
    """Each chain's first and last half as chains of their own (an odd middle draw is left out)."""
    half = x.shape[1] // 2
    return np.vstack((x[:, :half], x[:, -half:]))


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks (ties take their average rank; Blom's offset 3/8)."""
    values, inverse, counts = np.unique(x.ravel(), return_inverse=True, return_counts=True)
    del values
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # scipy.stats.rankdata(method="average")
    rank = average_rank[inverse]
    return ndtri((rank - 3 / 8) / (x.size - 2 * (3 / 8) + 1)).reshape(x.shape)


def _rhat(x: np.ndarray) -> float:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1))
    with np.errstate(invalid="ignore", divide="ignore"):  # constant draws: NaN, as ArviZ gives
        return float(np.sqrt((between / within + n - 1) / n))


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain at every lag (divisor n), by FFT."""
    n = x.shape[1]
    m = next_fast_len(2 * n)
    centred = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(centred, n=m, axis=1)
    f *= np.conjugate(f)
    return np.fft.irfft(f, n=m, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    """ESS of a (chain, draw) array: Geyer's initial monotone sequence over the chains' autocorrelations."""
    x = np.asarray(x, dtype=np.float64)
    if np.max(x) - np.min(x) < np.finfo(float).resolution:
        return float(x.size)
    n_chain, n_draw = x.shape
    mean_acov = _autocov(x).mean(axis=0)  # averaged over the chains, lag by lag
    mean_var = mean_acov[0] * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    rho = np.zeros(n_draw)
    rho_even, rho_odd = 1.0, 1.0 - (mean_var - mean_acov[1]) / var_plus
    rho[0], rho[1] = rho_even, rho_odd
    # Geyer's initial positive sequence: sums of adjacent pairs while they stay positive
    t = 1
    while t < n_draw - 3 and rho_even + rho_odd > 0.0:
        rho_even = 1.0 - (mean_var - mean_acov[t + 1]) / var_plus
        rho_odd = 1.0 - (mean_var - mean_acov[t + 2]) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t + 1], rho[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    # ... made monotone
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    total = n_chain * n_draw
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1 / np.log10(total))
    return float(np.nan if np.isnan(rho).any() else total / tau)


def rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat of one quantity's ``(chain, draw)`` draws: the larger of bulk and folded.

    NaN with fewer than 2 chains or 4 draws, or with a NaN draw.
    """
    x = np.asarray(x, dtype=np.float64)
    if not _valid(x, min_chains=2):
        return np.nan
    split = _split(x)
    return max(_rhat(_z_scale(split)), _rhat(_z_scale(np.abs(split - np.median(split)))))


def ess_bulk(x: np.ndarray) -> float:
    """Bulk ESS: the ESS of the rank-normalised split chains."""
    x = np.asarray(x, dtype=np.float64)
    if not _valid(x, min_chains=1):
        return np.nan
    return _ess(_z_scale(_split(x)))


def ess_tail(x: np.ndarray, prob: tuple[float, float] = (0.05, 0.95)) -> float:
    """Tail ESS: the smaller ESS of the indicators ``x <= q`` at the quantiles ``prob`` (pooled draws)."""
    x = np.asarray(x, dtype=np.float64)
    if not _valid(x, min_chains=1):
        return np.nan
    return min(_ess(_split(x <= np.quantile(x, p))) for p in prob)
