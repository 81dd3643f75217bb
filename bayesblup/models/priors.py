"""Priors on the variance components: the BGLR preset, a weakly informative default, or your own.

Notation: ``sigma2_k`` is the variance that multiplies the kernel (``sigma2_g`` on G for G-BLUP,
``sigma2_b`` on WW' for M-BLUP), and ``c`` the factor with ``sigma2_g_equiv = c sigma2_b``.

``prior="bglr"``
    BGLR's defaults (df0 = 5, R2 = 0.5): each variance is scaled-inverse-chi-square, drawn by
    BGLR as ``S / chisq(df)``, that is ``InverseGamma(df0/2, S0/2)``, with
    ``S0_e = var(y) (1 - R2) (df0 + 2)`` and ``S0_k = var(y) R2 (df0 + 2) / MSx``. MSx is the mean
    non-zero eigenvalue of G for G-BLUP (BGLR RKHS's ``mean(d)``), and the sum of the column
    variances of W (divisor n) for M-BLUP (BGLR BRR). The prior mode of each variance is
    ``S0 / (df0 + 2)``.
``prior="default"``
    ``h2 ~ Beta(1, 1)`` (uniform) and a total variance ``sigma2_p = c sigma2_b + sigma2_e`` (G-BLUP:
    ``sigma2_g + sigma2_e``) with ``sigma2_p ~ LogNormal(log var(y), 1)``: scale-free (it follows the
    units of y), weakly informative (95% of its mass within a factor of 7 of var(y)), and the same
    prior on h2 for both models, so that their posteriors can be compared directly.
a dict of variance priors
    ``{"sigma2_g" | "sigma2_b": Prior(...), "sigma2_e": Prior(...)}``, optionally ``"mu"``: any PyMC
    distribution by name with its parameters, e.g. ``Prior("HalfNormal", sigma=1.0)``.
a dict with ``"h2"``
    The parameterisation of ``"default"`` with your own priors: ``{"h2": Prior("Beta", alpha=2.0,
    beta=2.0)}``, optionally ``"sigma2_p"`` (else ``LogNormal(log var(y), 1)``), ``"mu"`` and, with a
    permanent environment, ``"pe_share"`` (else ``Beta(1, 1)``). The way to put an informative prior on
    h2 itself (a prior on the variances only implies one). Single-kernel models only.

With a permanent-environment effect (repeated records), ``h2 = c sigma2_k / (c sigma2_k + sigma2_pe +
sigma2_e)`` and:

- ``"default"`` adds ``pe_share ~ Beta(1, 1)``, the share of the non-genetic variance that is
  permanent: ``sigma2_pe = pe_share (1 - h2) sigma2_p`` and ``sigma2_e = (1 - pe_share) (1 - h2)
  sigma2_p``;
- ``"bglr"`` splits R2 equally between the two random terms, as BGLR does with several terms in
  its linear predictor (R2/2 each), and gives ``sigma2_pe`` the BRR prior of the incidence matrix Z
  (MSx = ``1 - sum(n_i^2) / N^2`` for n_i records of individual i, N in all);
- a dict of variance priors needs ``"sigma2_pe"`` too.

With several marker sets (:mod:`bayesblup.models.model`), one variance per set (``sigma2_g_<set>`` or
``sigma2_b_<set>``) and:

- ``"default"`` adds ``set_share ~ Dirichlet(1, ..., 1)``, the shares of the genetic variance
  ``h2 sigma2_p`` taken by each set (uniform over the simplex; for two sets a uniform share);
- ``"bglr"`` splits R2 equally over every random term (the sets, and the permanent environment if
  any), each set's prior scaled by its own MSx, as BGLR does with several terms;
- a dict needs a Prior for every set's variance.

In every case ``mu ~ Normal(mean(y), 10 sd(y))``, effectively flat (BGLR's intercept is flat),
unless a ``"mu"`` prior is given.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

__all__ = [
    "BGLR_DF0",
    "BGLR_R2",
    "H2_VARIABLES",
    "PRESETS",
    "Prior",
    "resolve_multitrait_priors",
    "resolve_priors",
    "resolve_threshold_priors",
]

BGLR_DF0 = 5.0
BGLR_R2 = 0.5
PRESETS = ("default", "bglr")


@dataclass(frozen=True)
class Prior:
    """A PyMC distribution by name, with its parameters: serialisable and checked on creation.

    Examples
    --------
    >>> Prior("HalfNormal", sigma=1.0).to_dict()
    {'distribution': 'HalfNormal', 'parameters': {'sigma': 1.0}}
    """

    distribution: str
    parameters: dict = field(default_factory=dict)

    def __init__(self, distribution: str, **parameters) -> None:
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "parameters", dict(parameters))

    def create(self, name: str, *, parameters: dict | None = None, **kwargs):
        """Add the variable ``name`` to the PyMC model on the context stack.

        ``parameters`` replaces the numbers by graph variables of the same names (``pm.Data``, so that
        a compiled model can be reused with other values); they are checked as numbers first.
        """
        import pymc as pm

        cls = getattr(pm, self.distribution, None)
        if cls is None or not isinstance(cls, type) or not issubclass(cls, pm.Distribution):
            raise InputError(f"prior for {name}: {self.distribution!r} is not a PyMC distribution.")
        # PyMC swallows unknown keywords, so a typo (sgima=) would silently fall back to a default.
        known = [
            p.name
            for p in inspect.signature(cls.dist).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        for key, value in self.parameters.items():
            if key not in known:
                raise InputError(
                    f"prior for {name}: {self.distribution} has no parameter {key!r}; "
                    f"its parameters are {', '.join(known)}."
                )
            if np.ndim(value) != 0:
                raise InputError(f"prior for {name}: parameter {key} must be one number, got {value!r}.")
        try:
            return cls(name, **(self.parameters if parameters is None else parameters), **kwargs)
        except (TypeError, ValueError) as exc:
            raise InputError(f"prior for {name}: {self.distribution}({self.parameters}) is invalid: {exc}") from exc

    def to_dict(self) -> dict:
        return {"distribution": self.distribution, "parameters": {k: float(v) for k, v in self.parameters.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Prior:
        return cls(data["distribution"], **data.get("parameters", {}))


def _custom(prior: dict, y: np.ndarray, required: set[str]) -> dict[str, Prior]:
    """Check a user's dict of priors: every required variance, nothing unknown, Prior objects only."""
    allowed = required | {"mu"}
    unknown = set(prior) - allowed
    if unknown:
        raise InputError(f"prior: unknown variable(s) {sorted(unknown)}; allowed: {sorted(allowed)}.")
    missing = required - set(prior)
    if missing:
        raise InputError(f"prior: give a Prior for {sorted(missing)} too (or use a preset: {', '.join(PRESETS)}).")
    for name, value in prior.items():
        if not isinstance(value, Prior):
            raise InputError(f"prior for {name}: expected bayesblup.Prior(...), got {type(value).__name__}.")
    return {"mu": mu_prior(y), **prior}


