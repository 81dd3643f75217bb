"""Exact oracles for multi-trait G-BLUP and M-BLUP (issue 15), written independently of the package code.

The model, for ``n`` individuals and ``t`` traits (``Y`` is n x t, NaN = no record):

    Y = 1 mu' + X B + g + E,    vec(g) ~ N(0, Sigma_g ⊗ G),    vec(E) ~ N(0, Sigma_e ⊗ I_n),

with g and E independent, ``mu`` (t,), ``X`` (n x q) and ``B`` (q x t) optional fixed effects. M-BLUP writes
``g = W b`` with ``vec(b) ~ N(0, Sigma_b ⊗ I_m)``; with ``G = W W' / c`` this is G-BLUP with ``Sigma_g = c Sigma_b``.

Conventions
-----------
* **vec is trait-major** (column stacking): ``vec(Y)[k n + i] = Y[i, k]``, numpy's ``Y.ravel(order="F")``.
  That is the ordering in which ``Cov(vec g) = np.kron(Sigma_g, G)``. Every covariance matrix returned here
  (``cov`` fields, ``fisher``) uses it; means and variances come back as (n, t) arrays (individual x trait).
* **Observed entries** are the non-NaN entries of vec(Y), kept in trait-major order. A likelihood or a
  posterior conditions on these only; an individual with no record in any trait still gets a posterior for
  its g (through G and Sigma_g).
* 1-D ``Y`` (n,) is one trait; scalars for ``mu``, ``Sigma_g``, ``Sigma_e`` are 1 x 1.

Numerics: every solve is a Cholesky solve. The only inverses formed are those the formulas need as matrices:
``G^-1`` and ``Sigma^-1`` in Henderson's equations, the inverse of their coefficient matrix (the posterior
covariance) and ``P`` in the REML score. Intended for small problems (n t up to a few hundred).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular

LOG_2PI = np.log(2.0 * np.pi)


# --------------------------------------------------------------------------------------------- helpers


def vec(A: np.ndarray) -> np.ndarray:
    """Trait-major vec: the columns of ``A`` (n x t) stacked, ``vec(A)[k n + i] = A[i, k]``."""
    return np.asarray(A).ravel(order="F")


def unvec(v: np.ndarray, n: int, t: int) -> np.ndarray:
    """Inverse of :func:`vec`: (n t,) -> (n, t)."""
    return np.asarray(v).reshape(t, n).T


def _as_Y(Y) -> np.ndarray:
    Y = np.asarray(Y, dtype=float)
    return Y[:, None] if Y.ndim == 1 else Y


def _as_cov(S, t: int, name: str) -> np.ndarray:
    S = np.atleast_2d(np.asarray(S, dtype=float))
    if S.shape != (t, t) or not np.allclose(S, S.T, rtol=0, atol=1e-12 * max(1.0, np.abs(S).max())):
        raise ValueError(f"{name} must be a symmetric {t} x {t} matrix, got shape {S.shape}")
    return (S + S.T) / 2


def _mean(n: int, t: int, mu, X, B) -> np.ndarray:
    """``1 mu' + X B`` (n x t)."""
    M = np.broadcast_to(np.asarray(mu, dtype=float).reshape(1, -1), (n, t)).copy()
    if X is not None or B is not None:
        if X is None or B is None:
            raise ValueError("X and B go together")
        X = np.asarray(X, dtype=float).reshape(n, -1)
        M += X @ np.asarray(B, dtype=float).reshape(X.shape[1], t)
    return M


def _chol(A: np.ndarray) -> tuple[np.ndarray, bool]:
    """The lower Cholesky factor in ``cho_solve``'s form (scipy's ``cho_factor`` is much slower here)."""
    return cholesky(A, lower=True), True


def observed(Y: np.ndarray) -> np.ndarray:
    """Positions in vec(Y) of the observed (non-NaN) entries, ascending (trait-major)."""
    return np.flatnonzero(~np.isnan(vec(_as_Y(Y))))


def _covariance(Sigma_g, G, Sigma_e, obs) -> np.ndarray:
    """The sub-matrix of ``Sigma_g ⊗ G + Sigma_e ⊗ I`` on the observed entries."""
    n = G.shape[0]
    V = np.kron(Sigma_g, G) + np.kron(Sigma_e, np.eye(n))
    return V[np.ix_(obs, obs)]


