"""Binary and ordinal traits by the Laplace approximation: the marginal mode of the hyperparameters.

The threshold model (:mod:`bayesblup.models.threshold`) samples g because no Gaussian integral removes it from a
probit likelihood. Its joint mode over g (or its non-centred z) and the genetic variance is degenerate: as the
variance grows, ever smaller z fit the records ever better, and h2 goes to 1. ``fit(method="map")`` therefore
maximises the **marginal** posterior of the hyperparameters ``theta`` (h2 or the kernel's variance, mu or the
thresholds, beta), with g integrated out by Laplace's method (C. E. Rasmussen and C. K. I. Williams, *Gaussian
Processes for Machine Learning*, 2006, Algorithm 3.1 and its log marginal, for the probit and ordinal likelihood):

1. For each theta, the mode ``f^`` of ``log p(y | f) - f'K^-1 f / 2`` over the genetic values of the records, ``f ~
   N(0, K)``, ``K = sigma2_k L_p L_p'`` (L the model's own factor, :meth:`BLUPModel.latent_factor`), by Newton's
   method in R&W's form: with ``W = -d2 log p / d eta2`` (diagonal, >= 0: the probit likelihood is log-concave) and
   ``B = I + W^1/2 K W^1/2`` (Cholesky), ``a <- b - W^1/2 B^-1 W^1/2 K b``, ``b = W f + d log p / d eta``, ``f = K
   a``. K is never inverted (a centred G has rank n - 1); a step is halved until ``-a'f/2 + log p(y | f)`` does
   not fall; warm-started from the previous theta's ``a``, until ``a = d log p / d eta`` to 1e-12.
2. Laplace's ``log q(y | theta) = -a'f^/2 + log p(y | f^) - sum log diag(chol B)``: the Laplace approximation of
   ``int p(y | sqrt(sigma2_k) L z) N(z; 0, I) dz``, exactly the model's integral over its latent z.
3. ``theta^`` maximises ``log q(y | theta) + log p(theta)``, the prior from the PyMC model itself
   (``model.logp(vars=hyperparameters, jacobian=False)``, the mode in the original parametrisation as
   ``pymc.find_MAP``), over PyMC's unconstrained value variables, by L-BFGS-B with forward differences from the
   model's initial point. The objective is smooth to ~1e-13 (the Newton tolerance), so scipy's step of ~1.5e-8
   gives the gradient to ~1e-5; central differences, Powell and Nelder-Mead found the same optimum (objective equal
   to 1e-8 on wheat and simulated data) with 1.4-6x the evaluations.

At the mode, ``z^ = sqrt(sigma2_k) L_p' a`` reproduces ``f^`` and gives every individual ``g = sqrt(sigma2_k) L z^``
(the predictive mean ``K_up a`` for one without a record; M-BLUP: ``b = sigma2_b W' a``). Laplace's posterior
variance of g,

    Var(g) = K_gg - K_gp W^1/2 B^-1 W^1/2 K_pg,

(diagonal only) and, for marker effects, ``sigma2_b - sigma2_b^2 diag(W' W^1/2 B^-1 W^1/2 W)``, are conditional on
theta^: the hyperparameters are point estimates.

The log-likelihood of a record in category k, with ``lo = tau_k - eta`` and ``hi = tau_(k+1) - eta`` (``tau_0 =
-inf``, ``tau_K = +inf``; a binary trait's one threshold is 0 and eta carries mu), is ``log (Phi(hi) - Phi(lo))``,
taken on the side where the subtracted term is at most 1/2 (``Phi(-lo) - Phi(-hi)`` when ``lo > 0``) with
``log_ndtr``, and its derivatives through the ratios ``phi(x) / P`` formed in log space: ``d log P / d eta = r_lo -
r_hi`` and ``W = (r_lo - r_hi)^2 + hi r_hi - lo r_lo``, finite in either tail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

__all__ = [
    "InnerMode",
    "LaplaceMode",
    "ThresholdLaplace",
    "inner_mode",
    "laplace_datatree",
    "latent_variance",
    "probit_terms",
    "target_variance",
]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
#: Newton's stopping rule: ``|d log p / d eta - a| <= NEWTON_TOL (1 + |a|)`` (max norm). Tight, because the outer
#: optimiser differentiates the Laplace objective numerically: the log-determinant is first order in f's error.
NEWTON_TOL = 1e-12
#: Columns per block when the posterior variances are formed (n x block at a time).
BLOCK = 2048
#: Below this many records the Laplace fit runs BLAS on one thread (:meth:`ThresholdLaplace.fit`).
SINGLE_THREAD_N = 1000


def probit_terms(eta, codes, cutpoints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per record: ``log P(y | eta)``, its derivative in eta, and minus its second derivative (``W >= 0``).

    ``P(y = k | eta) = Phi(tau_(k+1) - eta) - Phi(tau_k - eta)`` with ``tau_0 = -inf`` and ``tau_K = +inf``
    (module docstring); ``codes`` are the categories 0..K-1 and ``cutpoints`` the K - 1 finite thresholds.
    """
    from scipy.special import log_ndtr

    eta = np.asarray(eta, dtype=np.float64)
    tau = np.concatenate([[-np.inf], np.asarray(cutpoints, dtype=np.float64).ravel(), [np.inf]])
    lo = tau[codes] - eta
    hi = tau[codes + 1] - eta
    # P = Phi(hi) - Phi(lo) = Phi(-lo) - Phi(-hi): subtract the term that is at most 1/2, so P keeps its relative
    # precision in either tail (log1p of minus a ratio of at most Phi(0) / Phi(0) only for a vanishing interval)
    flip = lo > 0
    upper = np.where(flip, -lo, hi)
    lower = np.where(flip, -hi, lo)
    log_upper = log_ndtr(upper)
    logp = log_upper + np.log1p(-np.exp(log_ndtr(lower) - log_upper))

    def ratio(x):  # phi(x) / P in log space, and x with its infinities as 0 (their phi is 0)
        finite = np.isfinite(x)
        x = np.where(finite, x, 0.0)
        # exp(-inf) = 0 for an infinite bound. Past |x| ~ 1e8 (an optimiser's trial point far out) -x^2/2 and logp
        # cancel below float64's precision and the exponent can overflow; the ratio is then the inverse Mills
        # ratio's asymptote |x| (a half-line's bound; an interval's P does not vanish faster).
        with np.errstate(over="ignore"):
            r = np.exp(np.where(finite, -0.5 * x * x - _LOG_SQRT_2PI - logp, -np.inf))
        return np.where(np.isfinite(r), r, np.abs(x)), x

    r_lo, lo = ratio(lo)
    r_hi, hi = ratio(hi)
    d1 = r_lo - r_hi
    w = d1 * d1 + hi * r_hi - lo * r_lo
    return logp, d1, np.maximum(w, 0.0)