#: The variables of the h2 parameterisation (``"default"``, or a dict with ``"h2"``).
H2_VARIABLES = ("h2", "sigma2_p", "pe_share")


def _custom_h2(prior: dict, y: np.ndarray, *, pe: bool) -> dict[str, Prior]:
    """A user's dict in the h2 parameterisation: ``"h2"`` required, the rest defaults to the preset's."""
    allowed = {"h2", "sigma2_p", "mu"} | ({"pe_share"} if pe else set())
    unknown = set(prior) - allowed
    if unknown:
        raise InputError(
            f"prior: a dict with h2 takes {sorted(allowed)}, not {sorted(unknown)}; give either priors on the "
            "variances (sigma2_g or sigma2_b, sigma2_e) or on h2 and sigma2_p, not both."
        )
    if "h2" not in prior:
        raise InputError("prior: a dict with sigma2_p or pe_share needs a Prior for h2 too.")
    for name, value in prior.items():
        if not isinstance(value, Prior):
            raise InputError(f"prior for {name}: expected bayesblup.Prior(...), got {type(value).__name__}.")
    vy = float(np.var(y, ddof=1))
    out = {"mu": mu_prior(y), "h2": prior["h2"], "sigma2_p": Prior("LogNormal", mu=float(np.log(vy)), sigma=1.0)}
    out |= {"pe_share": Prior("Beta", alpha=1.0, beta=1.0)} if pe else {}
    return out | prior


def mu_prior(y: np.ndarray) -> Prior:
    """``Normal(mean(y), 10 sd(y))``: flat over any plausible mean."""
    return Prior("Normal", mu=float(np.mean(y)), sigma=10 * float(np.std(y, ddof=1)))