# ------------------------------------------------------------------------------------------ likelihood


def dense_logp(Y, G, mu, Sigma_g, Sigma_e, X=None, B=None) -> float:
    """Log density of the observed entries of Y: ``log N(y_o | m_o, V_oo)``.

    ``y_o`` = observed entries of vec(Y) (trait-major), ``m_o`` those of ``vec(1 mu' + X B)``, and ``V_oo`` the
    corresponding rows and columns of ``V = Sigma_g ⊗ G + Sigma_e ⊗ I_n``:

        log p = -[N log(2 pi) + log det V_oo + (y_o - m_o)' V_oo^-1 (y_o - m_o)] / 2,   N = #observed,

    through the Cholesky factor ``V_oo = L L'``: ``log det V_oo = 2 sum log L_ii``, the quadratic form
    ``|L^-1 (y_o - m_o)|^2``. No observed entry gives 0.
    """
    Y = _as_Y(Y)
    n, t = Y.shape
    G = np.asarray(G, dtype=float)
    Sg, Se = _as_cov(Sigma_g, t, "Sigma_g"), _as_cov(Sigma_e, t, "Sigma_e")
    obs = observed(Y)
    if obs.size == 0:
        return 0.0
    r = vec(Y - _mean(n, t, mu, X, B))[obs]
    L = _chol(_covariance(Sg, G, Se, obs))[0]
    z = solve_triangular(L, r, lower=True)
    return float(-0.5 * (obs.size * LOG_2PI + z @ z) - np.log(np.diag(L)).sum())


# ------------------------------------------------------------------------------------------- Henderson


class Henderson(NamedTuple):
    """Posterior of g given the observed records and all parameters (mu, B, Sigma_g, Sigma_e known).

    mean, var : (n, t)
        ``E[g_ik | y_o]`` and ``Var[g_ik | y_o]`` for every individual of G.
    cov : (n t, n t)
        ``Cov[vec g | y_o]``, trait-major.
    new_mean, new_var : (n_new, t) or None
        The same for new individuals given by ``G_cross`` and ``G_new_diag``.
    """

    mean: np.ndarray
    var: np.ndarray
    cov: np.ndarray
    new_mean: np.ndarray | None = None
    new_var: np.ndarray | None = None