@dataclass
class InnerMode:
    """The mode of g at the records for one theta (module docstring, step 1).

    Attributes
    ----------
    a : ndarray (n,)
        ``K^-1 f`` in the sense of the Newton iteration: ``f = K a`` and, at the mode, ``a = d log p / d eta``.
    f : ndarray (n,)
        The mode of the genetic values of the records.
    w : ndarray (n,)
        ``-d2 log p / d eta2`` at the mode.
    chol : ndarray (n, n)
        Lower Cholesky factor of ``B = I + W^1/2 K W^1/2`` at the mode.
    log_likelihood, log_marginal : float
        ``log p(y | f^)`` and Laplace's ``log q(y | theta)``.
    iterations : int
        Newton steps taken.
    """

    a: np.ndarray
    f: np.ndarray
    w: np.ndarray
    chol: np.ndarray
    log_likelihood: float
    log_marginal: float
    iterations: int


def _psi(a, f, offset, codes, cutpoints) -> tuple[float, float]:
    """``-a'f / 2 + log p(y | f)`` (the log joint up to a constant) and ``log p(y | f)``."""
    loglik = float(probit_terms(offset + f, codes, cutpoints)[0].sum())
    return -0.5 * float(a @ f) + loglik, loglik


def inner_mode(K, offset, codes, cutpoints, *, a0=None, tol: float | None = None, max_iter: int = 100) -> InnerMode:
    """Newton's method for the mode of ``f`` under ``N(0, K)`` and the probit / ordinal likelihood (R&W Alg. 3.1).

    ``eta = offset + f``; ``a0`` warm-starts the iteration (taken only if its log joint beats ``a = 0``'s).
    Raises ``RuntimeError`` if the iteration has not converged in ``max_iter`` steps.
    """
    from scipy.linalg import solve_triangular

    tol = NEWTON_TOL if tol is None else tol
    n = K.shape[0]
    a, f = np.zeros(n), np.zeros(n)
    psi, loglik = _psi(a, f, offset, codes, cutpoints)
    if a0 is not None:
        f0 = K @ a0
        psi0, loglik0 = _psi(a0, f0, offset, codes, cutpoints)
        if psi0 > psi:
            a, f, psi, loglik = np.array(a0, dtype=np.float64), f0, psi0, loglik0
    diagonal = np.diag_indices(n)
    previous = np.inf
    for iteration in range(max_iter + 1):
        _, d1, w = probit_terms(offset + f, codes, cutpoints)
        sw = np.sqrt(w)
        B = sw[:, None] * K * sw[None, :]
        B[diagonal] += 1.0
        chol = np.linalg.cholesky(B)
        # stationary: a = d log p / d eta; or, close to it, a step that no longer halves the gap (rounding's floor)
        scale = 1.0 + np.max(np.abs(a))
        gap = float(np.max(np.abs(d1 - a)))
        if gap <= tol * scale or (gap <= 1e-8 * scale and gap > 0.5 * previous):
            log_marginal = psi - float(np.log(np.diag(chol)).sum())
            return InnerMode(a, f, w, chol, loglik, log_marginal, iteration)
        if iteration == max_iter:
            break
        previous = gap
        b = w * f + d1
        c = solve_triangular(chol, sw * (K @ b), lower=True, check_finite=False)
        step = b - sw * solve_triangular(chol.T, c, lower=False, check_finite=False) - a
        # Newton's step, halved until the log joint does not fall (it is concave in f; near the mode, rounding)
        for _ in range(40):
            a_new = a + step
            f_new = K @ a_new
            psi_new, loglik_new = _psi(a_new, f_new, offset, codes, cutpoints)
            if psi_new >= psi - 1e-13 * (1.0 + abs(psi)):
                break
            step = 0.5 * step
        else:
            break  # no ascent along Newton's direction
        a, f, psi, loglik = a_new, f_new, psi_new, loglik_new
    raise RuntimeError(f"the Laplace inner mode did not converge in {iteration} Newton steps (gradient gap {gap:.2e}).")