def resolve_priors(
    prior, y: np.ndarray, *, msx: dict[str, float], pe_msx: float | None = None
) -> tuple[str, dict[str, Prior]]:
    """Turn a preset name or a user dict into ``(label, {variable: Prior})``.

    ``msx`` maps each kernel's variance name (``sigma2_g``, ``sigma2_b``, or ``sigma2_g_<set>``...) to
    BGLR's MSx of that kernel; ``pe_msx`` (BGLR's MSx of Z) is given when the model has a
    permanent-environment effect. For ``"default"`` and a user's dict with ``"h2"`` the dict holds
    the priors of ``h2`` and ``sigma2_p`` (and ``set_share`` with several kernels, ``pe_share`` with a
    permanent environment) instead of the variances'.
    """
    pe = pe_msx is not None
    names = list(msx)
    several = len(names) > 1
    if isinstance(prior, str):
        vy = float(np.var(y, ddof=1))  # R's var(), as BGLR
        if prior == "bglr":
            r2 = BGLR_R2 / (len(names) + pe)  # BGLR splits R2 equally over the random terms
            out = {name: _inverse_gamma(vy, r2, value) for name, value in msx.items()}
            if pe:
                out["sigma2_pe"] = _inverse_gamma(vy, r2, pe_msx)
            return "bglr", {"mu": mu_prior(y), **out, "sigma2_e": _inverse_gamma(vy, 1 - BGLR_R2, 1.0)}
        if prior == "default":
            out = {
                "mu": mu_prior(y),
                "h2": Prior("Beta", alpha=1.0, beta=1.0),
                "sigma2_p": Prior("LogNormal", mu=float(np.log(vy)), sigma=1.0),
            }
            if several:
                out["set_share"] = Prior("Dirichlet", a=1.0)  # a = 1 for every kernel
            return "default", out | ({"pe_share": Prior("Beta", alpha=1.0, beta=1.0)} if pe else {})
        raise InputError(f"prior must be one of {', '.join(PRESETS)}, or a dict of Prior objects; got {prior!r}.")
    if isinstance(prior, dict):
        if set(prior) & set(H2_VARIABLES) and not several:
            return "custom", _custom_h2(prior, y, pe=pe)
        return "custom", _custom(prior, y, {*names, "sigma2_e"} | ({"sigma2_pe"} if pe else set()))
    raise InputError(
        f"prior must be one of {', '.join(PRESETS)}, or a dict of Prior objects; got {type(prior).__name__}."
    )


def _inverse_gamma(vy: float, r2: float, msx: float) -> Prior:
    """BGLR's scaled-inverse-chi-square prior of a term with R2 share ``r2`` and kernel scale ``msx``."""
    return Prior("InverseGamma", alpha=BGLR_DF0 / 2, beta=vy * r2 * (BGLR_DF0 + 2) / msx / 2)


def resolve_multitrait_priors(prior, Y: np.ndarray, *, msx: dict[str, float]) -> tuple[str, dict]:
    """Priors of a multi-trait model (:mod:`bayesblup.models.multitrait`): ``(label, details)``.

    ``msx`` maps each kernel's variance name (``sigma2_g``, ``sigma2_b``, or ``sigma2_g_<set>``... with
    several kernels) to BGLR's MSx of that kernel. ``"default"`` needs no numbers here (per-trait h2 and
    sigma2_p, LKJ(1) correlations, and with several kernels each trait's Dirichlet(1) shares of its genetic
    variance); ``"bglr"`` gives ``{"Sigma_k": {variance name: (df0, S0)}, "Sigma_e": (df0, S0)}``, BGLR
    ``Multitrait``'s inverse Wishart priors for each kernel's MSx, BGLR's R2 split equally over the kernels
    (:func:`bayesblup.models.covariance.bglr_multitrait_priors`); ``Sigma_k`` is a kernel's covariance
    (``Sigma_g`` on G, ``Sigma_b`` on the marker effects).

    A dict of :class:`Prior` (label ``"custom"``), as brms's ``sd`` and ``lkj`` priors: per-trait
    variances and correlation matrices, ``Sigma_g = D_g R_g D_g``. Either the h2 parameterisation,
    ``{"h2": ..., "sigma2_p": ...}`` (each missing key as in ``"default"``; one kernel only, as for one
    trait), or the variances, ``{<each kernel's variance name>: ..., "sigma2_e": ...}`` (all needed); each
    Prior applies to every trait. With either, ``"R_g"`` (every kernel's genetic correlations) and ``"R_e"``
    take ``Prior("LKJCorr", eta=...)`` (default eta = 1). Returned as ``{"style": "h2" | "variances",
    "h2"/"sigma2_p" or the variance names/"sigma2_e": Prior or None, "eta_g", "eta_e"}``.
    """
    names = list(msx)
    if isinstance(prior, str) and prior == "default":
        return "default", {}
    if isinstance(prior, str) and prior == "bglr":
        from .covariance import bglr_multitrait_priors

        # what BGLR samples under (covariance.py); each kernel a term of ETA with R2 / (number of kernels)
        found = {
            name: bglr_multitrait_priors(Y, value, n_terms=len(names), as_sampled=True) for name, value in msx.items()
        }
        return "bglr", {
            "Sigma_k": {name: f["genetic"] for name, f in found.items()},
            "Sigma_e": found[names[0]]["residual"],
        }
    if isinstance(prior, dict):
        return "custom", _custom_multitrait(prior, names)
    raise InputError(
        f"prior must be one of {', '.join(PRESETS)}, or a dict of Prior objects, with several traits; got {prior!r}."
    )


