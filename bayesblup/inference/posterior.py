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
var_d E[g | theta_d]`` (the lecture notes' Stat 1).

With repeated or weighted records the same holds on the individuals' weighted mean records, in the
eigenbasis of ``S K S`` with ``S = diag(sqrt(W_i))`` (:mod:`bayesblup.models.model`): with ``d_k =
sigma2_k lam_k + nu`` and ``nu = sigma2_e (+ W sigma2_pe)``, ``E[g | y, theta] = S^-1 U diag(w) r*``
and ``Var[g | y, theta] = S^-1 U diag(w nu) U' S^-1``. Draws are processed in chunks, so memory stays at a few
n x chunk arrays whatever the number of draws.

On the low-rank path (W with fewer columns than records; ``data.thin``) the same formulas run over the r
components of non-zero eigenvalue, with U in factored form (``S^-1 U = W a B``). The null space has ``w_k = 0``:
it adds nothing to g's conditional mean or variance, and nothing to a target's whose covariance with the records
lies in the kernel's column space (``M = R W'``, :class:`~bayesblup.models.data.MarkerRows`: ``M S P = 0``); the
fixed effects' generalised least squares add its Gram matrix (``data.null_gram / nu``).

Several kernels (:func:`set_moments`): genetic values per kernel, in total, and marker effects.

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
theta (as above): the mean from the exact conditional means, the within-draw
variance from the squared deviation of each exact draw from its conditional mean (an unbiased
estimate; with D draws its relative Monte Carlo error is about ``sqrt(2 / D)``, 3% for 2000
draws, 1.6% on the sd). At most ``max_draws`` draws of theta are used (evenly thinned), and each
gets several Matheron draws when there are fewer than ``min_samples`` (MAP: one theta).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..linalg.canonical import canonical
from ..models.data import KernelsData, MarkerRows, MultiTraitData, SpectralData

