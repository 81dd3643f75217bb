"""Low-rank and dense Gaussian algebra for several kernels: log-likelihoods with their gradients, in NumPy.

``woodbury_terms``
    ``log N(r; 0, D + A Sigma A')`` in the background kernel's eigenbasis, O(n R^2), with its gradient
    by hand; :class:`Resolvent` interpolates the R x R work over the one variance ratio it depends on.
``surface_terms``
    The same when a single small set is left beside the background, at O(n) per gradient:
    everything that costs R^3 is a smooth function of two variance ratios, interpolated once
    (:class:`Surface`).
``dense_terms``
    ``log N(r; 0, sum_k s_k K_k + diag(nu))`` with its gradient from one Cholesky factor and the inverse.

The PyTensor Ops that put them in a model are in :mod:`bayesblup.models.ops`; the posterior of the
genetic values (:mod:`bayesblup.inference.posterior`) shares the :class:`Resolvent`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Resolvent", "Surface", "dense_terms", "surface_terms", "woodbury_terms"]


def _chebyshev_basis(x: float, nodes: int, half: float) -> tuple[np.ndarray, np.ndarray]:
    """``T_m(x)`` for m < nodes, and their derivatives in the unscaled variable (``x = (t - centre) / half``).

    ``T_m'(x) = m U_{m-1}(x)``, both from their three-term recurrences.
    """
    T = np.empty(nodes)
    U = np.empty(nodes)
    T[0], T[1] = 1.0, x
    U[0], U[1] = 1.0, 2 * x
    for m in range(2, nodes):
        T[m] = 2 * x * T[m - 1] - T[m - 2]
        U[m] = 2 * x * U[m - 1] - U[m - 2]
    dT = np.concatenate([[0.0], np.arange(1, nodes) * U[:-1]]) / half
    return T, dT


class Resolvent:
    """``M(rho) = A' (I + rho Lambda)^-1 A`` and ``dM / dlog(rho)`` for any rho, at O(R^2) per call.

    Both Woodbury matrices depend on theta only through ``rho = sigma2_background / noise``: ``A'D^-1 A =
    M(rho) / noise``. Over ``t = log rho`` each weight ``h_i(t) = (1 + e^t) / (1 + e^t lambda_i)`` is smooth
    and bounded, with its nearest complex singularity at distance pi from the real axis whatever
    lambda_i, so a Chebyshev interpolant of degree 23 on segments of half-length 1.5 reproduces it to
    a relative 2e-14 (its derivative to 3e-12; measured for lambda_i from 1e-4 to 1e4). The interpolant
    of ``sum_i a_i a_i' h_i(t)`` is built per segment when NUTS first visits it (24 matrices of n R^2
    each), after which a gradient costs O(R^2 + n R) instead of O(n R^2). Outside ``|t| <= 30`` (a
    variance ratio beyond 1e13) M is computed directly. Zero eigenvalues contribute ``A_0'A_0``
    whatever rho.
    """

    NODES = 24
    HALF = 1.5
    T_MAX = 30.0

    def __init__(self, lam: np.ndarray, A: np.ndarray):
        zero = lam <= 0
        self.lam, self.A = lam[~zero], np.ascontiguousarray(A[~zero])
        self.constant = A[zero].T @ A[zero]
        k = np.arange(self.NODES)
        self.x = np.cos(np.pi * (k + 0.5) / self.NODES)  # Chebyshev points of the first kind
        # coefficients = transform @ values: c_m = (2 / N) sum_j f(x_j) T_m(x_j), c_0 halved
        transform = (2.0 / self.NODES) * np.cos(np.pi * np.outer(k, k + 0.5) / self.NODES)
        transform[0] /= 2
        self.transform = transform
        self.segments: dict[int, np.ndarray] = {}

    def _exact(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        rho = np.exp(t)
        f = 1.0 / (1.0 + rho * self.lam)
        M = (self.A * f[:, None]).T @ self.A + self.constant
        dM = -((self.A * (rho * self.lam * f**2)[:, None]).T @ self.A)
        return M, dM

    def _coefficients(self, k: int) -> np.ndarray:
        if k not in self.segments:
            centre = -self.T_MAX + (2 * k + 1) * self.HALF
            values = []
            for t in centre + self.HALF * self.x:
                h = (1.0 + np.exp(t)) / (1.0 + np.exp(t) * self.lam)
                B = self.A * np.sqrt(h)[:, None]
                values.append(B.T @ B)
            values = np.stack(values)  # (N, R, R)
            self.segments[k] = np.tensordot(self.transform, values, axes=1)
        return self.segments[k]

    def __call__(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """``(M, dM/dt)`` at ``t = log rho``."""
        if not -self.T_MAX < t < self.T_MAX:
            return self._exact(t)
        k = min(int((t + self.T_MAX) // (2 * self.HALF)), int(self.T_MAX / self.HALF) - 1)
        coef = self._coefficients(k)
        x = (t - (-self.T_MAX + (2 * k + 1) * self.HALF)) / self.HALF
        T, dT = _chebyshev_basis(x, self.NODES, self.HALF)
        H = np.tensordot(T, coef, axes=1)  # sum_i a_i a_i' h_i(t)
        dH = np.tensordot(dT, coef, axes=1)
        scale = 1.0 / (1.0 + np.exp(t))  # f_i = h_i / (1 + e^t)
        M = H * scale + self.constant
        dM = dH * scale - H * (np.exp(t) * scale**2)
        return M, dM


def woodbury_terms(resolvent, lam, A, columns, r, s_background, s_low, noise):
    """(logp, d/dr, d/ds_background, d/ds_low, d/dnoise) of ``log N(r; 0, D + A Sigma A')``, O(n R + R^3).

    ``D = diag(s_background lam + noise)``; ``Sigma`` holds ``s_low[columns[j]]`` for column j of A. With
    ``rho = s_b / nu``, ``S = Sigma^1/2``, ``G = S A'D^-1 A S = S M(rho) S / nu`` (M from the
    :class:`Resolvent`), ``C = I + G = L L'``, ``q = S A'(r/d)`` and ``t = C^-1 q``:

        log det V = sum log d + 2 sum log L_jj,     r'V^-1 r = sum r^2/d - q't,
        alpha = V^-1 r = r/d - A S t / d;

    ``d logdet C = tr(C^-1 dC)`` with ``dC/drho = S M'(rho) S / nu`` and ``dC/dnu`` at fixed rho ``= -G /
    nu``; ``d(q'C^-1 q) = 2 t'dq - t'dC t``; for ``sigma_j`` both reduce to ``(1 - (C^-1)_jj - t_j^2) /
    sigma_j``. Only NumPy's BLAS is called: SciPy ships a second OpenBLAS, and the two libraries'
    thread pools contending on 2 cores doubled the time of a gradient inside NUTS.
    """
    d = s_background * lam + noise
    if not (s_background > 0 and noise > 0 and np.all(s_low > 0)):
        return -np.inf, np.zeros_like(r), 0.0, np.zeros_like(s_low), 0.0
    rho = s_background / noise
    M, dM_dt = resolvent(np.log(rho))
    sigma = s_low[columns]
    root = np.sqrt(sigma)
    G = root[:, None] * M * root[None, :] / noise
    C = G + np.eye(G.shape[0])
    try:
        L = np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        return -np.inf, np.zeros_like(r), 0.0, np.zeros_like(s_low), 0.0
    C_inv = np.linalg.inv(C)
    rd = r / d
    rd2 = rd / d
    proj = A.T @ np.column_stack([rd, lam * rd2, rd2])  # A'(r/d), A'(lam r/d^2), A'(r/d^2)
    q = root * proj[:, 0]
    t = C_inv @ q
    alpha = rd - (A @ (root * t)) / d
    logdet = float(np.log(d).sum()) + 2.0 * float(np.log(np.diag(L)).sum())
    logp = -0.5 * (r.size * np.log(2 * np.pi) + logdet + float(r @ rd) - float(q @ t))
    dC_drho = root[:, None] * (dM_dt / rho) * root[None, :] / noise
    tr_rho, tr_G = float(np.vdot(C_inv, dC_drho)), float(np.vdot(C_inv, G))
    t_rho_t, t_G_t = float(t @ dC_drho @ t), float(t @ G @ t)
    # s_b: drho/ds_b = 1/nu.  nu: drho/dnu = -rho/nu, plus dC/dnu at fixed rho = -G/nu.
    dlogdet_sb = float((lam / d).sum()) + tr_rho / noise
    dlogdet_nu = float((1.0 / d).sum()) - tr_rho * rho / noise - tr_G / noise
    dq_sb, dq_nu = -root * proj[:, 1], -root * proj[:, 2]
    dquad_sb = -float(r @ (lam * rd2)) - (2 * float(t @ dq_sb) - t_rho_t / noise)
    dquad_nu = -float(r @ rd2) - (2 * float(t @ dq_nu) - (-t_rho_t * rho / noise - t_G_t / noise))
    g_sigma = -0.5 * (1.0 - np.diag(C_inv) - t**2) / sigma
    g_low = np.bincount(columns, weights=g_sigma, minlength=s_low.size)
    return logp, -alpha, -0.5 * (dlogdet_sb + dquad_sb), g_low, -0.5 * (dlogdet_nu + dquad_nu)


class Surface:
    """The R x R work of one low-rank set, as smooth functions of two variance ratios, at O(1) per call.

    With one small set beside the background, ``V = nu (Dt + tau A A')`` in the background's eigenbasis,
    ``Dt = I + rho Lambda``, ``rho = s_background / nu``, ``tau = s_low / nu``. With ``M(rho) = A' Dt^-1 A``
    and ``P(rho) = A' Dt^-1 Z`` for the data columns ``Z = [y, 1, X]``, the log-likelihood needs only

        f(rho, tau)   = log det(I + tau M)                       (the determinant lemma)
        Phi(rho, tau) = tau P' (I + tau M)^-1 P                   (q x q, q = columns of Z)

    besides O(n) sums: with ``r = Z c``, ``r'V^-1 r = (c' Z'Dt^-1 Z c - c' Phi c) / nu``. Over ``t =
    log rho`` and ``s = log tau`` both are analytic in the strip ``|Im t|, |Im s| < pi/2`` (there ``Dt^-1``
    has a positive real part, so the eigenvalues of M stay in the right half-plane and ``I + tau M``
    stays invertible). A tensor Chebyshev interpolant of degree 31 on squares of half-side 1 then
    converges like ``3.1^-32``, about 1e-16 relative (measured: 1e-13 for values, 1e-11 for
    derivatives). A square is built the first time NUTS visits it: for each of its 32 values of t one
    eigendecomposition ``M = Q diag(omega) Q'`` (R^3), after which every tau is a sum over omega. Outside
    ``|t|, |s| <= 30`` (ratios beyond 1e13) the functions are computed directly.
    """

    NODES = 32
    HALF = 1.0
    LIMIT = 30.0

    def __init__(self, resolvent: Resolvent, lam: np.ndarray, A: np.ndarray, Z: np.ndarray):
        self.resolvent, self.lam, self.A, self.Z = resolvent, lam, A, Z
        k = np.arange(self.NODES)
        self.x = np.cos(np.pi * (k + 0.5) / self.NODES)  # Chebyshev points of the first kind
        transform = (2.0 / self.NODES) * np.cos(np.pi * np.outer(k, k + 0.5) / self.NODES)
        transform[0] /= 2
        self.transform = transform
        self.spectra: dict[int, list] = {}  # t-segment -> [(omega, Q'P)] at its nodes
        self.squares: dict[tuple[int, int], np.ndarray] = {}  # (t-seg, s-seg) -> coefficients (1 + q^2, N, N)

    def _spectrum(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(omega, Q'P, M, P) at ``t = log rho``."""
        M, _ = self.resolvent(t)
        P = self.A.T @ (self.Z / (1.0 + np.exp(t) * self.lam)[:, None])
        omega, Q = np.linalg.eigh(M)
        return _clip(omega), Q.T @ P, M, P

    @staticmethod
    def _values(omega, QP, tau):
        """Values of f and Phi at each tau (vectorised), from M's spectrum."""
        w = tau[:, None] / (1.0 + tau[:, None] * omega[None, :])  # (S, R)
        f = np.log1p(tau[:, None] * omega[None, :]).sum(axis=1)
        Phi = np.einsum("si,ia,ib->sab", w, QP, QP)
        return f, Phi

    def _square(self, i: int, j: int) -> np.ndarray:
        if (i, j) not in self.squares:
            if i not in self.spectra:
                centre = -self.LIMIT + (2 * i + 1) * self.HALF
                self.spectra[i] = [self._spectrum(t)[:2] for t in centre + self.HALF * self.x]
            tau = np.exp(-self.LIMIT + (2 * j + 1) * self.HALF + self.HALF * self.x)
            q = self.Z.shape[1]
            values = np.empty((1 + q * q, self.NODES, self.NODES))  # (function, t node, s node)
            for a, (omega, QP) in enumerate(self.spectra[i]):
                f, Phi = self._values(omega, QP, tau)
                values[0, a] = f
                values[1:, a] = Phi.reshape(self.NODES, q * q).T
            # 2-D coefficients: transform along t, then along s
            self.squares[(i, j)] = np.einsum("ka,fab,lb->fkl", self.transform, values, self.transform)
        return self.squares[(i, j)]

    def exact(self, t: float, s: float):
        """``(f, f_t, f_s, Phi, Phi_t, Phi_s)`` computed directly, O(n R q + R^3)."""
        rho, tau = np.exp(t), np.exp(s)
        M, dM = self.resolvent(t)
        dt = 1.0 + rho * self.lam
        P = self.A.T @ (self.Z / dt[:, None])
        dP = -(self.A.T @ (self.Z * (rho * self.lam / dt**2)[:, None]))
        omega, Q = np.linalg.eigh(M)
        omega = _clip(omega)
        # In M's eigenbasis, not with (I + tau M)^-1 formed: at a large tau that matrix's rounding,
        # multiplied by tau, would swamp the null directions (exactly zero in Phi).
        QP, QdP, QdMQ = Q.T @ P, Q.T @ dP, Q.T @ dM @ Q
        w = tau / (1.0 + tau * omega)  # tau (I + tau M)^-1 in the eigenbasis
        wQP = w[:, None] * QP
        f = float(np.log1p(tau * omega).sum())
        # d omega_i / dt = q_i' dM q_i; an eigenvalue clipped to zero is a null direction of the set's
        # factor at every rho, whose derivative is zero (dM's interpolation error there, times tau, is not).
        f_t = float(w @ np.where(omega > 0, np.diag(QdMQ), 0.0))
        f_s = float((tau * omega / (1.0 + tau * omega)).sum())
        Phi = QP.T @ wQP
        Phi_t = QdP.T @ wQP + wQP.T @ QdP - wQP.T @ QdMQ @ wQP
        Phi_s = wQP.T @ (QP / (1.0 + tau * omega)[:, None])
        return f, f_t, f_s, Phi, Phi_t, Phi_s

    def __call__(self, t: float, s: float):
        """``(f, df/dt, df/ds, Phi, dPhi/dt, dPhi/ds)`` at ``t = log rho``, ``s = log tau``."""
        if not (-self.LIMIT < t < self.LIMIT and -self.LIMIT < s < self.LIMIT):
            return self.exact(t, s)
        last = int(self.LIMIT / self.HALF) - 1
        i = min(int((t + self.LIMIT) // (2 * self.HALF)), last)
        j = min(int((s + self.LIMIT) // (2 * self.HALF)), last)
        coef = self._square(i, j)
        Tt, dTt = _chebyshev_basis((t - (-self.LIMIT + (2 * i + 1) * self.HALF)) / self.HALF, self.NODES, self.HALF)
        Ts, dTs = _chebyshev_basis((s - (-self.LIMIT + (2 * j + 1) * self.HALF)) / self.HALF, self.NODES, self.HALF)
        along_t = np.tensordot(coef, Ts, axes=([2], [0]))  # (F, N): summed over s
        value, d_t = along_t @ Tt, along_t @ dTt
        d_s = np.tensordot(coef, dTs, axes=([2], [0])) @ Tt
        q = self.Z.shape[1]
        return (
            float(value[0]), float(d_t[0]), float(d_s[0]),
            value[1:].reshape(q, q), d_t[1:].reshape(q, q), d_s[1:].reshape(q, q),
        )  # fmt: skip


def _clip(omega: np.ndarray) -> np.ndarray:
    """M's eigenvalues with rounding noise set to zero.

    M is positive semi-definite, exactly singular when the small set's factor is (a centred W_k has
    rank m_k - 1), and eigh returns such zeros as +-1e-16 ||M||. Multiplied by a large tau they would
    become noise in log(1 + tau omega); below R eps ||M||, eigh cannot resolve an eigenvalue anyway.
    """
    floor = omega.size * np.finfo(float).eps * max(float(omega.max(initial=0.0)), 0.0)
    return np.where(omega > floor, omega, 0.0)


def surface_terms(surface: Surface, fixed, s_background, s_low, noise):
    """(logp, d/dfixed, d/ds_background, d/ds_low, d/dnoise) of ``log N(y; Z_1 fixed, V)``, O(n q^2) per call.

    ``Z = [y, 1, X]`` rotated, ``r = Z c`` with ``c = (1, -fixed)``; see :class:`Surface` for f and Phi. With
    ``Dt = 1 + rho lam``, ``B = Z' Dt^-1 Z`` and ``Qf = c'(B - Phi) c``:

        logp = -(n log 2 pi + n log nu + sum log Dt + f + Qf / nu) / 2.

    Over ``t = log rho`` and ``s = log tau``, with ``dt/ds_b = 1/s_b``, ``ds/ds_low = 1/s_low`` and both
    moving by ``-1/nu`` with nu, the chain rule gives the gradient below.
    """
    lam, Z = surface.lam, surface.Z
    n = lam.size
    bad = (-np.inf, np.zeros_like(fixed), 0.0, 0.0, 0.0)
    if not (s_background > 0 and s_low > 0 and noise > 0):
        return bad
    rho, tau = s_background / noise, s_low / noise
    dt = 1.0 + rho * lam
    Zd = Z / dt[:, None]
    B = Z.T @ Zd
    B_t = -rho * (Zd.T @ (Z * (lam / dt)[:, None]))
    f, f_t, f_s, Phi, Phi_t, Phi_s = surface(np.log(rho), np.log(tau))
    c = np.concatenate([[1.0], -np.asarray(fixed, dtype=np.float64)])
    H = B - Phi
    Hc = H @ c
    quad = float(c @ Hc)
    logp = -0.5 * (n * np.log(2 * np.pi) + n * np.log(noise) + float(np.log(dt).sum()) + f + quad / noise)
    G_t = rho * float((lam / dt).sum()) + f_t + float(c @ (B_t - Phi_t) @ c) / noise
    G_s = f_s - float(c @ Phi_s @ c) / noise
    d_fixed = Hc[1:] / noise  # d(-quad / 2 nu)/dc = -Hc / nu, and dc/dfixed = -1
    d_sb = -0.5 * G_t / s_background
    d_low = -0.5 * G_s / s_low
    d_nu = -0.5 * (n / noise - quad / noise**2 - (G_t + G_s) / noise)
    return logp, d_fixed, d_sb, d_low, d_nu


def dense_terms(kernels, r, s, nu):
    """(logp, d/dr, d/ds, d/dnu) at one point; -inf and zero gradients where V is not positive definite.

    NumPy's LAPACK only, for the reason given in :func:`woodbury_terms`.
    """
    V = np.multiply(kernels[0], s[0])
    for K, sk in zip(kernels[1:], s[1:], strict=True):
        V += sk * K
    V.flat[:: V.shape[0] + 1] += nu
    try:
        L = np.linalg.cholesky(V)
    except np.linalg.LinAlgError:
        return -np.inf, np.zeros_like(r), np.zeros_like(s), np.zeros_like(nu)
    inv = np.linalg.inv(V)
    alpha = inv @ r
    logdet = 2.0 * float(np.log(np.diag(L)).sum())
    logp = -0.5 * (r.size * np.log(2 * np.pi) + logdet + float(r @ alpha))
    # tr(V^-1 K) as one dot product over the flattened (symmetric) matrices: no n x n temporary.
    flat = inv.reshape(-1)
    g_s = np.array([-0.5 * float(flat @ K.reshape(-1)) + 0.5 * float(alpha @ (K @ alpha)) for K in kernels])
    g_nu = -0.5 * np.diag(inv) + 0.5 * alpha**2
    return logp, -alpha, g_s, g_nu
