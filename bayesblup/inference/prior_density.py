"""Log densities of the model's priors (:class:`~bayesblup.models.priors.Prior`) in NumPy, as PyMC's ``pm.logp``.

The quadrature (:mod:`bayesblup.inference.quadrature`) evaluates the priors of the variance components on
thousands of grid points and must not compile a PyTensor graph to do it: the distributions the presets and
the documentation use are written out here, in PyMC's parameterisation (tests/inference/test_quadrature.py
holds each equal to ``pm.logp``). Any other distribution, or another parameterisation of one of these (e.g.
``Gamma(mu=, sigma=)``), is evaluated through PyMC itself, compiled once per prior.
"""

from __future__ import annotations

import functools

import numpy as np

from ..models.priors import Prior

__all__ = ["log_density"]

_LOG_2PI = float(np.log(2 * np.pi))


def _gammaln(x):
    from scipy.special import gammaln

    return gammaln(x)


def _beta(x, alpha, beta):
    from scipy.special import betaln

    inside = (x > 0) & (x < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (alpha - 1) * np.log(x) + (beta - 1) * np.log1p(-x) - betaln(alpha, beta)
    return np.where(inside, out, -np.inf)


def _uniform(x, lower, upper):
    return np.where((x >= lower) & (x <= upper), -np.log(upper - lower), -np.inf)


def _lognormal(x, mu, sigma):
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.log(x)
        out = -lx - np.log(sigma) - 0.5 * _LOG_2PI - 0.5 * ((lx - mu) / sigma) ** 2
    return np.where(x > 0, out, -np.inf)


def _inverse_gamma(x, alpha, beta):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = alpha * np.log(beta) - _gammaln(alpha) - (alpha + 1) * np.log(x) - beta / x
    return np.where(x > 0, out, -np.inf)


def _gamma(x, alpha, beta):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = alpha * np.log(beta) - _gammaln(alpha) + (alpha - 1) * np.log(x) - beta * x
    return np.where(x > 0, out, -np.inf)


def _half_normal(x, sigma):
    out = 0.5 * np.log(2 / np.pi) - np.log(sigma) - 0.5 * (x / sigma) ** 2
    return np.where(x >= 0, out, -np.inf)


def _half_cauchy(x, beta):
    out = np.log(2 / (np.pi * beta)) - np.log1p((x / beta) ** 2)
    return np.where(x >= 0, out, -np.inf)


def _exponential(x, lam):
    return np.where(x >= 0, np.log(lam) - lam * x, -np.inf)


def _half_student_t(x, nu, sigma):
    out = (
        np.log(2) + _gammaln((nu + 1) / 2) - _gammaln(nu / 2) - 0.5 * np.log(nu * np.pi * sigma**2)
        - (nu + 1) / 2 * np.log1p(x**2 / (nu * sigma**2))
    )  # fmt: skip
    return np.where(x >= 0, out, -np.inf)


#: PyMC distribution -> (its parameters, exactly as given, and the NumPy log density)
_NUMPY = {
    "Beta": (("alpha", "beta"), _beta),
    "Uniform": (("lower", "upper"), _uniform),
    "LogNormal": (("mu", "sigma"), _lognormal),
    "InverseGamma": (("alpha", "beta"), _inverse_gamma),
    "Gamma": (("alpha", "beta"), _gamma),
    "HalfNormal": (("sigma",), _half_normal),
    "HalfCauchy": (("beta",), _half_cauchy),
    "Exponential": (("lam",), _exponential),
    "HalfStudentT": (("nu", "sigma"), _half_student_t),
}


def log_density(prior: Prior, x: np.ndarray) -> np.ndarray:
    """``pm.logp`` of ``prior`` at the values ``x`` (any shape), -inf outside its support."""
    x = np.asarray(x, dtype=np.float64)
    known = _NUMPY.get(prior.distribution)
    if known is not None and set(prior.parameters) == set(known[0]):
        names, fn = known
        return fn(x, *(float(prior.parameters[k]) for k in names))
    return _compiled(prior.distribution, tuple(sorted((k, float(v)) for k, v in prior.parameters.items())))(x)


@functools.lru_cache(maxsize=16)
def _compiled(distribution: str, parameters: tuple):
    """PyMC's own log density of a distribution without a NumPy version here, compiled once."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    value = pt.dvector("value")
    dist = getattr(pm, distribution).dist(**dict(parameters))
    fn = pytensor.function([value], pm.logp(dist, value))

    def evaluate(x: np.ndarray) -> np.ndarray:
        return np.asarray(fn(x.reshape(-1)), dtype=np.float64).reshape(x.shape)

    return evaluate