def latent_variance(chol, w, C, prior_diagonal, *, scale: float = 1.0, block: int = BLOCK) -> np.ndarray:
    """Laplace's ``diag(Var(T | y))`` at the mode of targets T with ``Cov(T, f) = scale C'`` (C: n x t).

    ``prior - scale^2 diag(C' W^1/2 B^-1 W^1/2 C)``; ``chol`` and ``w`` are the mode's (:class:`InnerMode`). In
    blocks of columns, so memory stays at n x ``block`` besides C (M-BLUP's W is passed as it is, not copied).
    """
    from scipy.linalg import solve_triangular

    sw = np.sqrt(w)[:, None]
    out = np.array(prior_diagonal, dtype=np.float64, copy=True)
    for start in range(0, C.shape[1], block):
        cols = slice(start, start + block)
        V = solve_triangular(chol, sw * C[:, cols], lower=True, check_finite=False)
        out[cols] -= scale**2 * np.einsum("ij,ij->j", V, V)
    return np.maximum(out, 0.0)


def target_variance(K0, sigma2, w, C0, v) -> np.ndarray:
    """Laplace's variance of targets T with ``Cov(T, f) = sigma2 C0'`` and prior variance ``sigma2 v``, at theta^.

    ``K = sigma2 K0`` over the records and ``w`` the likelihood's curvature at the mode (the ``laplace`` group of a
    fit): ``sigma2 v - sigma2^2 diag(C0' W^1/2 B^-1 W^1/2 C0)``. New individuals of a binary or ordinal trait.
    """
    sw = np.sqrt(w)
    B = sigma2 * (sw[:, None] * K0 * sw[None, :])
    B[np.diag_indices(B.shape[0])] += 1.0
    return latent_variance(np.linalg.cholesky(B), w, C0, sigma2 * np.asarray(v, dtype=np.float64), scale=sigma2)


@dataclass
class LaplaceMode:
    """The marginal mode of a threshold model's hyperparameters and Laplace's posterior of g there."""

    point: dict  # every value variable of the model at the mode (z = z^), model order
    sigma2: float
    mode: InnerMode
    g_sd: np.ndarray  # every individual
    b_sd: np.ndarray | None  # M-BLUP's marker effects
    objective: float  # -(log q(y | theta^) + log p(theta^))
    evaluations: int
    newton_iterations: int
    converged: bool
    message: str
    seconds: dict = field(default_factory=dict)


