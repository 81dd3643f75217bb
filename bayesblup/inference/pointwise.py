"""Pointwise log-likelihoods and posterior predictive draws, per record and per draw, for LOO and PPC.

**Why the conditional density.** In the marginal form g is integrated out, so the records are not
independent given the parameters ``theta = (mu, beta, the variances)``: ``y ~ N(X1 theta_f, V)`` with a dense
``V``. PSIS-LOO needs, for each record i, a log density whose exponent is the importance ratio between the
posterior with and without that record. For a non-factorised model that is the conditional density::

    log p(y_i | y_-i, theta),     y_i | y_-i, theta ~ N(y_i - [V^-1 r]_i / [V^-1]_ii,  1 / [V^-1]_ii),

with ``r = y - mu 1 - X beta`` (Bürkner, Gabry and Vehtari 2021, "Efficient leave-one-out cross-validation for
Bayesian non-factorized normal and Student-t models", Computational Statistics 36:1243-1261, eq 8-9). Since
``p(y | theta) = p(y_i | y_-i, theta) p(y_-i | theta)``, ``p(theta | y_-i) / p(theta | y) ∝ 1 / p(y_i | y_-i,
theta)``: PSIS-LOO with these terms estimates the exact LOO predictive density ``p(y_i | y_-i)``. Not the
marginal density of each rotated component (a component mixes every record: leaving one out is not leaving a
record out), nor ``p(y_i | g, theta)``, which needs g (not in a marginal posterior) and whose importance ratios
are far heavier-tailed (g_i moves with y_i). The sum over records is *not* ``log p(y | theta)``
(the chain rule multiplies conditionals on ever smaller sets, ``p(y_1) p(y_2 | y_1) ...``), and need not be.

**Records, weights, a permanent environment.** With records ``y = mu + X beta + Z u + e``, ``Var(e) = E =
sigma2_e diag(1/w)``, ``u`` the individual-level effects (``sum_k g_k``, plus p) of covariance A, and the
individuals' weighted means ``ybar`` of covariance ``Vbar = A + sigma2_e diag(1/W)`` (``W_j`` the total weight),
Woodbury's identity twice gives, for record i of individual j::

    [V^-1 r]_i = (w_i / sigma2_e) (r_i - rbar_j) + (w_i / W_j) [Vbar^-1 rbar]_j,
    [V^-1]_ii  = (w_i / sigma2_e) (W_j - w_i) / W_j + (w_i / W_j)^2 [Vbar^-1]_jj,

so every record follows from two vectors over the individuals, ``Vbar^-1 rbar`` and ``diag(Vbar^-1)``. These come
from the model's own path (:class:`~bayesblup.models.data.SpectralData`, :class:`~bayesblup.models.data.
KernelsData`), with ``S Vbar S = V~`` the matrix it decomposes:

one kernel, ``V~ = U diag(d) U'``
    ``Vbar^-1 rbar = S U (r* / d)`` and ``diag(Vbar^-1) = S^2 (U∘U)(1/d)``, ``r* = U'S rbar`` the rotated residual
    the model already has: two (n x n)(n x D) products over the D draws, chunked. On the low-rank path the null
    space adds ``(I - U U') / nu``: ``diag = S^2 (1/nu + (U∘U)(1/d - 1/nu))``.
several kernels, the Woodbury path
    ``V~ = U (D + A Sigma A') U'`` in the background's eigenbasis. ``V~^-1 r~`` costs one rotation per draw;
    ``diag(V~^-1) = (U∘U)(1/d) - rowsq(U D^-1 A Sigma^1/2 L^-T)``, ``L L' = I + Sigma^1/2 A'D^-1 A Sigma^1/2``. The
    matrix ``[1/d_kd]`` over components and draws depends on a draw through one ratio ``sigma2_b / nu`` and its
    scale, so it has a numerically low rank q (a randomised range finder keeps it to 1e-14): ``U D_d^-1 A`` is
    then a combination of q fixed n x R matrices, and a draw costs ``O(n R (q + R))`` instead of ``O(n^2 R)``.
several kernels, the dense path (and one kernel with unequal total weights and a permanent environment)
    ``V~`` formed and factorised per draw, ``O(n^3)`` each.

mu and beta are parameters of every posterior (NUTS samples them; the quadrature draws them from their exact
conditional), so the density is conditional on them as on the variances. A residual excess the sampler moved
(``z_excess``, unequal weights with a permanent environment) is integrated out: the density is that of the
model with it marginalised, which is the same model.

**The latent form** (``form="latent"``, and the binary and ordinal traits) has g in the posterior and the records
independent given it: ``log p(y_i | g, theta)``, a normal density or the probit's
``log[Phi(tau_k - eta_i) - Phi(tau_{k-1} - eta_i)]``. Its importance ratios can be heavy-tailed (a record moves
its own g_i), and ArviZ's Pareto-k diagnostic says when.

**Posterior predictive.** The marginal form draws ``y_rep ~ N(mu 1 + X beta, V)`` per draw of theta (fresh
genetic values, permanent effects and residuals: exactly the model that was fitted, as
``pm.sample_posterior_predictive`` would draw it); the latent form draws ``y_rep ~ p(y | g, theta)`` with the
posterior's g.
"""