def _custom_multitrait(prior: dict, kernel_variances: list[str]) -> dict:
    """A user's dict for several traits (:func:`resolve_multitrait_priors`), checked."""
    several = len(kernel_variances) > 1
    h2_style = set() if several else {"h2", "sigma2_p"}
    variances, correlations = {*kernel_variances, "sigma2_e"}, {"R_g", "R_e"}
    listed = ", ".join(kernel_variances)
    unknown = set(prior) - h2_style - variances - correlations
    if unknown:
        takes = f"{listed} and sigma2_e" if several else f"h2 and sigma2_p, or {listed} and sigma2_e"
        raise InputError(
            f"prior: with several traits a dict takes {takes}, and R_g, R_e (LKJCorr); not "
            f"{', '.join(sorted(unknown))}."
        )
    if set(prior) & h2_style and set(prior) & variances:
        raise InputError(f"prior: give priors on h2 and sigma2_p or on the variances ({listed}, sigma2_e), not both.")
    for name, value in prior.items():
        if not isinstance(value, Prior):
            raise InputError(f"prior for {name}: expected bayesblup.Prior(...), got {type(value).__name__}.")
    out: dict = {}
    for key in ("R_g", "R_e"):
        eta = 1.0
        if key in prior:
            p = prior[key]
            if p.distribution != "LKJCorr" or set(p.parameters) != {"eta"}:
                raise InputError(f"prior for {key}: use Prior('LKJCorr', eta=...), got {p.distribution}{p.parameters}.")
            eta = float(p.parameters["eta"])
            if not eta > 0:
                raise InputError(f"prior for {key}: eta must be positive, got {eta}.")
        out["eta_g" if key == "R_g" else "eta_e"] = eta
    if set(prior) & variances or several:
        missing = variances - set(prior)
        if missing:
            raise InputError(f"prior: a dict of variances needs {', '.join(sorted(missing))} too.")
        return out | {"style": "variances"} | {name: prior[name] for name in variances}
    return out | {"style": "h2", "h2": prior.get("h2"), "sigma2_p": prior.get("sigma2_p")}


def resolve_threshold_priors(prior, *, variance_name: str, msx: float) -> tuple[str, dict[str, Prior]]:
    """Priors of a binary or ordinal trait's genetic variance, on the liability scale (residual variance 1).

    ``"default"``: ``h2 ~ Beta(1, 1)`` (uniform over the liability heritability; ``sigma2_g = h2 / (1 - h2)``).
    ``"bglr"``: BGLR's scaled-inverse-chi-square of the kernel's variance with ``var(y) = 1``, the variance
    of the liabilities BGLR starts from (drawn from N(0, 1) between thresholds set at the sample's
    cumulative shares), so ``S0 = R2 (df0 + 2) / MSx``. A dict: ``{"h2": Prior}`` or ``{variance_name: Prior}``.
    """
    if isinstance(prior, str) and prior == "default":
        return "default", {"h2": Prior("Beta", alpha=1.0, beta=1.0)}
    if isinstance(prior, str) and prior == "bglr":
        return "bglr", {variance_name: _inverse_gamma(1.0, BGLR_R2, msx)}
    if isinstance(prior, dict):
        allowed = {"h2", variance_name}
        unknown = set(prior) - allowed
        if unknown or len(prior) != 1:
            raise InputError(
                f"prior: a binary or ordinal trait takes one Prior, for h2 or for {variance_name} (the residual "
                f"variance is 1 on the liability scale); got {sorted(prior)}."
            )
        ((name, value),) = prior.items()
        if not isinstance(value, Prior):
            raise InputError(f"prior for {name}: expected bayesblup.Prior(...), got {type(value).__name__}.")
        return "custom", dict(prior)
    raise InputError(f"prior must be one of {', '.join(PRESETS)}, or a dict of Prior objects; got {prior!r}.")