__all__ = [
    "Moments",
    "conditional_fixed_effects",
    "conditional_genetic_values",
    "matheron_chunks",
    "multitrait_moments",
    "posterior_moments",
    "set_moments",
]

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
    data: SpectralData,
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
    (``pe_path == "augmented"``) give its value ``excess`` too, and the moments are
    conditional on it.
    """
    _check_pe(data, sigma2_pe, excess)
    nu = _noise(data, sigma2_e, sigma2_pe)
    d = sigma2_k * data.lam + nu
    w = sigma2_k * data.lam / d
    r = _residuals(data, mu, beta, excess)[:, 0]
    return data.genetic_dot(w * r), data.genetic_row_squares(w * nu)


def conditional_fixed_effects(
    data: SpectralData,
    sigma2_k: float,
    sigma2_e: float,
    *,
    sigma2_pe: float | None = None,
    excess: np.ndarray | None = None,
) -> np.ndarray:
    """``E[(mu, beta) | y, theta]`` under a flat prior: generalised least squares, ``(mu, beta_1, ...)``.

    The rotated means give ``X*' V*^-1 X*``; with repeated records the within-individual scatter adds
    ``C / sigma2_e`` (covariates that vary within an individual are also estimated from the
    differences between its records). Henderson's equations give the same beta.
    """
    _check_pe(data, sigma2_pe, excess)
    nu = _noise(data, sigma2_e, sigma2_pe)
    d = sigma2_k * data.lam + nu
    X1 = data.one[:, None] if data.X is None else np.hstack([data.one[:, None], data.X])
    y = data.y if excess is None else data.y - data.rotate_scaled(np.asarray(excess, dtype=np.float64))
    lhs = X1.T @ (X1 / d[:, None])
    rhs = X1.T @ (y / d)
    if data.null_dim:  # the null space, variance nu: [S 1, S Xbar]'P [S 1, S Xbar] / nu and its [.]'P S ybar / nu
        lhs += data.null_gram[1:, 1:] / nu
        rhs += data.null_gram[1:, 0] / nu
    if data.within is not None and data.X is not None:
        _, b, C, _, _ = data.within
        lhs[1:, 1:] += C / sigma2_e
        rhs[1:] += b / sigma2_e
    return np.linalg.solve(lhs, rhs)


def _check_pe(data: SpectralData, sigma2_pe, excess) -> None:
    """Refuse a missing ``sigma2_pe`` or ``excess`` (values or draws) where the model needs them."""
    if data.permanent_environment and sigma2_pe is None:
        raise ValueError("this model has a permanent-environment effect: give sigma2_pe.")
    if data.excess is not None and excess is None:
        raise ValueError("this model samples a residual excess (unequal total weights with p): give excess.")


def posterior_moments(
    data: SpectralData,
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
    data : SpectralData
        The single-kernel marginal form's data (``model.spectral_data``; its decomposition is reused).
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
    _check_pe(data, sigma2_pe, excess)
    lam = data.lam
    n, n_draws = lam.size, mu.size  # n: the components (r on the low-rank path)
    rng = np.random.default_rng(seed)
    # One pass over the draws keeps, per draw, only what is linear in the rotated data: x = w r for
    # g (E[g | theta] = S^-1 U x) and x = sigma2_k r / d for the targets (E[T | theta] = M S U x). The
    # within-draw variances are linear in per-component averages. So U, and each target's M S U,
    # multiply a few vectors rather than every draw (see _between for the variance between draws).
    x_g = np.empty((n, n_draws))
    within_g = np.zeros(n)
    x_t = np.empty((n, n_draws)) if targets else None
    within_t = np.zeros(n)  # sum over draws of sigma2_k^2 / d_k
    kept = []
    for start in range(0, n_draws, _CHUNK):
        sl = slice(start, start + _CHUNK)
        sk = sigma2_k[sl][None, :]
        nu = _noise(data, sigma2_e[sl][None, :], None if sigma2_pe is None else sigma2_pe[sl][None, :])
        d = sk * lam[:, None] + nu  # (n, chunk)
        r = _residuals(data, mu[sl], None if beta is None else beta[sl], None if excess is None else excess[sl])
        w = sk * lam[:, None] / d
        x_g[:, sl] = w * r
        within_g += (w * nu).sum(1)
        if x_t is not None:
            x_t[:, sl] = sk / d * r
            within_t += (sk**2 / d).sum(1)
        if keep_draws is not None and keep_draws[sl].any():
            pick = keep_draws[sl]
            noise = np.sqrt(w * nu)[:, pick] * rng.standard_normal((n, int(pick.sum())))
            kept.append(data.genetic_dot(x_g[:, sl][:, pick] + noise).T)
    draws = np.concatenate(kept) if kept else None

    within = data.genetic_row_squares(within_g / n_draws)
    if data.thin is None:
        inv = _inverse_scale(data)
        s = np.ones(n) if data.scale is None else data.scale
        SU = s[:, None] * data.vectors  # Cov(T, S ybar) = sigma2_k M S, so A = M S U
        g = _moments(inv[:, None] * data.vectors, x_g, within, overwrite=True)
    else:  # S^-1 U = W (a B): W times a few vectors, never U itself
        thin = data.thin
        # R = a B applied to a few vectors (a B whole would be a copy of the m x r basis: 512 MB at m = 8000)
        g = _moments(thin.factor, x_g, within, right=lambda z: thin.coef * (thin.basis @ z), overwrite=True)
    g = Moments(mean=g.mean, sd=g.sd, draws=draws)
    extra = {}
    if x_t is not None:
        basis = _between_basis(x_t, overwrite=True)  # x_t is not needed after its basis
        prior = float(sigma2_k.mean())
        for name, (M, v) in targets.items():
            v = np.asarray(v, dtype=np.float64)
            if data.thin is not None:  # A = M S U whole: targets x r, r < n (marker space: never n columns)
                A = data.target_rotation(M)
                within = prior * v - (A**2) @ (within_t / n_draws)
                extra[name] = _moments(A, x_t, within, basis=basis)
                continue
            if isinstance(M, MarkerRows):
                raise ValueError("marker-space targets (MarkerRows) belong to the low-rank path.")
            M = np.asarray(M, dtype=np.float64)
            # Var[T_j | theta] = sigma2_k v_j - sigma2_k^2 sum_k A_jk^2 / d_k, averaged over the draws:
            # rows of A a block at a time (for marker effects A is m x n: never whole in memory).
            extra[name] = _moments(M, x_t, prior * v - _weighted_squares(M, SU, within_t / n_draws, prior * v),
                                   right=SU, basis=basis)  # fmt: skip
    return g, extra


_ROWS = 2048  # rows of a target's A = M S U formed at once
#: Above this many multiply-adds, A = M S U is formed in float32 (twice as fast; marker effects at n = 5000,
#: m = 50,000 take 1.25e12): it puts a relative error of about 4e-8 into sum_k A_jk^2 u_k.
FLOAT32_ABOVE = 2e10


def _weighted_squares(M: np.ndarray, SU: np.ndarray, u: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """``sum_k A_jk^2 u_k`` for ``A = M SU``, rows of A a block at a time (A is never whole in memory).

    In float32 above :data:`FLOAT32_ABOVE`; a row whose sum comes within 10% of its prior variance
    (the posterior variance is their difference, so a relative error there grows tenfold or more) is
    recomputed in float64, so the variances keep a relative error below about 1e-6.
    """
    single = M.shape[0] * SU.shape[0] * SU.shape[1] > FLOAT32_ABOVE
    SU32 = SU.astype(np.float32) if single else None
    out = np.empty(M.shape[0])
    for b0 in range(0, M.shape[0], _ROWS):
        rows = slice(b0, b0 + _ROWS)
        if single:
            A = (np.asarray(M[rows], dtype=np.float32) @ SU32).astype(np.float64)
        else:
            A = M[rows] @ SU
        out[rows] = (A**2) @ u
        if single:
            risky = np.flatnonzero(out[rows] > 0.9 * prior[rows])
            if risky.size:
                out[b0 + risky] = ((M[b0 + risky] @ SU) ** 2) @ u
    return out


def _between_basis(x: np.ndarray, *, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(mean, Q, C)`` with the draws' covariance ``cov(x) ~= Q C Q'`` (``/D``), Q orthonormal.

    The x of a draw is a smooth function of a few parameters (mu, the variance ratio, beta), so its
    spread over thousands of draws spans few directions. A randomised range finder (Halko et al.
    2011) grows Q until it leaves less than 1e-13 of the spread out; a target's between-draw
    variances then cost ``A Q`` instead of ``A`` times every draw. Where the draws span many directions
    (several traits with missing records: x depends on each draw of them), the finder stops at a quarter
    of ``min(n, D)`` and returns ``(mean, None, centred x)``: the variances are then ``A`` times every draw,
    cheaper than a basis as wide as the draws (at n = 2000, D = 4000, three traits: 11.6 s of genetic
    values with the basis grown to 2048).
    """
    mean = x.mean(axis=1)
    if overwrite:  # x is the caller's scratch: centred in place, no second components x draws array
        xc = x
        xc -= mean[:, None]
    else:
        xc = x - mean[:, None]
    n, n_draws = xc.shape
    total = float((xc**2).sum())
    if total == 0.0:
        return mean, np.zeros((n, 0)), np.zeros((0, 0))
    rng = np.random.default_rng(20261127)  # fixed: the basis changes nothing above the tolerance
    k = min(32, n, n_draws)
    widest = max(32, min(n, n_draws) // 4)
    while True:
        Q, _ = np.linalg.qr(xc @ rng.standard_normal((n_draws, k)))
        B = Q.T @ xc
        if total - float((B**2).sum()) <= 1e-13 * total or k >= min(n, n_draws):
            return mean, Q, (B @ B.T) / n_draws
        if 2 * k > widest:
            return mean, None, xc
        k = min(2 * k, n, n_draws)


def _moments(M, x, within, *, right=None, basis=None, overwrite: bool = False) -> Moments:
    """Mean and sd of ``T = M R x`` over the draws (columns of x), with R = ``right`` (a matrix, a function, or I).

    ``E[T] = M R mean(x)``; ``Var[T_j] = within_j + (M R Q C Q' R' M')_jj``.
    """
    mean, Q, C = _between_basis(x, overwrite=overwrite) if basis is None else basis
    if right is None:
        R = lambda a: a  # noqa: E731
    elif callable(right):
        R = right
    else:
        R = lambda a: right @ a  # noqa: E731
    if Q is None:  # no narrow basis: C holds the centred draws, and A times every draw, a block of rows at a time
        RC = R(C)
        between = np.empty(M.shape[0])
        for b0 in range(0, M.shape[0], _ROWS):
            between[b0 : b0 + _ROWS] = ((M[b0 : b0 + _ROWS] @ RC) ** 2).mean(axis=1)
    else:
        AQ = M @ R(Q)
        between = ((AQ @ C) * AQ).sum(axis=1)
    return Moments(mean=M @ R(mean), sd=np.sqrt(np.maximum(within + between, 0.0)))


_CHUNK_COLUMNS = 128  # right-hand sides per batch of thetas


def _solve(data: KernelsData, sigma2: dict, noise: np.ndarray, Z: np.ndarray, *, rotated: bool) -> np.ndarray:
    """``V^-1 v`` for the columns of one theta: on the Woodbury path ``Z = U'v`` and the result is ``U'V^-1 v``."""
    if rotated:
        lam, A = data.lam, data.A
        nu = float(noise[0])
        d = sigma2[data.background] * lam + nu
        root = np.concatenate([np.full(w, np.sqrt(sigma2[k])) for k, w in zip(data.low, data.blocks, strict=True)])
        M, _ = data.resolvent(np.log(sigma2[data.background] / nu))  # A'(I + rho Lambda)^-1 A
        C = root[:, None] * M * root[None, :] / nu + np.eye(root.size)
        t = Z / d[:, None]
        return t - (A @ (root[:, None] * np.linalg.solve(C, root[:, None] * (A.T @ t)))) / d[:, None]
    V = sum(sigma2[name] * data.kernels[name] for name in data.names)
    V[np.diag_indices_from(V)] += noise
    return np.linalg.solve(V, Z)


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """At most ``k`` indices of ``range(n)``, evenly spaced from the first to the last (draws thinned)."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def set_moments(
    data: KernelsData,
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
    data : KernelsData
        The marginal form of several kernels (``model.kernels_data``).
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
    names = data.names
    D = mu.size
    used = evenly_spaced(D, max_draws)
    repeats = max(1, -(-min_samples // used.size))
    g_acc = {name: _Accumulator() for name in names}
    total_acc = _Accumulator()
    b_acc = {name: _Accumulator() for name in data.marker_effects}
    chunks = matheron_chunks(
        data, mu, sigma2, sigma2_e, beta=beta, sigma2_pe=sigma2_pe, used=used, repeats=repeats,
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    for parts in chunks:
        total_mean = total_draw = 0.0
        for name, (u_mean, u_draw, g_mean, g_draw) in parts.items():
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


def matheron_chunks(
    data: KernelsData,
    mu: np.ndarray,
    sigma2: dict[str, np.ndarray],
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None,
    sigma2_pe: np.ndarray | None,
    used: np.ndarray,
    repeats: int,
    rng,
):
    """Matheron's exact draws of every set's effects given the thetas ``used`` (indices into the draws), by chunks.

    Yields, per chunk of k thetas, ``{set: (u_mean (w, k), u_draw (w, k, repeats), g_mean (N, k), g_draw (N, k,
    repeats))}``: the conditional mean of the set's effect u_k (``g_k = L_k u_k``, module docstring) and ``repeats``
    exact draws of it given each theta, and the same for g_k over every individual (records first). ``rng`` is
    anything with numpy's ``standard_normal(shape)``: per chunk, each set's prior draw ``(w_k, k, repeats)`` in set
    order, then the records' noise ``(n, k, repeats)``.
    """
    y, one, X, s, n = data.y, data.one, data.X, data.scale, data.n
    a, b = data.noise
    a = np.full(n, float(a)) if np.ndim(a) == 0 else np.asarray(a, dtype=np.float64)
    rotated = data.path == "woodbury"
    U = data.U if rotated else None
    names = data.names
    factors = data.effects
    scaled_factors = {name: s[:, None] * factors[name][:n] for name in names}
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
        implied = implied.reshape(n, k, repeats)
        implied += np.sqrt(noise)[:, :, None] * rng.standard_normal((n, k, repeats))
        rhs = np.concatenate([r[:, :, None], r[:, :, None] - implied], axis=2)  # (n, k, 1 + repeats)
        Z = (U.T @ rhs.reshape(n, -1)).reshape(rhs.shape) if rotated else rhs
        alpha = np.empty_like(Z)
        for j in range(k):
            alpha[:, j] = _solve(data, {name: s2[name][j] for name in names}, noise[:, j], Z[:, j], rotated=rotated)
        if rotated:
            alpha = (U @ alpha.reshape(n, -1)).reshape(alpha.shape)
        parts = {}
        for name in names:
            F_alpha = (scaled_factors[name].T @ alpha.reshape(n, -1)).reshape(-1, k, 1 + repeats)
            u_mean = s2[name][None, :] * F_alpha[:, :, 0]
            u_draw = prior_u[name] + s2[name][None, :, None] * F_alpha[:, :, 1:]
            L = factors[name]
            g_mean = L @ u_mean
            g_draw = (L @ u_draw.reshape(L.shape[1], -1)).reshape(-1, k, repeats)
            parts[name] = (u_mean, u_draw, g_mean, g_draw)
        yield parts


def _add(acc: _Accumulator, mean: np.ndarray, draws: np.ndarray) -> None:
    """Add a chunk of thetas: conditional means (len, k) and exact draws (len, k, repeats) of each conditional."""
    within = ((draws - mean[:, :, None]) ** 2).mean(2)
    acc.add(mean, within)


# --- several traits --------------------------------------------------------------------------------


def multitrait_moments(
    data: MultiTraitData,
    mu: np.ndarray,
    Sigma_k: np.ndarray,
    Sigma_e: np.ndarray,
    *,
    B: np.ndarray | None = None,
    missing: np.ndarray | None = None,
    targets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    offsets: dict[str, np.ndarray] | None = None,
) -> tuple[list[Moments], dict[str, list[Moments]]]:
    """Posterior mean and sd of each trait's genetic values (phenotyped individuals) and of other targets.

    Given theta and the completed records, component k of the rotated data has ``y*_k ~ N(m_k, V_k)``,
    ``V_k = lam_k Sigma_k + Sigma_e``, and with ``x_k = Sigma_k V_k^-1 r*_k`` (a t-vector)

        E[g | Y, theta] = U diag(lam) X,
        Var[g_ij | Y, theta] = sum_k U_ik^2 (lam_k Sigma_k - lam_k^2 Sigma_k V_k^-1 Sigma_k)_jj;

    a target T with ``Cov(T_:,j, y*_k,l) = (M U)_:,k Sigma_k,jl`` (individuals without a record: M = G_21 on
    K's scale; marker effects: M = W') has ``E[T_:,j] = (M U) X_:,j`` and ``Var = Sigma_k,jj v - sum_k
    (M U)_:k^2 (Sigma_k V_k^-1 Sigma_k)_jj``. Draws of theta (and of the missing records) are combined by
    the laws of total expectation and variance, trait by trait, as for one trait.

    Parameters
    ----------
    data : MultiTraitData
    mu : ndarray (D, t)
    Sigma_k, Sigma_e : ndarray (D, t, t)
        The kernel's covariance (``Sigma_g``, or ``Sigma_b`` for marker effects) and the residual one.
    B : ndarray (D, q, t), optional
    missing : ndarray (D, n_missing), optional
        Draws of the missing records.
    targets : dict, optional
        ``{name: (M, v)}`` as in :func:`posterior_moments`.
    offsets : dict, optional
        Draws of genetic values of other kernels, explicit in the model (several kernels,
        :func:`bayesblup.models.multitrait.explicit_effects`): ``"g"`` (D, n, t) at the phenotyped
        individuals, subtracted from the records before the integrated kernel's conditional, and added
        to its genetic values, and per target name (D, len, t) added to that target. The moments
        returned are then the totals', by the laws of total expectation and variance over the joint
        draws; the integrated kernel's own come back in ``extra["integrated"]`` (and
        ``extra["<target>_integrated"]``).

    Returns
    -------
    (list of Moments, dict of str to list of Moments)
        Per trait, the phenotyped individuals' genetic values, and per target its moments per trait.
    """
    offsets = offsets or {}
    U, lam = data.vectors, data.lam
    n, t = data.Y.shape
    D = mu.shape[0]
    x = np.empty((t, n, D))
    within_g = np.zeros((t, n))  # sum over draws of the per-component conditional variances of g*
    within_t = np.zeros((t, n))  # sum over draws of (Sigma_k V^-1 Sigma_k)_jj per component
    for start in range(0, D, _CHUNK):
        sl = slice(start, min(start + _CHUNK, D))
        R = data.rotated_residuals(mu[sl], None if B is None else B[sl], None if missing is None else missing[sl])
        if "g" in offsets:  # U' times the explicit kernels' genetic values, draw by draw
            R -= np.einsum("ik,dit->dkt", U, offsets["g"][sl], optimize=True)
        Sk = Sigma_k[sl]  # (d, t, t)
        # In the canonical basis (P P' = Sigma_e, P diag(e) P' = Sigma_k) every V_k is diagonal: one t x t
        # factorisation per draw instead of one per component (bayesblup.linalg.canonical)
        P, P_inv, e = canonical(Sk, Sigma_e[sl])
        lam_e = lam[None, :, None] * e[:, None, :] + 1.0  # (d, n, t): V_k = P diag(lam_k e + 1) P'
        w = np.einsum("dij,dkj->dki", P_inv, R) * (e[:, None, :] / lam_e)
        x[:, :, sl] = np.einsum("dij,dkj->dki", P, w).transpose(2, 1, 0)  # Sigma_k V_k^-1 r*_k
        diag_SVS = np.einsum("dji,dki->dkj", P**2, e[:, None, :] ** 2 / lam_e)  # diag of Sigma_k V_k^-1 Sigma_k
        diag_Sk = np.einsum("djj->dj", Sk)  # (d, t)
        within_g += (lam[None, :, None] * diag_Sk[:, None, :] - lam[None, :, None] ** 2 * diag_SVS).sum(0).T
        within_t += diag_SVS.sum(0).T
    g = []
    extra: dict[str, list[Moments]] = {}
    for j in range(t):
        within = (U**2) @ (within_g[j] / D)
        g.append(_moments(U, lam[:, None] * x[j], within))
        if "g" in offsets:
            extra.setdefault("integrated", []).append(g[j])
            g[j] = _offset_moments(U @ (lam[:, None] * x[j]), offsets["g"][:, :, j], within)
    prior_k = Sigma_k.mean(axis=0)  # (t, t)
    for name, (M, v) in (targets or {}).items():
        M = np.asarray(M, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        extra[name] = []
        MU = M @ U if name in offsets else None
        for j in range(t):
            prior = prior_k[j, j] * v
            within = prior - _weighted_squares(M, U, within_t[j] / D, prior)
            extra[name].append(_moments(M, x[j], within, right=U))
            if name in offsets:
                extra.setdefault(f"{name}_integrated", []).append(extra[name][j])
                extra[name][j] = _offset_moments(MU @ x[j], offsets[name][:, :, j], within)
    return g, extra


def _offset_moments(conditional: np.ndarray, offset: np.ndarray, within: np.ndarray) -> Moments:
    """Mean and sd of ``T = A x + o`` over the joint draws: ``conditional`` (len, D) holds ``A x``, ``offset`` (D, len).

    ``Var = within + var over the draws of (A x_d + o_d)``, the between part with divisor D as in :func:`_moments`.
    """
    T = conditional + offset.T
    mean = T.mean(axis=1)
    between = ((T - mean[:, None]) ** 2).mean(axis=1)
    return Moments(mean=mean, sd=np.sqrt(np.maximum(within + between, 0.0)))
