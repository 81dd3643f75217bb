"""``method="quadrature"``: the exact posterior of a one-kernel Gaussian model's two variance components.

With one kernel, one trait and no permanent environment, everything in the posterior but two numbers is
Gaussian given those two: mu and beta have a Gaussian prior and enter the likelihood linearly, so they are
integrated out in closed form (:mod:`bayesblup.inference.gls`), and g is integrated out by the marginal form.
What is left is a two-dimensional density, which is integrated numerically on a grid:

Coordinates
    ``x = logit h2`` and ``z = log sigma2_p`` (``sigma2_p = c sigma2_k + sigma2_e``), whatever the prior set's own
    parameters: ``sigma2_k / sigma2_e = e^x / c`` depends on x alone, so the O(n) statistics of the likelihood are
    computed once per grid row and a whole row of z costs O(1) a point (:func:`~bayesblup.inference.gls.
    gls_statistics`). Both coordinates are unbounded, the posterior is close to Gaussian in them (they are the
    ones NUTS samples under ``prior="default"``), and a posterior piled against h2 = 0 or 1 becomes a smooth
    exponential tail in x rather than a spike at an end of (0, 1). The density in (x, z) is the model's own:
    the h2 parameterisation's ``p(h2) p(sigma2_p) h2 (1 - h2) sigma2_p``, or the variances'
    ``p(sigma2_k) p(sigma2_e) sigma2_k sigma2_e`` (the map from ``(log sigma2_k, log sigma2_e)`` has Jacobian 1),
    which is PyMC's density of its transformed free variables with mu and beta integrated out.
Adaptive bounds
    The mode is found by Newton's method (finite-difference derivatives) from the best point of a coarse scan,
    and the grid starts at the mode +- 6 sd of each coordinate (from the curvature there), ``sd / 4`` apart. A side
    is extended by 3 sd while the outermost sd-wide band carries more than ``edge_mass`` (1e-9) of the total.
Refinement
    The midpoint rule on a uniform grid converges faster than any power of the spacing for a smooth density that
    vanishes at the edges; the spacing is halved until no posterior mean, sd or 5% / 95% quantile of the summary
    parameters moves by more than ``tolerance`` (1e-6) of that parameter's sd between two grids. The last change
    is reported as the error estimate (``settings["quadrature"]["error_estimate"]``): it bounds the error of the
    coarser grid, and the finer one's is smaller.
Quantiles
    h2's from its marginal; a variance's, ``exp(z + g(x))``, from each row's conditional distribution function in
    z, summed over the rows; mu's and beta's from the mixture of their Gaussian conditionals over the grid. The
    distribution functions integrate the density itself, evaluated where needed, by 8-point Gauss-Legendre panels
    about one sd wide (an indicator function would cost the midpoint rule its accuracy: O(h^2)).

The summary (mean, sd, q05, q95) comes from the quadrature, as do the exact posterior means of the genetic values
and of the marker effects. The draws for everything else (genetic values' sd, predictions, plots) are independent:
a cell drawn with its posterior mass, a point uniform within it (which adds ``h^2 / 12`` to the variance of a
coordinate: below 1e-3 of it at the final spacing), and ``(mu, beta)`` from their exact Gaussian conditional.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..names import BETA, H2, MU, SIGMA2_E, SIGMA2_G_EQUIV, SIGMA2_P
from .gls import FixedPrior, fixed_conditional, gls_statistics
from .prior_density import log_density

__all__ = [
    "Quadrature",
    "check_quadrature",
    "exact_genetic_means",
    "exact_target_means",
    "fixed_prior",
    "quadrature",
    "quadrature_datatree",
    "quadrature_draws",
]

TOLERANCE = 1e-6  # largest change of a summary figure, in sds, between the last two grids
EDGE_MASS = 1e-9  # most posterior mass an sd-wide band at an edge of the grid may carry
QUANTILES = (0.05, 0.95)
_SPAN = 6.0  # the first grid: the mode +- this many sds
_FIRST_SPACING = 4  # cells per sd on the first grid
_MAX_POINTS = 2_000_000  # stop refining before a grid this large (reported as not converged)
_X_LIMIT = 40.0  # |logit h2| beyond which h2 is 0 or 1 in float64


def check_quadrature(model) -> None:
    """Refuse, in one line and before any work, a model the quadrature cannot integrate exactly."""
    why = None
    if model.multi_trait:
        why = f"this model fits {len(model.traits)} traits"
    elif model.threshold:
        why = f"family={model.family!r} has no Gaussian integral over g"
    elif not model.single:
        why = f"this model has {len(model.kernels)} kernels (marker sets), each with its own variance"
    elif model.form != "marginal":
        why = "form='latent' samples g explicitly; use form='marginal' (the default)"
    elif model.permanent_environment:
        why = "a permanent environment makes three variance components"
    elif model.extensions:
        why = f"you extended the model ({', '.join(model.extensions)}), and it integrates the model bayesblup built"
    if why is not None:
        raise InputError(
            "method='quadrature' integrates the two variance components of one kernel and one Gaussian trait "
            f"exactly; {why}: use method='nuts'."
        )
    spec = model._prior_spec
    if isinstance(spec, dict) and MU in spec:  # the presets' mu prior is Normal; a user's must be Normal or Flat
        _gaussian(spec[MU])


def _gaussian(prior) -> tuple[float, float]:
    """``(mean, precision)`` of mu's prior, Normal or Flat (precision 0); refused otherwise."""
    params = prior.parameters
    if prior.distribution == "Flat" and not params:
        mean, precision = 0.0, 0.0
    elif (
        prior.distribution == "Normal"
        and set(params) <= {"mu", "sigma", "tau"}
        and len({"sigma", "tau"} & set(params)) < 2
    ):
        mean = float(params.get("mu", 0.0))
        precision = float(params["tau"]) if "tau" in params else 1.0 / float(params.get("sigma", 1.0)) ** 2
    else:
        raise InputError(
            f"method='quadrature' integrates mu out exactly, which needs a Normal or Flat prior on mu; the prior is "
            f"{prior.distribution}({params}): use method='nuts'."
        )
    return mean, precision