from __future__ import annotations

import numpy as np

from ..models.data import KernelsData, SpectralData
from ..phenotypes import Records

__all__ = [
    "dense_conditional",
    "kernels_conditional",
    "latent_gaussian_log_density",
    "marginal_predictive",
    "record_terms",
    "spectral_conditional",
    "threshold_log_density",
    "threshold_predictive",
]

#: Entries of a (rows x draws) block held at once (a few tens of MB).
_BLOCK = 1 << 22
_LOG_2PI = float(np.log(2 * np.pi))


def _chunks(D: int, rows: int):
    """Slices over the draws so that a (rows x chunk) array stays near :data:`_BLOCK` entries."""
    size = max(1, min(D, _BLOCK // max(rows, 1)))
    for start in range(0, D, size):
        yield slice(start, min(start + size, D))


def _noise(noise, sigma2_e: np.ndarray, sigma2_pe: np.ndarray | None):
    """``a sigma2_e + b sigma2_pe`` (a a number or a vector over the individuals), broadcast over draws (columns)."""
    a, b = noise
    a = np.asarray(a, dtype=np.float64)
    out = (a[:, None] if a.ndim else a) * sigma2_e[None, :]
    if b:
        out = out + b * sigma2_pe[None, :]
    return out


def _record_residuals(rec: Records, mu: np.ndarray, beta: np.ndarray | None) -> np.ndarray:
    """``y - mu 1 - X beta`` per record, for a chunk of draws: (N, c)."""
    r = rec.y[:, None] - mu[None, :]
    if rec.X is not None:
        r = r - rec.X @ beta.T
    return r


def record_terms(rec: Records, r: np.ndarray, sigma2_e: np.ndarray, alpha: np.ndarray, diag: np.ndarray):
    """``([V^-1 r]_i, [V^-1]_ii)`` per record from the individuals' ``Vbar^-1 rbar`` and ``diag(Vbar^-1)``.

    ``r`` (N, c) the records' residuals, ``alpha`` and ``diag`` (n, c) over the individuals (module docstring).
    """
    if rec.is_collapsible:  # one unweighted record each: the records are the means
        return alpha, diag
    j = rec.record_index
    w = rec.record_weights[:, None]
    W = rec.total_weight[j][:, None]
    rbar = rec.individual_means(r)[j]
    share = w / W
    Pr = (w / sigma2_e[None, :]) * (r - rbar) + share * alpha[j]
    Pii = (w / sigma2_e[None, :]) * ((W - w) / W) + share**2 * diag[j]
    return Pr, Pii


def _log_density(Pr: np.ndarray, Pii: np.ndarray) -> np.ndarray:
    """``log N(y_i; y_i - Pr_i / Pii_i, 1 / Pii_i)``."""
    return 0.5 * (np.log(Pii) - _LOG_2PI) - 0.5 * Pr**2 / Pii


def _scale(data) -> np.ndarray | None:
    return None if data.scale is None else np.asarray(data.scale, dtype=np.float64)


def spectral_conditional(
    data: SpectralData,
    rec: Records,
    mu: np.ndarray,
    sigma2_k: np.ndarray,
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None = None,
    sigma2_pe: np.ndarray | None = None,
) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` of every record at every draw (D, N): one kernel, marginal form.

    Parameters
    ----------
    data : SpectralData
        The model's marginal form (``model.spectral_data``); full or low-rank path.
    rec : Records
        The records the model was fitted to.
    mu, sigma2_k, sigma2_e : ndarray (D,)
        Draws, flattened over chains; ``beta`` (D, q) and ``sigma2_pe`` (D,) where the model has them.

    Notes
    -----
    The residual excess of the augmented path (a permanent environment with unequal total weights) is not
    diagonal in U's basis: that case goes through :func:`kernels_conditional`'s dense path (``data.excess`` set
    is refused here).
    """
    if data.excess is not None:
        raise ValueError("the augmented path is not diagonal in the eigenbasis: use the dense path.")
    lam = data.lam
    s = _scale(data)
    thin = data.thin
    U = thin.vectors() if thin is not None else data.vectors  # n x r (low-rank) or n x n
    U2 = U**2
    D = mu.size
    out = np.empty((D, rec.n_records))
    for sl in _chunks(D, max(U.shape[0], rec.n_records)):
        m = mu[sl]
        b = None if beta is None else beta[sl]
        nu = _noise(data.noise, sigma2_e[sl], None if sigma2_pe is None else sigma2_pe[sl])  # (1, c)
        d = sigma2_k[sl][None, :] * lam[:, None] + nu
        rstar = data.y[:, None] - data.one[:, None] * m[None, :]
        if data.X is not None:
            rstar = rstar - data.X @ b.T
        r = _record_residuals(rec, m, b)
        if thin is None:
            alpha = U @ (rstar / d)
            diag = U2 @ (1.0 / d)
        else:  # the null space, variance nu: (I - U U') / nu besides U diag(1/d) U'
            rbar = r if rec.is_collapsible else rec.individual_means(r)
            rtilde = rbar if s is None else s[:, None] * rbar
            alpha = rtilde / nu + U @ (rstar * (1.0 / d - 1.0 / nu))
            diag = 1.0 / nu + U2 @ (1.0 / d - 1.0 / nu)
        if s is not None:
            alpha = s[:, None] * alpha
            diag = (s**2)[:, None] * diag
        out[sl] = _log_density(*record_terms(rec, r, sigma2_e[sl], alpha, diag)).T
    return out


def _range_basis(H: np.ndarray, *, rtol: float = 1e-14) -> tuple[np.ndarray, np.ndarray]:
    """``(Q, B)`` with ``H ~= Q B``, Q orthonormal (n x q), to ``rtol`` of H's Frobenius norm (range finder)."""
    n, D = H.shape
    total = float((H**2).sum())
    rng = np.random.default_rng(20261204)  # fixed: the basis changes nothing above the tolerance
    k = min(16, n, D)
    while True:
        Q, _ = np.linalg.qr(H @ rng.standard_normal((D, k)))
        B = Q.T @ H
        if total - float((B**2).sum()) <= rtol**2 * total or k >= min(n, D):
            return Q, B
        k = min(2 * k, n, D)


def kernels_conditional(
    data: KernelsData,
    rec: Records,
    mu: np.ndarray,
    sigma2: dict[str, np.ndarray],
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None = None,
    sigma2_pe: np.ndarray | None = None,
) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` (D, N) for several kernels: the Woodbury or the dense path (module docstring).

    ``sigma2`` maps each kernel to its draws (D,); the rest as :func:`spectral_conditional`.
    """
    from scipy.linalg import lapack
    from threadpoolctl import threadpool_limits

    D = mu.size
    y, one, X, s = data.y, data.one, data.X, np.asarray(data.scale, dtype=np.float64)
    n = data.n
    if data.path != "woodbury":
        kernels = [data.kernels[name] for name in data.names]
        return dense_conditional(
            rec, (y, one, X), s, kernels, [sigma2[name] for name in data.names], data.noise, mu, sigma2_e,
            beta=beta, sigma2_pe=sigma2_pe,
        )  # fmt: skip
    out = np.empty((D, rec.n_records))
    rot = data.rotated
    U, lam, A = data.U, data.lam, data.A
    U2 = U**2
    R = A.shape[1]
    sb = np.asarray(sigma2[data.background], dtype=np.float64)
    nu = _noise((float(np.ravel(data.noise[0])[0]), data.noise[1]), sigma2_e, sigma2_pe)[0]  # (D,)
    Hinv = 1.0 / (sb[None, :] * lam[:, None] + nu[None, :])  # (n, D): 1/d over components and draws
    Q, B = _range_basis(Hinv)  # 1/d_d = Q B_:d
    q = Q.shape[1]
    # U D_d^-1 A = sum_m B_md U diag(Q_:m) A and A'D_d^-1 A = sum_m B_md A' diag(Q_:m) A: q fixed matrices each
    P = U @ (Q[:, :, None] * A[:, None, :]).reshape(n, q * R)  # (n, q R)
    P = np.ascontiguousarray(P.reshape(n, q, R).transpose(0, 2, 1)).reshape(n * R, q)
    AQA = np.einsum("km,kr,ks->rsm", Q, A, A, optimize=True).reshape(R * R, q)
    root_all = np.concatenate(
        [np.repeat(np.sqrt(np.asarray(sigma2[name], dtype=np.float64))[:, None], w, axis=1)
         for name, w in zip(data.low, data.blocks, strict=True)], axis=1,
    )  # (D, R): sqrt of each column's variance  # fmt: skip
    for sl in _chunks(D, max(n * R, rec.n_records)):
        c = sl.stop - sl.start
        m = mu[sl]
        bb = None if beta is None else beta[sl]
        d_inv, root = Hinv[:, sl], root_all[sl]  # (n, c), (c, R)
        C = (AQA @ B[:, sl]).T.reshape(c, R, R) * (root[:, :, None] * root[:, None, :])
        C[:, np.arange(R), np.arange(R)] += 1.0  # I + Sigma^1/2 A'D^-1 A Sigma^1/2, per draw
        rstar = rot["y"][:, None] - rot["one"][:, None] * m[None, :]
        if rot["X"] is not None:
            rstar = rstar - rot["X"] @ bb.T
        t1 = rstar * d_inv
        h = root * (A.T @ t1).T  # (c, R)
        PD = (P @ B[:, sl]).reshape(n, R, c).transpose(2, 0, 1) * root[:, None, :]  # U D^-1 A Sigma^1/2 per draw
        # A product per draw of R x R matrices: one BLAS thread (threads contending over so small a product cost 30x
        # the single thread's time on a loaded 2-core machine)
        with threadpool_limits(limits=1, user_api="blas"):
            L = np.linalg.cholesky(C)
            Linv = np.stack([lapack.dtrtri(Lj, lower=1)[0] for Lj in L])
            sol = root * np.matmul(Linv.transpose(0, 2, 1), np.matmul(Linv, h[:, :, None]))[:, :, 0]
            low = np.matmul(PD, Linv.transpose(0, 2, 1))
        alpha = s[:, None] * (U @ (t1 - (A @ sol.T) * d_inv))
        diag = (s**2)[:, None] * (U2 @ d_inv - (low**2).sum(axis=2).T)
        r = _record_residuals(rec, m, bb)
        out[sl] = _log_density(*record_terms(rec, r, sigma2_e[sl], alpha, diag)).T
    return out


def dense_conditional(
    rec: Records,
    means: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    scale: np.ndarray,
    kernels: list[np.ndarray],
    sigma2: list[np.ndarray],
    noise,
    mu: np.ndarray,
    sigma2_e: np.ndarray,
    *,
    beta: np.ndarray | None = None,
    sigma2_pe: np.ndarray | None = None,
) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` (D, N) with ``V~ = sum_k sigma2_k K_k + diag(a sigma2_e + b sigma2_pe)`` formed.

    ``means`` = ``(S ybar, S 1, S Xbar)``, ``scale`` S's diagonal, ``kernels`` the ``S K_k S`` and ``sigma2`` their
    draws, ``noise`` = ``(a, b)`` (a over the individuals, or one number). One Cholesky factor and its inverse per
    draw: O(n^3) each.
    """
    from scipy.linalg import lapack

    y, one, X = means
    n = y.size
    D = mu.size
    a, b = noise
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), (n,))
    out = np.empty((D, rec.n_records))
    for j in range(D):
        V = sum(float(s2[j]) * K for K, s2 in zip(kernels, sigma2, strict=True))
        V[np.diag_indices(n)] += a * sigma2_e[j] + (b * sigma2_pe[j] if b else 0.0)
        L, info = lapack.dpotrf(V, lower=1, clean=1, overwrite_a=1)
        if info:
            raise np.linalg.LinAlgError(f"V is not positive definite at draw {j}.")
        inv, info = lapack.dpotri(L, lower=1, overwrite_c=1)  # the lower triangle of V~^-1
        inv = np.tril(inv) + np.tril(inv, -1).T
        rtilde = y - one * mu[j] - (0.0 if X is None else X @ beta[j])
        alpha = scale * (inv @ rtilde)
        diag = scale**2 * np.diag(inv)
        r = _record_residuals(rec, mu[j : j + 1], None if beta is None else beta[j : j + 1])
        Pr, Pii = record_terms(rec, r, sigma2_e[j : j + 1], alpha[:, None], diag[:, None])
        out[j] = _log_density(Pr, Pii)[:, 0]
    return out