def henderson(
    Y, G, mu, Sigma_g, Sigma_e, X=None, B=None, G_cross=None, G_new_diag=None, *, method: str = "gls"
) -> Henderson:
    """``E[vec g | y_o]`` and ``Var[g | y_o]`` at known parameters, by one of two independent routes.

    Let ``K = Sigma_g ⊗ G`` (prior covariance of vec g), ``Z`` the N x n t matrix that picks the observed entries
    of vec(g), ``R = (Sigma_e ⊗ I_n)_oo`` (observed rows and columns), ``V = Z K Z' + R`` and
    ``r = y_o - m_o`` (as in :func:`dense_logp`).

    ``method="gls"`` (kriging; any positive semi-definite G)::

        E[vec g | y] = K Z' V^-1 r,          Cov[vec g | y] = K - K Z' V^-1 Z K.

    ``method="mme"`` (Henderson's mixed-model equations with known fixed effects; G must be positive definite)::

        C = Z' R^-1 Z + Sigma_g^-1 ⊗ G^-1,   C E[vec g | y] = Z' R^-1 r,   Cov[vec g | y] = C^-1.

    New individuals (``G_cross`` = relationships new x old, n_new x n; ``G_new_diag`` = their own diagonal):

        gls: E[vec g_new | y] = K_x Z' V^-1 r,  Var = diag(Sigma_g) ⊗ G_new_diag - diag(K_x Z' V^-1 Z K_x'),
             with K_x = Sigma_g ⊗ G_cross;
        mme: with T = G_cross G^-1: E[g_new,k] = T E[g_k],
             Var[g_new,k] = Sigma_g[k, k] (G_new_diag - diag(T G_cross')) + diag(T Cov[g_k | y] T').

    An individual without any record has no row in Z and is predicted through G and Sigma_g.
    """
    Y = _as_Y(Y)
    n, t = Y.shape
    G = np.asarray(G, dtype=float)
    Sg, Se = _as_cov(Sigma_g, t, "Sigma_g"), _as_cov(Sigma_e, t, "Sigma_e")
    obs = observed(Y)
    r = vec(Y - _mean(n, t, mu, X, B))[obs]
    new = G_cross is not None
    if new:
        G_cross = np.atleast_2d(np.asarray(G_cross, dtype=float))
        G_new_diag = np.atleast_1d(np.asarray(G_new_diag, dtype=float))
        if G_cross.shape[1] != n or G_new_diag.shape != (G_cross.shape[0],):
            raise ValueError("G_cross must be n_new x n and G_new_diag (n_new,)")
    if method == "gls":
        K = np.kron(Sg, G)
        L = _chol(K[np.ix_(obs, obs)] + np.kron(Se, np.eye(n))[np.ix_(obs, obs)])[0]
        KZ = K[:, obs]  # Cov(vec g, y_o)
        alpha = cho_solve((L, True), r)
        A = solve_triangular(L, KZ.T, lower=True)  # L^-1 Z K: N x n t
        mean, cov = KZ @ alpha, K - A.T @ A
        if new:
            Kx = np.kron(Sg, G_cross)[:, obs]  # Cov(vec g_new, y_o)
            Ax = solve_triangular(L, Kx.T, lower=True)
            new_mean = unvec(Kx @ alpha, G_cross.shape[0], t)
            new_var = unvec(np.kron(np.diag(Sg), G_new_diag) - (Ax**2).sum(axis=0), G_cross.shape[0], t)
    elif method == "mme":
        lam = np.linalg.eigvalsh(G)
        if lam[0] <= 1e-10 * lam[-1]:  # a centred G is singular, though rounding may let Cholesky through
            raise ValueError(f"method='mme' needs a positive definite G (eigenvalues {lam[0]:.2g} .. {lam[-1]:.2g})")
        cG = _chol(G)
        G_inv = cho_solve(cG, np.eye(n))
        Sg_inv = cho_solve(_chol(Sg), np.eye(t))
        R = np.kron(Se, np.eye(n))[np.ix_(obs, obs)]
        R_inv = cho_solve(_chol(R), np.eye(obs.size))
        C = np.kron(Sg_inv, G_inv)
        C[np.ix_(obs, obs)] += R_inv  # Z' R^-1 Z: R^-1 placed on the observed rows and columns
        rhs = np.zeros(n * t)
        rhs[obs] = R_inv @ r  # Z' R^-1 r
        cC = _chol((C + C.T) / 2)
        mean, cov = cho_solve(cC, rhs), cho_solve(cC, np.eye(n * t))
        if new:
            T = cho_solve(cG, G_cross.T).T  # G_cross G^-1
            n_new = G_cross.shape[0]
            new_mean = T @ unvec(mean, n, t)
            new_var = np.empty((n_new, t))
            for k in range(t):
                blk = cov[k * n : (k + 1) * n, k * n : (k + 1) * n]
                new_var[:, k] = Sg[k, k] * (G_new_diag - (T * G_cross).sum(axis=1)) + ((T @ blk) * T).sum(axis=1)
    else:
        raise ValueError(f"method must be 'gls' or 'mme', got {method!r}")
    cov = (cov + cov.T) / 2
    out = Henderson(unvec(mean, n, t), unvec(np.diag(cov), n, t), cov)
    return out._replace(new_mean=new_mean, new_var=new_var) if new else out


class MarkerEffects(NamedTuple):
    """Posterior of the marker effects b (m x t) at known parameters, and of ``g = W b``.

    mean, var : (m, t);  cov : (m t, m t), trait-major;
    g_mean, g_var : (n, t), ``W E[b]`` and ``diag(W Cov[b_k] W')`` per trait;
    Sigma_g : (t, t), ``c Sigma_b``, the genetic covariance on G = WW'/c's scale.
    """

    mean: np.ndarray
    var: np.ndarray
    cov: np.ndarray
    g_mean: np.ndarray
    g_var: np.ndarray
    Sigma_g: np.ndarray