def fixed_prior(model) -> FixedPrior:
    """The model's prior of ``(mu, beta)`` as a Gaussian (:class:`~bayesblup.inference.gls.FixedPrior`)."""
    _, priors = model.priors
    mean, precision = _gaussian(priors[MU])
    means, precisions = [mean], [precision]
    if model.records.X is not None:
        scale = model.beta_prior_scale
        means += [0.0] * scale.size
        precisions += list(1.0 / scale**2)
    return FixedPrior(mean=np.asarray(means), precision=np.asarray(precisions))


def _softplus(x):
    return np.logaddexp(0.0, x)


class _Density:
    """The log posterior density of ``(x, z) = (logit h2, log sigma2_p)``, mu and beta integrated out."""

    def __init__(self, model):
        self.data = model.spectral_data
        self.c = float(model.factor)
        _, self.priors = model.priors
        self.h2_style = H2 in self.priors
        self.fixed = fixed_prior(model)
        self.variance = model.kernels[0].variance_name
        self.p = self.fixed.mean.size

    def log_prior(self, x, z):
        log_h2, log_1mh2 = -_softplus(-x), -_softplus(x)
        if self.h2_style:
            h2_prior = self.priors[H2]
            if h2_prior.distribution == "Beta" and set(h2_prior.parameters) == {"alpha", "beta"}:
                # in logs of h2 and 1 - h2: exp(x) / (1 + exp(x)) rounds to 1 long before log(1 - h2) is -inf
                from scipy.special import betaln

                a, b = float(h2_prior.parameters["alpha"]), float(h2_prior.parameters["beta"])
                log_p = (a - 1) * log_h2 + (b - 1) * log_1mh2 - betaln(a, b)
            else:
                log_p = log_density(h2_prior, np.exp(log_h2))
            return log_p + log_density(self.priors[SIGMA2_P], np.exp(z)) + log_h2 + log_1mh2 + z
        log_k = z + log_h2 - math.log(self.c)
        log_e = z + log_1mh2
        return log_density(self.priors[self.variance], np.exp(log_k)) + log_density(
            self.priors[SIGMA2_E], np.exp(log_e)
        ) + log_k + log_e  # fmt: skip

    def ratio(self, x):
        return np.exp(x) / self.c

    def points(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The log density at the points ``(x_i, z_i)``."""
        stats = gls_statistics(self.data, self.ratio(x))
        cond = fixed_conditional(stats, np.exp(z - _softplus(x)), self.fixed)
        return cond.log_ml + self.log_prior(x, z)

    def rows(self, x: np.ndarray, stats, z: np.ndarray):
        """Log density and theta's conditionals at ``z`` (R, K) in the rows ``x`` (R,) whose statistics are given."""
        cond = fixed_conditional(stats, np.exp(z - _softplus(x)[:, None]), self.fixed)
        log_post = cond.log_ml + self.log_prior(x[:, None], z)
        return np.where(np.isfinite(log_post), log_post, -np.inf), cond

    def grid(self, x: np.ndarray, z: np.ndarray) -> _Grid:
        """The log density on the tensor grid ``x`` by ``z``, with theta's conditionals."""
        stats = gls_statistics(self.data, self.ratio(x))
        log_post, cond = self.rows(x, stats, np.broadcast_to(z, (x.size, z.size)))
        return _Grid(x=x, z=z, log_post=log_post, mean=cond.mean, chol=cond.chol, stats=stats)


@dataclass
class _Grid:
    x: np.ndarray
    z: np.ndarray
    log_post: np.ndarray  # (Nx, Nz)
    mean: np.ndarray  # (Nx, Nz, p): E[theta | x, z, y]
    chol: np.ndarray  # (Nx, Nz, p, p): Cholesky factor of theta's conditional precision
    stats: object  # GLSStatistics of the rows

    @property
    def hx(self) -> float:
        return float(self.x[1] - self.x[0])

    @property
    def hz(self) -> float:
        return float(self.z[1] - self.z[0])

    @property
    def weight(self) -> np.ndarray:
        w = np.exp(self.log_post - self.log_post.max())
        return w / w.sum()


def _mode(density: _Density, start_z: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(mode, sd, found)``: Newton's method from the best point of a coarse scan; sd from the curvature."""
    x0 = np.linspace(-8.0, 8.0, 33)
    z0 = start_z + np.linspace(-4.0, 4.0, 17)
    scan = density.grid(x0, z0).log_post
    if not np.isfinite(scan).any():
        raise InputError(
            "method='quadrature' found no finite posterior density for h2 in (0.0003, 0.9997) and sigma2_p within a "
            "factor e^4 of var(y): check the priors' supports, or use method='nuts'."
        )
    i, j = np.unravel_index(np.argmax(scan), scan.shape)
    point = np.array([x0[i], z0[j]])
    step = 1e-3
    offsets = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]]) * step
    found = False
    H = None
    for _ in range(100):
        f = density.points(point[0] + offsets[:, 0], point[1] + offsets[:, 1])
        if not np.isfinite(f).all():  # at the edge of a prior's support: no curvature to read; the grid finds it
            H = None
            break
        g = np.array([f[1] - f[2], f[3] - f[4]]) / (2 * step)
        hxx = (f[1] - 2 * f[0] + f[2]) / step**2
        hzz = (f[3] - 2 * f[0] + f[4]) / step**2
        hxz = (f[5] - f[6] - f[7] + f[8]) / (4 * step**2)
        H = np.array([[hxx, hxz], [hxz, hzz]])
        negative = np.all(np.linalg.eigvalsh(H) < 0)
        move = -np.linalg.solve(H, g) if negative else 0.5 * g / max(1.0, float(np.abs(g).max()))
        for _ in range(40):  # backtrack until the density does not fall
            trial = point + move
            if density.points(trial[:1], trial[1:])[0] >= f[0] - 1e-12:
                break
            move = move / 2
        point = point + move
        if negative and np.abs(move).max() < 1e-7:
            found = True
            break
    sd = np.array([1.0, 1.0])
    if H is not None and np.all(np.linalg.eigvalsh(H) < 0):
        sd = np.sqrt(np.diag(np.linalg.inv(-H)))
    return point, np.clip(sd, 1e-4, 10.0), found