def latent_gaussian_log_density(rec: Records, eta: np.ndarray, sigma2_e: np.ndarray) -> np.ndarray:
    """``log N(y_i; eta_i, sigma2_e / w_i)`` (D, N): the latent form, ``eta`` (D, N) the records' means given g."""
    var = sigma2_e[:, None] / rec.record_weights[None, :]
    return -0.5 * (_LOG_2PI + np.log(var) + (rec.y[None, :] - eta) ** 2 / var)


def _log_interval(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``log(Phi(hi) - Phi(lo))`` for ``lo < hi`` (either infinite), stable in both tails."""
    from scipy.special import log_ndtr

    with np.errstate(invalid="ignore"):  # inf - inf where an unused branch meets an infinite bound
        upper = lo > 0  # both in the upper tail: Phi(-lo) - Phi(-hi)
        a = np.where(upper, -hi, lo)
        b = np.where(upper, -lo, hi)
        la, lb = log_ndtr(a), log_ndtr(b)
        x = np.minimum(la - lb, 0.0)
        # log(1 - e^x), accurate at both ends (Maechler 2012): log(-expm1(x)) near 0, log1p(-exp(x)) below -log 2
        return lb + np.where(x > -np.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def threshold_log_density(codes: np.ndarray, eta: np.ndarray, cutpoints: np.ndarray) -> np.ndarray:
    """``log P(y_i = k_i | eta_i, tau)`` of the probit threshold model (D, N).

    ``codes`` (N,) the categories 0..K-1, ``eta`` (D, N) the liabilities' means, ``cutpoints`` (D, K-1) the
    thresholds (``[0]`` for a binary trait, whose mu is in eta). ``P = Phi(tau_k - eta) - Phi(tau_{k-1} - eta)``.
    """
    D = eta.shape[0]
    bounds = np.concatenate([np.full((D, 1), -np.inf), cutpoints, np.full((D, 1), np.inf)], axis=1)
    lo = bounds[:, codes] - eta
    hi = bounds[:, codes + 1] - eta
    return _log_interval(lo, hi)


def marginal_predictive(
    rec: Records,
    mu: np.ndarray,
    beta: np.ndarray | None,
    sigma2_e: np.ndarray,
    genetic,
    rng: np.random.Generator,
    *,
    sigma2_pe: np.ndarray | None = None,
) -> np.ndarray:
    """Draws ``y_rep ~ N(mu 1 + X beta, V)`` (D, N), one per draw of theta.

    ``genetic(sl, rng)`` returns a prior draw of the individuals' summed genetic values for the draws in ``sl``,
    (n, c): ``g ~ N(0, sum_k sigma2_k K_k)`` at each draw's variances.
    """
    D = mu.size
    out = np.empty((D, rec.n_records))
    j = rec.record_index
    w = rec.record_weights
    for sl in _chunks(D, max(rec.n_records, rec.n_individuals)):
        c = sl.stop - sl.start
        u = genetic(sl, rng)
        if sigma2_pe is not None:
            u = u + np.sqrt(sigma2_pe[sl])[None, :] * rng.standard_normal(u.shape)
        e = np.sqrt(sigma2_e[sl][None, :] / w[:, None]) * rng.standard_normal((rec.n_records, c))
        y = mu[sl][None, :] + u[j] + e
        if rec.X is not None:
            y = y + rec.X @ beta[sl].T
        out[sl] = y.T
    return out


def threshold_predictive(eta: np.ndarray, cutpoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Category codes (D, N) drawn from the probit threshold model: the liability ``eta + N(0, 1)`` cut at tau."""
    liability = eta + rng.standard_normal(eta.shape)
    out = np.zeros(eta.shape, dtype=np.int64)
    for k in range(cutpoints.shape[1]):
        out += liability > cutpoints[:, k : k + 1]
    return out
