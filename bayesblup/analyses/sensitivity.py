"""Prior sensitivity: refit under several priors and set the posteriors of h2 side by side.

With few records, the prior on the variance components can move h2 as much as the data do. The
default set of priors (:func:`default_priors`) spans the shapes that matter:

``"default"``
    ``h2 ~ Beta(1, 1)``, ``sigma2_p ~ LogNormal(log var(y), 1)``: uniform on h2.
``"bglr"``
    BGLR's scaled inverse chi-squares (df0 = 5, R2 = 0.5). Their densities vanish at zero, so they keep
    every variance away from zero: they pull a small h2 up.
``"half-normal"``
    A half-normal prior on each standard deviation (Gelman 2006), with scale ``sd(y)`` for the
    residual and ``sd(y) / sqrt(MSx)`` for the genetic term (MSx as BGLR's, so that both terms have
    the scale of y): ``sigma2 ~ Gamma(1/2, rate 1 / (2 s^2))``. It puts most mass near zero, the
    opposite of the inverse gammas, and implies ``h2 ~ Beta(1/2, 1/2)`` (U-shaped) on a standardised G.
``"beta(2,2)"``
    ``h2 ~ Beta(2, 2)`` with ``"default"``'s total variance: mildly informative on h2 itself (prior 90%
    interval [0.14, 0.86]), a prior that rules out the extremes.

A binary or ordinal trait (residual variance 1 on the liability scale) gets the same four, each on the genetic
term alone, with the liability's unit variance in place of var(y).

If the four posteriors of h2 agree, the data dominate; if they differ, report the spread (or pick a
prior on substantive grounds and say so). With several marker sets the default set is the two
presets only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InputError
from ..models.priors import PRESETS, Prior

if TYPE_CHECKING:
    from ..models.model import BLUPModel
    from ..results.fit import BLUPFit

__all__ = ["default_priors", "format_sensitivity_table", "prior_sensitivity", "sensitivity_verdict"]


def default_priors(model: BLUPModel) -> dict[str, object]:
    """The default set of priors for ``model`` (see the module docstring), by label.

    Parameters
    ----------
    model : BLUPModel
        A built or unbuilt model: its records fix ``var(y)``, its kernel MSx.

    Returns
    -------
    dict
        ``{label: prior}``, each a preset name or a dict of :class:`~bayesblup.Prior`.
    """
    if model.multi_trait:
        raise InputError(
            "prior_sensitivity compares priors on one trait's h2; with several traits, fit the traits under "
            "prior='default' and prior='bglr' and compare their summaries (docs: several traits)."
        )
    if not model.single:
        return {name: name for name in PRESETS}
    # a binary or ordinal trait's residual variance is 1, the liability's unit (models.threshold)
    vy = 1.0 if model.threshold else float(np.var(model.y, ddof=1))

    def half_normal(scale2: float) -> Prior:  # sd ~ HalfNormal(s)  <=>  sd^2 ~ Gamma(1/2, rate 1/(2 s^2))
        return Prior("Gamma", alpha=0.5, beta=1.0 / (2.0 * scale2))

    half = {model.kernel_variance: half_normal(vy / model.msx)}
    if not model.threshold:
        half["sigma2_e"] = half_normal(vy)
    if model.permanent_environment:
        half["sigma2_pe"] = half_normal(vy)
    return {
        "default": "default",
        "bglr": "bglr",
        "half-normal": half,
        "beta(2,2)": {"h2": Prior("Beta", alpha=2.0, beta=2.0)},
    }


def _describe(priors: dict[str, Prior]) -> str:
    """``name ~ Distribution(parameters)`` for every variable but mu (effectively flat unless given)."""
    parts = []
    for name, prior in priors.items():
        if name == "mu":
            continue
        args = ", ".join(f"{key}={value:.4g}" for key, value in prior.parameters.items())
        parts.append(f"{name} ~ {prior.distribution}({args})")
    return "; ".join(parts)


def _row(label: str, fit) -> dict:
    table = fit.summary()
    h2 = table.loc["h2"]
    diagnostics = fit.diagnostics()
    row = {
        "prior": label,
        "description": _describe(fit.model.priors[1]),
        "h2_mean": float(h2["mean"]),
        "h2_sd": float(h2["sd"]),
        "h2_q05": float(h2["q05"]),
        "h2_q95": float(h2["q95"]),
        "h2_ess_bulk": float(h2["ess_bulk"]),
        "max_r_hat": np.nan if diagnostics["max_r_hat"] is None else float(diagnostics["max_r_hat"]),
        "divergences": diagnostics["divergences"],
    }
    for name in table.index:
        if name.startswith("sigma2_"):
            row[f"{name}_mean"] = float(table.loc[name, "mean"])
    return row


def prior_sensitivity(
    build: Callable[[object], BLUPModel],
    priors: dict[str, object] | Sequence[str] | None = None,
    *,
    fitted: dict[str, BLUPFit] | None = None,
    say: Callable[[str], None] | None = None,
    **fit_options,
) -> pd.DataFrame:
    """Fit the same model under each prior and tabulate the posterior of h2, one row per prior.

    Parameters
    ----------
    build : callable
        ``build(prior)`` returns an unfitted model with that prior, e.g.
        ``lambda prior: bb.GBLUP(y, G, prior=prior)``.
    priors : dict or sequence, optional
        ``{label: prior}`` (a preset name or a dict of :class:`~bayesblup.Prior`), or preset names;
        by default :func:`default_priors` of ``build("default")``.
    fitted : dict, optional
        Fits already made, by label (e.g. the main fit under ``"default"``): used instead of refitting.
    say : callable, optional
        Progress, one line per prior.
    **fit_options
        Passed to ``fit`` (method, chains, draws, tune, seed, ...), the same for every prior.

    Returns
    -------
    pandas.DataFrame
        One row per prior: ``prior, description`` (the resolved priors, numbers included; mu left
        out), ``h2_mean, h2_sd, h2_q05, h2_q95, h2_ess_bulk``, the fit's ``max_r_hat`` and
        ``divergences``, and the posterior mean of every variance (``sigma2_g_mean``, ...). Its
        ``attrs["verdict"]`` says in one line whether h2 depends on the prior (:func:`sensitivity_verdict`).

    Examples
    --------
    >>> import bayesblup as bb
    >>> wheat = bb.datasets.load_wheat()
    >>> G = bb.genomic_relationship(wheat.genotypes)
    >>> y = wheat.phenotypes["y1"]
    >>> table = bb.prior_sensitivity(lambda prior: bb.GBLUP(y, G, prior=prior), chains=2, seed=1)  # doctest: +SKIP
    >>> table[["prior", "h2_mean", "h2_q05", "h2_q95"]]  # doctest: +SKIP
    """
    fitted = dict(fitted or {})
    models = {}
    if priors is None:
        first = build("default")
        priors = default_priors(first)
        models["default"] = first
    elif isinstance(priors, str):
        raise InputError(f"priors must be a dict {{label: prior}} or a list of presets; got the string {priors!r}.")
    elif not isinstance(priors, dict):
        priors = {str(name): name for name in priors}
    if not priors:
        raise InputError("priors is empty: give at least one prior (or None for the default set).")
    rows = []
    for label, prior in priors.items():
        fit = fitted.get(label)
        if fit is None:
            model = models.get(label) or build(prior)
            fit = model.fit(**fit_options)
        rows.append(_row(label, fit))
        if say:
            r = rows[-1]
            say(f"prior {label}: h2 = {r['h2_mean']:.3f}, 90% interval [{r['h2_q05']:.3f}, {r['h2_q95']:.3f}]")
    table = pd.DataFrame(rows)
    table.attrs["verdict"] = sensitivity_verdict(table)  # robust, or prior-sensitive (in words)
    return table


def format_sensitivity_table(table: pd.DataFrame) -> list[str]:
    """The table of :func:`prior_sensitivity` as text lines, descriptions last."""
    w = max(12, *(len(str(label)) + 2 for label in table["prior"]))
    lines = [f"{'prior':<{w}}{'h2 mean':>9}{'sd':>8}{'q05':>8}{'q95':>8}{'ess_bulk':>10}{'r_hat':>8}{'div':>5}"]
    for row in table.itertuples(index=False):
        ess = "" if pd.isna(row.h2_ess_bulk) else f"{row.h2_ess_bulk:.0f}"
        r_hat = "" if pd.isna(row.max_r_hat) else f"{row.max_r_hat:.3f}"
        div = "" if row.divergences is None or pd.isna(row.divergences) else str(int(row.divergences))
        lines.append(
            f"{row.prior!s:<{w}}{row.h2_mean:>9.3f}{row.h2_sd:>8.3f}{row.h2_q05:>8.3f}{row.h2_q95:>8.3f}"
            f"{ess:>10}{r_hat:>8}{div:>5}"
        )
    lines.extend(f"  {row.prior}: {row.description}" for row in table.itertuples(index=False))
    lines.append(sensitivity_verdict(table))
    return lines


def sensitivity_verdict(table: pd.DataFrame) -> str:
    """One line: whether h2 depends on the prior, judged against its posterior sd.

    The priors' posterior means of h2 are compared with the smallest posterior sd among them: a spread within one
    sd means the data decide h2 (any of these priors gives the same answer within its uncertainty); beyond it,
    the prior moves h2 and must be reported with it.
    """
    means, sds = table["h2_mean"].astype(float), table["h2_sd"].astype(float)
    spread, sd = float(means.max() - means.min()), float(sds.min())
    low, high = table["prior"].iloc[int(means.argmin())], table["prior"].iloc[int(means.argmax())]
    if not np.isfinite(sd) or sd <= 0:
        return f"verdict: h2's means range over {spread:.3f} ({low} to {high}); no posterior sd to judge it against"
    if spread <= sd:
        return (
            f"verdict: robust: h2's posterior means under these priors span {spread:.3f}, within one posterior sd "
            f"({sd:.3f}): the data decide h2"
        )
    return (
        f"verdict: prior-sensitive: h2's posterior means span {spread:.3f} ({low} {means.min():.3f} to {high} "
        f"{means.max():.3f}), {spread / sd:.1f} posterior sd: the prior moves h2; report it with the prior, and "
        "prefer the calibrated 'default'"
    )