class ThresholdLaplace:
    """The Laplace approximation of a threshold :class:`~bayesblup.models.model.BLUPModel` (module docstring).

    Parameters
    ----------
    blup : BLUPModel
        A binary or ordinal model of one kernel; its ``pm.Model`` supplies the hyperparameters, their priors and
        transforms, and the parameters the likelihood reads.
    """

    def __init__(self, blup):
        if not blup.threshold:
            raise InputError("the Laplace approximation here is for binary and ordinal traits (family=...).")
        model = blup.model
        kernel = blup.kernels[0]
        self.blup = blup
        self.model = model
        self.kernel = kernel
        _, _, L = blup.latent_factor(kernel)
        self.L_all = np.asarray(L, dtype=np.float64)
        index = blup.records.record_index
        # the records' rows of L (a view when they are the individuals in order: M-BLUP's W is not copied)
        same = np.array_equal(index, np.arange(blup.n))
        self.L_rec = self.L_all[: blup.n] if same else self.L_all[: blup.n][index]
        self.K0 = self.L_rec @ self.L_rec.T
        self.codes = blup.categories.codes
        self.X = blup.records.X
        self.binary = blup.family == "binary"
        latent = model["z"]
        self.hyper = [rv for rv in model.free_RVs if rv is not latent]
        self.values = [model.rvs_to_values[rv] for rv in self.hyper]
        start = model.initial_point()
        self.start = start
        self.shapes = [np.shape(start[v.name]) for v in self.values]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        compile_kwargs = {"inputs": self.values, "point_fn": False, "on_unused_input": "ignore"}
        self._prior = model.compile_fn(model.logp(vars=self.hyper, jacobian=False), **compile_kwargs)
        outs = [model[kernel.variance_name], model["mu"] if self.binary else model["thresholds"]]
        if self.X is not None:
            outs.append(model["beta"])
        self._parameters = model.compile_fn(model.replace_rvs_by_values(outs), **compile_kwargs)
        self._a = None
        self.evaluations = 0
        self.newton_iterations = 0

    # --- theta -----------------------------------------------------------------------------------
    def x0(self) -> np.ndarray:
        """The model's initial point, as the optimiser's vector of unconstrained values."""
        return np.concatenate([np.ravel(self.start[v.name]) for v in self.values]).astype(np.float64)

    def unpack(self, x) -> list[np.ndarray]:
        out, start = [], 0
        for shape, size in zip(self.shapes, self.sizes, strict=True):
            out.append(np.asarray(x[start : start + size], dtype=np.float64).reshape(shape))
            start += size
        return out

    def parameters(self, x) -> tuple[float, np.ndarray, np.ndarray]:
        """``(sigma2_k, offset of each record, cutpoints)`` at the unconstrained values ``x``."""
        out = self._parameters(*self.unpack(x))
        sigma2 = float(out[0])
        offset = np.zeros(self.codes.size)
        if self.binary:  # the one threshold at 0, mu in eta
            offset += float(out[1])
            cutpoints = np.zeros(1)
        else:
            cutpoints = np.asarray(out[1], dtype=np.float64)
        if self.X is not None:
            offset += self.X @ np.asarray(out[2], dtype=np.float64)
        return sigma2, offset, cutpoints

    def log_prior(self, x) -> float:
        return float(self._prior(*self.unpack(x)))

    # --- the objective ---------------------------------------------------------------------------
    def mode_at(self, x, *, warm: bool = True) -> tuple[float, InnerMode]:
        """``(sigma2_k, inner mode)`` at the unconstrained values ``x``."""
        sigma2, offset, cutpoints = self.parameters(x)
        mode = inner_mode(sigma2 * self.K0, offset, self.codes, cutpoints, a0=self._a if warm else None)
        self._a = mode.a
        self.newton_iterations += mode.iterations
        return sigma2, mode

    def objective(self, x) -> float:
        """``-(log q(y | theta) + log p(theta))`` at the unconstrained values ``x``."""
        self.evaluations += 1
        prior = self.log_prior(x)
        if not np.isfinite(prior):
            return np.inf
        _, mode = self.mode_at(x)
        return -(mode.log_marginal + prior)

    def optimise(self, *, gtol: float = 1e-7, maxiter: int = 500):
        """L-BFGS-B with forward differences from the model's initial point: scipy's ``OptimizeResult``."""
        from scipy.optimize import minimize

        return minimize(
            self.objective, self.x0(), method="L-BFGS-B", jac="2-point",
            options={"gtol": gtol, "ftol": 1e-14, "maxiter": maxiter, "maxls": 50},
        )  # fmt: skip

    # --- the fit -------------------------------------------------------------------------------------
    def fit(self) -> LaplaceMode:
        """The marginal mode, z^ and every value variable there, and Laplace's sd of g (and b)."""
        from threadpoolctl import threadpool_limits

        # Hundreds of small n x n products and Cholesky factors: below SINGLE_THREAD_N one BLAS thread. With the CPUs
        # busy, OpenBLAS's threads wait on each other at every call: on 2 cores with 4 other busy processes the
        # optimisation took 21 s at n = 150 and 5.0 s at n = 400 with its default threads, 0.36 s and 0.58 s with one.
        with threadpool_limits(limits=1 if self.K0.shape[0] < SINGLE_THREAD_N else None, user_api="blas"):
            return self._fit()

    def _fit(self) -> LaplaceMode:
        t0 = time.perf_counter()
        res = self.optimise()
        t1 = time.perf_counter()
        x = np.asarray(res.x, dtype=np.float64)
        sigma2, mode = self.mode_at(x)
        # z^ = sqrt(sigma2) L_p' a: sqrt(sigma2) L z^ = K a = f^ at the records, K_up a elsewhere
        z = np.sqrt(sigma2) * (self.L_rec.T @ mode.a)
        values = dict(zip([v.name for v in self.values], self.unpack(x), strict=True))
        point = {v.name: values[v.name] if v.name in values else z for v in self.model.value_vars}
        # Laplace's variance of g for every individual: K_gg - K_gp W^1/2 B^-1 W^1/2 K_pg, a block of them at a time
        N = self.L_all.shape[0]
        g_var = np.empty(N)
        for start in range(0, N, BLOCK):
            L = self.L_all[start : start + BLOCK]
            prior = sigma2 * np.einsum("ij,ij->i", L, L)
            g_var[start : start + BLOCK] = latent_variance(mode.chol, mode.w, self.L_rec @ L.T, prior, scale=sigma2)
        b_sd = None
        if self.kernel.markers is not None:  # b = sigma2_b W' a; Cov(b, f) = sigma2_b W_p'
            m = self.L_rec.shape[1]
            b_sd = np.sqrt(latent_variance(mode.chol, mode.w, self.L_rec, np.full(m, sigma2), scale=sigma2))
        seconds = {"optimisation_s": t1 - t0, "variances_s": time.perf_counter() - t1}
        return LaplaceMode(
            point=point, sigma2=sigma2, mode=mode, g_sd=np.sqrt(g_var), b_sd=b_sd, objective=float(res.fun),
            evaluations=self.evaluations, newton_iterations=self.newton_iterations, converged=bool(res.success),
            message=str(res.message), seconds=seconds,
        )  # fmt: skip