# --- quantiles ---------------------------------------------------------------------------------------------

_GAUSS = np.polynomial.legendre.leggauss(8)  # nodes and weights on [-1, 1] for each panel


def _panels(lo: float, hi: float, width: float) -> np.ndarray:
    """Panel edges from lo to hi, each at most ``width`` wide."""
    return np.linspace(lo, hi, max(1, math.ceil((hi - lo) / width)) + 1)


def _gauss_points(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre points (..., 8) in [a, b] (arrays of the same shape) and their weights."""
    nodes, weights = _GAUSS
    half = (b - a)[..., None] / 2
    return a[..., None] + half * (nodes + 1), half * weights


class _Distribution:
    """The distribution function of a coordinate, by composite Gauss-Legendre over panels of about one sd.

    ``density(points)`` gives the (unnormalised) marginal density at points (R, K) of the integration variable
    in each of R independent rows; the distribution function of row r is integrated from ``lo`` upwards. The
    integrand is the posterior itself, evaluated where it is needed, so the error is that of an 8-point rule on
    a smooth function (far below 1e-10), not of an interpolation between grid values.
    """

    def __init__(self, density, lo: float, hi: float, width: float, n_rows: int):
        self.density, self.lo, self.hi = density, lo, hi
        self.edges = _panels(lo, hi, width)
        a = np.broadcast_to(self.edges[:-1], (n_rows, self.edges.size - 1))
        b = np.broadcast_to(self.edges[1:], (n_rows, self.edges.size - 1))
        points, weights = _gauss_points(a, b)
        values = density(points.reshape(n_rows, -1)).reshape(points.shape)
        panel = (values * weights).sum(axis=-1)
        self.cumulative = np.concatenate([np.zeros((n_rows, 1)), np.cumsum(panel, axis=1)], axis=1)

    @property
    def totals(self) -> np.ndarray:
        return self.cumulative[:, -1]

    def __call__(self, upper: np.ndarray) -> np.ndarray:
        """``int_lo^upper_r`` of row r's density, for upper (R,)."""
        u = np.clip(upper, self.lo, self.hi)
        k = np.clip(np.searchsorted(self.edges, u, side="right") - 1, 0, self.edges.size - 2)
        points, weights = _gauss_points(self.edges[k], u)
        part = (self.density(points) * weights).sum(axis=-1)
        return self.cumulative[np.arange(u.size), k] + part


def _solve(cdf_pdf, lo: float, hi: float, start: float, level: float) -> float:
    """``cdf(q) = level`` for an increasing cdf: Newton's method kept inside a shrinking bracket."""
    q = min(max(start, lo), hi)
    for _ in range(100):
        f, slope = cdf_pdf(q)
        f -= level
        if f < 0:
            lo = q
        else:
            hi = q
        step = q - f / slope if slope > 0 else 0.5 * (lo + hi)
        q_next = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(q_next - q) <= 1e-12 * max(1.0, abs(q)) or hi - lo <= 1e-13 * max(1.0, abs(q)):
            return q_next
        q = q_next
    return q


def _h2_quantiles(density: _Density, grid: _Grid, offset: float, sd: float, levels) -> list[float]:
    """Quantiles of x = logit h2 from its marginal density, ``p(x) = sum_z h_z f(x, z)`` (midpoint in z)."""
    z = grid.z

    def marginal(points):  # (R, K) values of x -> (R, K) marginal densities
        flat = points.reshape(-1)
        stats = gls_statistics(density.data, density.ratio(flat))
        log_post, _ = density.rows(flat, stats, np.broadcast_to(z, (flat.size, z.size)))
        return (np.exp(log_post - offset).sum(axis=1) * grid.hz).reshape(points.shape)

    lo, hi = float(grid.x[0] - grid.hx / 2), float(grid.x[-1] + grid.hx / 2)
    F = _Distribution(marginal, lo, hi, sd, 1)
    total = float(F.totals[0])

    def cdf_pdf(q):
        return float(F(np.array([q]))[0]) / total, float(marginal(np.array([[q]]))[0, 0]) / total

    mode = float(grid.x[np.argmax(grid.log_post.max(axis=1))])
    return [_solve(cdf_pdf, lo, hi, mode, level) for level in levels]


def _scale_quantiles(density, grid, offset, sd, g, levels, start) -> list[float]:
    """Quantiles of ``t = z + g(x)``, the log of a variance.

    The rows of x by the midpoint rule, each row's distribution function in z by :class:`_Distribution`.
    """
    x = grid.x

    def row_density(points):  # (Nx, K) values of z in each row
        log_post, _ = density.rows(x, grid.stats, points)
        return np.exp(log_post - offset)

    lo, hi = float(grid.z[0] - grid.hz / 2), float(grid.z[-1] + grid.hz / 2)
    F = _Distribution(row_density, lo, hi, sd, x.size)
    total = float(F.totals.sum())

    def cdf_pdf(t):
        upper = t - g
        inside = (upper > lo) & (upper < hi)
        pdf = np.where(inside, row_density(upper[:, None])[:, 0], 0.0)
        return float(F(upper).sum()) / total, float(pdf.sum()) / total

    bounds = float(lo + g.min()), float(hi + g.max())
    return [_solve(cdf_pdf, *bounds, start, level) for level in levels]


def _mixture_quantiles(w, m, s, start, levels) -> list[float]:
    """Quantiles of the Gaussian mixture ``sum w N(m, s^2)``."""
    from scipy.special import ndtr

    total = float(w.sum())

    def cdf_pdf(q):
        u = (q - m) / s
        return float(w @ ndtr(u)) / total, float(w @ (np.exp(-0.5 * u**2) / s)) / (total * math.sqrt(2 * math.pi))

    lo, hi = float((m - 40 * s).min()), float((m + 40 * s).max())
    return [_solve(cdf_pdf, lo, hi, start, level) for level in levels]


# --- the summary of a grid ----------------------------------------------------------------------------------


def _parameters(model) -> list[tuple[str, str, object]]:
    """``(label, kind, detail)`` of each summary row: h2 (x), a variance ``exp(z + g(x))``, or theta's k-th entry."""
    c = float(model.factor)
    kernel = model.kernels[0]
    out = [(H2, "h2", None), (kernel.variance_name, "scale", ("h2", -math.log(c)))]
    if kernel.reports_equivalent:
        out.append((SIGMA2_G_EQUIV, "scale", ("h2", 0.0)))
    out += [(SIGMA2_E, "scale", ("1-h2", 0.0)), (MU, "theta", 0)]
    if model.records.X is not None:
        out += [(f"{BETA}[{name}]", "theta", k + 1) for k, name in enumerate(model.records.covariates)]
    return out


def _summarise(density: _Density, grid: _Grid, sd: np.ndarray, parameters) -> dict[str, dict[str, float]]:
    """Mean, sd, q05 and q95 of each parameter under the grid's posterior (module docstring)."""
    W = grid.weight
    offset = float(grid.log_post.max())
    x, z = grid.x, grid.z
    log_h2, log_1mh2 = -_softplus(-x), -_softplus(x)
    mx = W.sum(axis=1)
    levels = QUANTILES
    theta_sd = None
    out = {}
    for label, kind, detail in parameters:
        if kind == "h2":
            values = np.exp(log_h2)
            mean = float(mx @ values)
            var = float(mx @ values**2) - mean**2
            q = 1.0 / (1.0 + np.exp(-np.asarray(_h2_quantiles(density, grid, offset, sd[0], levels))))
        elif kind == "scale":
            which, shift = detail
            g = (log_h2 if which == "h2" else log_1mh2) + shift  # log value = z + g(x)
            values = np.exp(z[None, :] + g[:, None])
            mean = float((W * values).sum())
            var = float((W * values**2).sum()) - mean**2
            q = np.exp(_scale_quantiles(density, grid, offset, sd[1], g, levels, math.log(mean)))
        else:
            k = detail
            if theta_sd is None:
                # diag of the conditional covariance A^-1 = L'^-1 L^-1: squared column norms of L^-1
                p = grid.chol.shape[-1]
                Linv = np.linalg.solve(grid.chol, np.broadcast_to(np.eye(p), grid.chol.shape))
                theta_sd = np.sqrt((Linv**2).sum(axis=-2))
            m, s = grid.mean[..., k], theta_sd[..., k]
            mean = float((W * m).sum())
            var = float((W * (s**2 + m**2)).sum()) - mean**2
            keep = W > 1e-16 * W.max()
            q = _mixture_quantiles(W[keep], m[keep], s[keep], mean, levels)
        out[label] = {"mean": mean, "sd": math.sqrt(max(var, 0.0)), "q05": float(q[0]), "q95": float(q[1])}
    return out


def _change(new: dict, old: dict) -> float:
    """The largest change of a summary figure between two grids, in units of the parameter's sd."""
    worst = 0.0
    for label, row in new.items():
        unit = row["sd"] if row["sd"] > 0 else max(abs(row["mean"]), 1e-300)
        for key in ("mean", "sd", "q05", "q95"):
            worst = max(worst, abs(row[key] - old[label][key]) / unit)
    return worst


@dataclass
class Quadrature:
    """The result of :func:`quadrature`: the summary, the final grid, and how it was reached."""

    table: dict[str, dict[str, float]]
    grid: _Grid
    mode: np.ndarray
    sd: np.ndarray
    mode_found: bool
    error_estimate: float
    converged: bool
    levels: int
    extensions: int
    at_limit: list[str]
    tolerance: float
    edge_mass: float
    exact_x: np.ndarray  # sum over the grid of rho / (rho lam + 1) * (y* - X1* E[theta | x, z]): E[T] = M S U exact_x
    seconds: float = 0.0

    def settings(self) -> dict:
        """What ``fit.settings["quadrature"]`` records."""
        g = self.grid
        return {
            "coordinates": "x = logit h2, z = log sigma2_p; mu and beta integrated out analytically",
            "rule": "midpoint on a uniform grid; quantiles by 8-point Gauss-Legendre panels",
            "grid": [int(g.x.size), int(g.z.size)],
            "spacing": [g.hx, g.hz],
            "bounds": {
                "x": [float(g.x[0] - g.hx / 2), float(g.x[-1] + g.hx / 2)],
                "z": [float(g.z[0] - g.hz / 2), float(g.z[-1] + g.hz / 2)],
            },
            "mode": {"x": float(self.mode[0]), "z": float(self.mode[1]), "found": self.mode_found},
            "curvature_sd": {"x": float(self.sd[0]), "z": float(self.sd[1])},
            "refinements": self.levels,
            "extensions": self.extensions,
            "at_limit": self.at_limit,
            "error_estimate": self.error_estimate,
            "tolerance": self.tolerance,
            "edge_mass": self.edge_mass,
            "converged": self.converged,
        }


def _nodes(lo: float, h: float, cells: int) -> np.ndarray:
    return lo + (np.arange(cells) + 0.5) * h


def quadrature(model, *, tolerance: float = TOLERANCE, edge_mass: float = EDGE_MASS) -> Quadrature:
    """Integrate the posterior of the variance components (module docstring).

    Parameters
    ----------
    model : BLUPModel
        One kernel, one Gaussian trait, marginal form, no permanent environment (:func:`check_quadrature`).
    tolerance : float
        Largest change of a summary figure between the last two grids, in units of the parameter's sd.
    edge_mass : float
        Largest posterior mass an sd-wide band at an edge of the grid may carry.
    """
    t0 = time.perf_counter()
    density = _Density(model)
    parameters = _parameters(model)
    start_z = math.log(float(np.var(model.y, ddof=1)))
    mode, sd, found = _mode(density, start_z)
    # bounds as (lo, cells) per axis at spacing h; extended by whole cells, so refinement halves them exactly
    h = sd / _FIRST_SPACING
    cells = np.full(2, int(2 * _SPAN * _FIRST_SPACING))
    lo = mode - _SPAN * sd
    extensions = 0
    at_limit: list[str] = []
    z_limit = (start_z - 60.0, start_z + 60.0)
    previous = None
    change = math.inf
    levels = 0
    while True:
        while True:  # extend the sides whose sd-wide edge band holds more than edge_mass
            x_nodes, z_nodes = _nodes(lo[0], h[0], cells[0]), _nodes(lo[1], h[1], cells[1])
            grid = density.grid(x_nodes, z_nodes)
            W = grid.weight
            moved = False
            for axis, marginal, limits in ((0, W.sum(axis=1), (-_X_LIMIT, _X_LIMIT)), (1, W.sum(axis=0), z_limit)):
                band = max(1, math.ceil(sd[axis] / h[axis]))
                add = math.ceil(3 * sd[axis] / h[axis])
                if marginal[:band].sum() > edge_mass:
                    room = int((lo[axis] - limits[0]) // h[axis])
                    if room > 0:
                        lo[axis] -= min(add, room) * h[axis]
                        cells[axis] += min(add, room)
                        moved = True
                    elif f"{axis}-" not in at_limit:
                        at_limit.append(f"{axis}-")
                if marginal[-band:].sum() > edge_mass:
                    room = int((limits[1] - (lo[axis] + cells[axis] * h[axis])) // h[axis])
                    if room > 0:
                        cells[axis] += min(add, room)
                        moved = True
                    elif f"{axis}+" not in at_limit:
                        at_limit.append(f"{axis}+")
            if not moved:
                break
            extensions += 1
        table = _summarise(density, grid, sd, parameters)
        if previous is not None:
            change = _change(table, previous)
        if change < tolerance or 4 * cells.prod() > _MAX_POINTS:
            break
        previous = table
        h = h / 2
        cells = cells * 2
        levels += 1
    exact = _exact_means(density, grid)
    names = {"0-": "h2 -> 0", "0+": "h2 -> 1", "1-": "small sigma2_p", "1+": "large sigma2_p"}
    return Quadrature(
        table=table, grid=grid, mode=mode, sd=sd, mode_found=found, error_estimate=float(change),
        converged=bool(change < tolerance), levels=levels, extensions=extensions,
        at_limit=[names[a] for a in at_limit], tolerance=tolerance, edge_mass=edge_mass, exact_x=exact,
        seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _exact_means(density: _Density, grid: _Grid) -> np.ndarray:
    """``sum_(x,z) w(x, z) rho / (rho lam + 1) (y* - X1* E[theta | x, z, y])`` (module docstring of posterior).

    With ``sigma2_k / d_k = rho / (rho lam_k + 1)`` a function of x alone, a posterior mean of any target T
    (``Cov(T, y) = sigma2_k M``: unphenotyped individuals, marker effects) is ``M S U`` times this vector, and
    that of g on the phenotyped individuals ``S^-1 U (lam * this)``.
    """
    data = density.data
    W = grid.weight
    rho = density.ratio(grid.x)
    mass = W.sum(axis=1)  # (Nx,)
    theta = np.einsum("ij,ijk->ik", W, grid.mean)  # (Nx, p): sum_z w E[theta | x, z]
    X1 = data.one[:, None] if data.X is None else np.hstack([data.one[:, None], data.X])
    residual = mass[:, None] * data.y[None, :] - theta @ X1.T  # (Nx, n)
    shrink = rho[:, None] / (rho[:, None] * data.lam[None, :] + 1.0)
    return (shrink * residual).sum(axis=0)


def exact_genetic_means(model, result: Quadrature) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact ``E[g | y]`` over every individual (records first) and, for M-BLUP, ``E[b | y]``."""
    data = model.spectral_data
    g = data.genetic_dot(data.lam * result.exact_x)  # S^-1 U (lam x); the null space has lam = 0 and no part in it
    targets = model.targets
    if "unphenotyped" in targets:
        g = np.concatenate([g, exact_target_means(data, result.exact_x, targets["unphenotyped"][0])])
    b = exact_target_means(data, result.exact_x, targets["markers"][0]) if "markers" in targets else None
    return g, b


def exact_target_means(data, target_weights: np.ndarray, M) -> np.ndarray:
    """The exact posterior mean ``M S U x`` of a target with ``Cov(T, y) = sigma2_k M`` (new individuals, markers).

    ``M`` over the individuals with a record, or in marker space on the low-rank path (``MarkerRows``), where the
    null space has no part in it (``M S P = 0``) and ``M S U`` is formed whole (targets x r).
    """
    if data.thin is not None:
        return data.target_rotation(M) @ target_weights
    s = np.ones(data.n) if data.scale is None else data.scale
    return np.asarray(M, dtype=np.float64) @ (s * (data.vectors @ target_weights))


def quadrature_draws(model, result: Quadrature, *, chains: int, draws: int, seed) -> dict[str, np.ndarray]:
    """Independent draws (chains x draws) of the model's parameters from the quadrature's posterior.

    A cell with its posterior mass, a point uniform within it, and ``(mu, beta)`` from their exact conditional.
    """
    density = _Density(model)
    grid = result.grid
    rng = np.random.default_rng(seed)
    D = chains * draws
    W = grid.weight.ravel()
    cum = np.cumsum(W)
    cell = np.minimum(np.searchsorted(cum, rng.random(D) * cum[-1], side="right"), W.size - 1)
    i, j = np.divmod(cell, grid.z.size)
    x = grid.x[i] + (rng.random(D) - 0.5) * grid.hx
    z = grid.z[j] + (rng.random(D) - 0.5) * grid.hz
    rho = density.ratio(x)
    sigma2_e = np.exp(z - _softplus(x))
    cond = fixed_conditional(gls_statistics(density.data, rho, logdet=False), sigma2_e, density.fixed)
    xi = rng.standard_normal((D, density.p))
    theta = cond.mean + np.linalg.solve(np.swapaxes(cond.chol, -1, -2), xi[..., None])[..., 0]
    kernel = model.kernels[0]
    shape = (chains, draws)
    out = {
        MU: theta[:, 0].reshape(shape),
        H2: (1.0 / (1.0 + np.exp(-x))).reshape(shape),
        kernel.variance_name: (rho * sigma2_e).reshape(shape),
        SIGMA2_E: sigma2_e.reshape(shape),
    }
    if density.h2_style:
        out[SIGMA2_P] = np.exp(z).reshape(shape)
    if kernel.reports_equivalent:
        out[SIGMA2_G_EQUIV] = (density.c * rho * sigma2_e).reshape(shape)
    if density.p > 1:
        out[BETA] = theta[:, 1:].reshape(chains, draws, density.p - 1)
    return out


def quadrature_datatree(model, result: Quadrature, draws: dict[str, np.ndarray]):
    """The fit's DataTree: ``posterior`` (the independent draws, named as NUTS names them) and ``quadrature``.

    The ``quadrature`` group holds the summary figures per ``parameter`` (mean, sd, q05, q95, from the quadrature)
    and the exact posterior means of the genetic values (``g_mean``, dim individual) and, for M-BLUP, of the marker
    effects (``b_mean``, dim marker), the vector that gives any other target's (``target_weights``, dim component:
    :func:`exact_target_means`), with the grid's figures as attributes.
    """
    import xarray as xr

    from ..names import INDIVIDUAL, MARKER

    chains, n_draws = draws[MU].shape
    coords = {"chain": np.arange(chains), "draw": np.arange(n_draws)}
    variables = {}
    for name, values in draws.items():
        if name == BETA:
            variables[name] = (("chain", "draw", "covariate"), values)
            coords["covariate"] = np.asarray(model.records.covariates, dtype=str)
        else:
            variables[name] = (("chain", "draw"), values)
    posterior = xr.Dataset(variables, coords=coords, attrs={"inference": "quadrature (bayesblup.inference.quadrature)"})
    labels = list(result.table)
    g_mean, b_mean = exact_genetic_means(model, result)
    data = {
        key: (("parameter",), np.array([result.table[k][key] for k in labels])) for key in ("mean", "sd", "q05", "q95")
    }
    data["g_mean"] = ((INDIVIDUAL,), g_mean)
    # the exact posterior mean of any target T with Cov(T, y) = sigma2_k M is M S U times this (fit.predict)
    data["target_weights"] = (("component",), result.exact_x)
    qcoords = {"parameter": np.asarray(labels, dtype=str), INDIVIDUAL: model.individuals.astype(str)}
    if b_mean is not None:
        data["b_mean"] = ((MARKER,), b_mean)
        qcoords[MARKER] = model.kernels[0].markers.astype(str)
    settings = result.settings()
    attrs = {
        "method": "quadrature over (logit h2, log sigma2_p), mu and beta integrated out",
        "error_estimate": settings["error_estimate"],
        "tolerance": settings["tolerance"],
        "converged": int(settings["converged"]),
        "grid_x": settings["grid"][0],
        "grid_z": settings["grid"][1],
    }
    quad = xr.Dataset(data, coords=qcoords, attrs=attrs)
    return xr.DataTree.from_dict({"posterior": posterior, "quadrature": quad})