def marker_effects(Y, W, c, mu, Sigma_b, Sigma_e, X=None, B=None, *, method: str = "mme") -> MarkerEffects:
    """``E[vec b | y_o]`` and ``Var[b | y_o]`` for ``g = W b``, ``vec(b) ~ N(0, Sigma_b ⊗ I_m)``.

    With ``Z_b`` = the observed rows of ``I_t ⊗ W`` (N x m t), ``R``, ``r`` as in :func:`henderson`:

    ``method="mme"`` (SNP-BLUP equations; no G, any W)::

        C = Z_b' R^-1 Z_b + Sigma_b^-1 ⊗ I_m,   C E[vec b | y] = Z_b' R^-1 r,   Cov[vec b | y] = C^-1;

    ``method="gls"``::

        V = Z_b (Sigma_b ⊗ I_m) Z_b' + R,   E[vec b | y] = (Sigma_b ⊗ I_m) Z_b' V^-1 r,
        Cov = Sigma_b ⊗ I_m - (Sigma_b ⊗ I_m) Z_b' V^-1 Z_b (Sigma_b ⊗ I_m).

    ``c`` (G's denominator) does not enter b's posterior: it only names the equivalent G-BLUP,
    ``G = W W' / c`` with ``Sigma_g = c Sigma_b``, under which ``W E[b]`` and ``W Cov[b] W'`` equal
    :func:`henderson`'s mean and covariance of g.
    """
    Y = _as_Y(Y)
    n, t = Y.shape
    W = np.asarray(W, dtype=float)
    m = W.shape[1]
    if W.shape[0] != n or not c > 0:
        raise ValueError("W must be n x m and c > 0")
    Sb, Se = _as_cov(Sigma_b, t, "Sigma_b"), _as_cov(Sigma_e, t, "Sigma_e")
    obs = observed(Y)
    r = vec(Y - _mean(n, t, mu, X, B))[obs]
    Zb = np.kron(np.eye(t), W)[obs]
    R = np.kron(Se, np.eye(n))[np.ix_(obs, obs)]
    if method == "mme":
        cR = _chol(R)
        Ri_Zb = cho_solve(cR, Zb)
        C = Zb.T @ Ri_Zb + np.kron(cho_solve(_chol(Sb), np.eye(t)), np.eye(m))
        cC = _chol((C + C.T) / 2)
        mean, cov = cho_solve(cC, Ri_Zb.T @ r), cho_solve(cC, np.eye(m * t))
    elif method == "gls":
        Kb = np.kron(Sb, np.eye(m))
        KZ = Kb @ Zb.T  # Cov(vec b, y_o)
        L = _chol(Zb @ KZ + R)[0]
        A = solve_triangular(L, KZ.T, lower=True)
        mean, cov = KZ @ cho_solve((L, True), r), Kb - A.T @ A
    else:
        raise ValueError(f"method must be 'gls' or 'mme', got {method!r}")
    cov = (cov + cov.T) / 2
    IW = np.kron(np.eye(t), W)
    g_var = np.einsum("ij,jk,ik->i", IW, cov, IW)
    return MarkerEffects(
        unvec(mean, m, t), unvec(np.diag(cov), m, t), cov, W @ unvec(mean, m, t), unvec(g_var, n, t), c * Sb
    )


# ------------------------------------------------------------------------------------------------ REML


class MultiREML(NamedTuple):
    """Multi-trait REML estimates.

    Sigma_g, Sigma_e : (t, t)
    mu : (t,), B : (q, t) or None
        GLS fixed effects at the REML covariances (intercept per trait, then X's coefficients).
    loglik : float
        The maximised restricted log-likelihood (:func:`restricted_loglik`).
    fisher : (2 p, 2 p), p = t (t + 1) / 2
        Expected information at the estimates for ``(vech Sigma_g, vech Sigma_e)``, vech = lower triangle by
        rows: (0,0), (1,0), (1,1), ...; its inverse is the asymptotic covariance of the estimates.
    n_obs : int
    success : bool
        The optimiser's flag and a small score.
    """

    Sigma_g: np.ndarray
    Sigma_e: np.ndarray
    mu: np.ndarray
    B: np.ndarray | None
    loglik: float
    fisher: np.ndarray
    n_obs: int
    success: bool


def _vech_index(t: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(t) for b in range(a + 1)]