def laplace_datatree(blup, result: LaplaceMode):
    """The fit's DataTree, as ``pymc.find_MAP`` writes one: a posterior of one chain and one draw.

    Every free variable and Deterministic of the model at (theta^, z^), from PyMC's own trace of the model (names
    and dims as NUTS writes them); and a ``laplace`` group: ``g_sd`` per individual, ``curvature`` (W at the mode)
    per record, ``b_sd`` per marker for M-BLUP, the optimiser's figures as attributes.
    """
    import pymc as pm
    import xarray as xr
    from pymc.backends.base import MultiTrace
    from pymc.backends.ndarray import NDArray

    from ..names import INDIVIDUAL, MARKER, RECORD

    model = blup.model
    point = {v.name: np.asarray(result.point[v.name], dtype=v.dtype) for v in model.value_vars}  # model order
    trace = NDArray(model=model)
    trace.setup(draws=1, chain=0)
    trace.record(point, in_warmup=False)
    trace.close()
    datatree = pm.to_inference_data(MultiTrace([trace]), model=model)
    if "sample_stats" in datatree.children and not datatree["sample_stats"].data_vars:
        del datatree["sample_stats"]
    data = {
        "g_sd": ((INDIVIDUAL,), result.g_sd),
        "curvature": ((RECORD,), result.mode.w),
    }
    coords = {INDIVIDUAL: blup.individuals.astype(str), RECORD: np.arange(blup.n_records)}
    if result.b_sd is not None:
        data["b_sd"] = ((MARKER,), result.b_sd)
        coords[MARKER] = blup.kernels[0].markers.astype(str)
    attrs = {
        "method": "Laplace approximation: marginal mode of the hyperparameters (bayesblup.inference.laplace)",
        "optimizer": "L-BFGS-B, forward differences",
        "converged": int(result.converged),
        "message": result.message,
        "objective": result.objective,
        "log_marginal": result.mode.log_marginal,
        "evaluations": result.evaluations,
        "newton_iterations": result.newton_iterations,
    }
    datatree["laplace"] = xr.DataTree(xr.Dataset(data, coords=coords, attrs=attrs))
    return datatree