class _Restricted:
    """The restricted likelihood of the observed entries as a function of (Sigma_g, Sigma_e)."""

    def __init__(self, Y, G, X):
        Y = _as_Y(Y)
        self.n, self.t = n, t = Y.shape
        self.G = np.asarray(G, dtype=float)
        F = np.ones((n, 1)) if X is None else np.column_stack([np.ones(n), np.asarray(X, dtype=float).reshape(n, -1)])
        self.q = F.shape[1]
        self.obs = observed(Y)
        self.y = vec(Y)[self.obs]
        self.D = np.kron(np.eye(t), F)[self.obs]  # fixed-effect design of y_o: (I_t ⊗ [1 X]) observed rows
        self.N, self.p = self.D.shape
        if np.linalg.matrix_rank(self.D) < self.p:
            raise ValueError("the fixed effects are not estimable (a trait without records, or collinear X)")
        if self.N - self.p < 1:
            raise ValueError("no error contrasts: fewer records than fixed effects")
        self.logdet_DD = np.linalg.slogdet(self.D.T @ self.D)[1]

    def parts(self, Sg, Se):
        """l_R, beta, P y, and P, at (Sg, Se)."""
        V = _covariance(Sg, self.G, Se, self.obs)
        cV = _chol(V)
        Vi_D, Vi_y = cho_solve(cV, self.D), cho_solve(cV, self.y)
        cA = _chol(self.D.T @ Vi_D)
        beta = cho_solve(cA, self.D.T @ Vi_y)
        Py = Vi_y - Vi_D @ beta
        logdet = 2 * np.log(np.diag(cV[0])).sum() + 2 * np.log(np.diag(cA[0])).sum() - self.logdet_DD
        loglik = -0.5 * ((self.N - self.p) * LOG_2PI + logdet + self.y @ Py)
        return loglik, beta, Py, cV, Vi_D, cA

    def loglik(self, Sg, Se) -> float:
        return float(self.parts(Sg, Se)[0])

    def _P(self, cV, Vi_D, cA):
        P = cho_solve(cV, np.eye(self.N)) - Vi_D @ cho_solve(cA, Vi_D.T)
        return (P + P.T) / 2

    def score(self, Sg, Se):
        """l_R and its derivatives with respect to each entry of Sigma_g and Sigma_e taken as free (t x t each).

        ``d l_R / d theta = -[tr(P dV) - y'P dV P y] / 2 = -sum((P - Py Py') * dV) / 2`` with
        ``dV = (E_ab ⊗ G)_oo`` for Sigma_g[a, b] and ``(E_ab ⊗ I)_oo`` for Sigma_e[a, b].
        """
        n, t = self.n, self.t
        loglik, _, Py, cV, Vi_D, cA = self.parts(Sg, Se)
        M = np.zeros((n * t, n * t))
        M[np.ix_(self.obs, self.obs)] = self._P(cV, Vi_D, cA) - np.outer(Py, Py)
        Dg, De = np.empty((t, t)), np.empty((t, t))
        for a in range(t):
            for b in range(t):
                blk = M[a * n : (a + 1) * n, b * n : (b + 1) * n]
                Dg[a, b] = -0.5 * (blk * self.G).sum()
                De[a, b] = -0.5 * np.trace(blk)
        return loglik, Dg, De

    def fisher(self, Sg, Se) -> np.ndarray:
        """``I_ij = tr(P dV_i P dV_j) / 2`` over (vech Sigma_g, vech Sigma_e), symmetric perturbations."""
        n, t = self.n, self.t
        _, _, _, cV, Vi_D, cA = self.parts(Sg, Se)
        P = self._P(cV, Vi_D, cA)
        PdV = []
        for K in (self.G, np.eye(n)):
            for a, b in _vech_index(t):
                E = np.zeros((t, t))
                E[a, b] = E[b, a] = 1.0
                PdV.append(P @ np.kron(E, K)[np.ix_(self.obs, self.obs)])
        return np.array([[0.5 * (A * B.T).sum() for B in PdV] for A in PdV])

    # Cholesky parameters: the lower triangles of L_g and L_e by rows, log on the diagonal.
    def unpack(self, theta):
        t = self.t
        idx = _vech_index(t)
        out = []
        for half in (theta[: len(idx)], theta[len(idx) :]):
            L = np.zeros((t, t))
            for v, (a, b) in zip(half, idx, strict=True):
                L[a, b] = np.exp(v) if a == b else v
            out.append(L)
        return out

    def pack(self, Sg, Se):
        theta = []
        for S in (Sg, Se):
            L = np.linalg.cholesky(S)
            theta += [np.log(L[a, b]) if a == b else L[a, b] for a, b in _vech_index(self.t)]
        return np.array(theta)

    def objective(self, theta):
        """``-l_R`` and its gradient in the Cholesky parameters.

        ``d l / d L = (D + D') L`` (D: :meth:`score`), times ``L_aa`` for a diagonal entry (log scale).
        """
        Lg, Le = self.unpack(theta)
        try:
            loglik, Dg, De = self.score(Lg @ Lg.T, Le @ Le.T)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        grad = []
        for L, D in ((Lg, Dg), (Le, De)):
            dL = (D + D.T) @ L
            grad += [dL[a, b] * (L[a, a] if a == b else 1.0) for a, b in _vech_index(self.t)]
        return -loglik, -np.array(grad)


def restricted_loglik(Y, G, Sigma_g, Sigma_e, X=None) -> float:
    """Restricted log-likelihood of the observed entries: the density of N - p orthonormal error contrasts.

    With ``D`` = the observed rows of ``I_t ⊗ [1 X]`` (N x p, p = t (1 + q)) and ``V`` as in :func:`dense_logp`,

        l_R = -[(N - p) log(2 pi) + log det V + log det(D' V^-1 D) - log det(D' D) + y' P y] / 2,
        P = V^-1 - V^-1 D (D' V^-1 D)^-1 D' V^-1,

    which is ``log N(K' y | 0, K' V K)`` for any K (N x (N - p)) with orthonormal columns orthogonal to D. For
    t = 1 it is the log-likelihood that ``bayesblup.reml`` (rrBLUP, EMMA) reports.
    """
    Y = _as_Y(Y)
    t = Y.shape[1]
    return _Restricted(Y, G, X).loglik(_as_cov(Sigma_g, t, "Sigma_g"), _as_cov(Sigma_e, t, "Sigma_e"))


def reml(Y, G, X=None, *, start=None, gtol: float = 1e-8) -> MultiREML:
    """Multi-trait REML: maximise :func:`restricted_loglik` over positive definite Sigma_g, Sigma_e.

    Parameters: ``Sigma = L L'``, the lower triangles of ``L_g``, ``L_e`` with the diagonal on the log scale
    (t (t + 1) numbers); BFGS with the analytic score (:meth:`_Restricted.score`), from ``start = (Sigma_g,
    Sigma_e)`` or by default half of each trait's observed variance in each, no covariance. The fixed effects are
    GLS at the estimates: ``beta = (D' V^-1 D)^-1 D' V^-1 y``, per trait ``[mu_k, B[:, k]]``.

    Small problems only (n <= 200, t <= 3): each step factors the N x N covariance of the observed entries.
    """
    from scipy.optimize import minimize

    Y = _as_Y(Y)
    t = Y.shape[1]
    f = _Restricted(Y, G, X)
    if start is None:
        v = np.nanvar(Y, axis=0, ddof=1)
        start = (np.diag(v / 2), np.diag(v / 2))
    theta0 = f.pack(_as_cov(start[0], t, "Sigma_g"), _as_cov(start[1], t, "Sigma_e"))
    opt = minimize(f.objective, theta0, jac=True, method="BFGS", options={"gtol": gtol, "maxiter": 2000})
    Lg, Le = f.unpack(opt.x)
    Sg, Se = Lg @ Lg.T, Le @ Le.T
    loglik, beta, *_ = f.parts(Sg, Se)
    beta = beta.reshape(t, f.q).T  # D's columns: trait-major blocks of [1 X]
    # BFGS may stop on "precision loss" with the score already at rounding level: judge the score itself.
    success = bool(opt.success or np.abs(f.objective(opt.x)[1]).max() < 1e-6 * f.N)
    return MultiREML(Sg, Se, beta[0], beta[1:] if f.q > 1 else None, float(loglik), f.fisher(Sg, Se), f.N, success)
