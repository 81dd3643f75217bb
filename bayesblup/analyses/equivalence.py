"""The M-BLUP / G-BLUP equivalence, seen in posteriors (the lecture notes' eq 7).

If ``G = WW'/m``, then ``y = mu + W b + e`` with ``b ~ N(0, I sigma2_b)`` and ``y = mu + g + e`` with
``g ~ N(0, G sigma2_g)`` are one model, with ``sigma2_g = m sigma2_b`` and ``g = W b``. With VanRaden's
W* and ``G* = W*W*'/nu_p`` the factor is ``nu_p``, not m (eq 14). :func:`check_equivalence` takes a fit
of each model on the same records and reports, side by side, ``sigma2_g`` against ``c sigma2_b``,
the two ``h2`` posteriors, and the agreement of the genetic values; it says whether eq (7) holds and,
when it does not, why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["EquivalenceReport", "check_equivalence"]

#: The premise G = WW'/c is checked to this relative precision (float64 rounding is ~1e-15).
PREMISE_RTOL = 1e-8


@dataclass(frozen=True)
class EquivalenceReport:
    """Side-by-side posteriors of a G-BLUP and an M-BLUP fit, and the verdict on eq (7).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per compared quantity (``sigma2_g``, ``h2``): G-BLUP and M-BLUP mean and 90%
        interval, the ratio and difference of the means, their combined Monte Carlo error and the
        difference in units of it (``z``).
    correlation : float
        Correlation of the posterior means of the genetic values (G-BLUP ``g``, M-BLUP ``W b``).
    max_abs_difference : float
        Largest difference between those posterior means.
    factor : float
        ``c`` in ``sigma2_g = c sigma2_b`` (m, or nu_p for centred W*); NaN with several marker sets.
    premise_error : float
        ``max |G - WW'/c| / max |G|`` on the fitted individuals.
    holds : bool
        Whether eq (7) holds here.
    reasons : list of str
        Why it does not, or what limits the comparison.
    factors : dict or None
        With several marker sets, ``c_k`` per set: each set is compared as its own eq (7),
        ``sigma2_g_k = c_k sigma2_b_k``, with ``h2_k`` and the total h2.
    """

    table: pd.DataFrame
    correlation: float
    max_abs_difference: float
    factor: float
    n_markers: int
    premise_error: float
    z_tol: float
    holds: bool
    reasons: list[str] = field(default_factory=list)
    factors: dict | None = None  # c_k per marker set (MultiMBLUP / MultiGBLUP); factor is NaN then

    def lines(self) -> list[str]:
        if self.factors:
            c = ", ".join(f"{k} {v:.6g}" for k, v in self.factors.items())
            out = [
                f"Equivalence of G-BLUP and M-BLUP per marker set (eq 7 per set: sigma2_g_k = c_k sigma2_b_k; c_k: {c})"
            ]
        else:
            c = f"{self.factor:.6g}" + (" = m" if self.factor == self.n_markers else "")
            out = [f"Equivalence of G-BLUP and M-BLUP (eq 7: sigma2_g = c sigma2_b, c = {c}, when G = WW'/c)"]
        out.append(f"  premise G = WW'/c on the fitted individuals: max relative difference {self.premise_error:.2g}")
        labels = {
            name: f"{name} vs c*{name.replace('sigma2_g', 'sigma2_b')}" if name.startswith("sigma2_g") else name
            for name in self.table.index
        }
        width = max(24, *(len(label) + 2 for label in labels.values()))
        out.append(f"  {'':{width}}{'G-BLUP':>28}{'M-BLUP':>28}{'ratio':>8}{'diff/MCSE':>11}")
        for name, row in self.table.iterrows():
            label = labels[name]
            # significant digits: a small variance (0.0009) keeps its figures, where fixed decimals showed 0.001
            gb = f"{row.gblup_mean:.4g} [{row.gblup_q05:.3g}, {row.gblup_q95:.3g}]"
            mb = f"{row.mblup_mean:.4g} [{row.mblup_q05:.3g}, {row.mblup_q95:.3g}]"
            z = "" if np.isnan(row.z) else f"{row.z:+.2f}"
            out.append(f"  {label:<{width}}{gb:>28}{mb:>28}{row.ratio:>8.4f}{z:>11}")
        out.append(
            f"  genetic values (g vs W b): correlation {self.correlation:.8f}, max |difference| "
            f"{self.max_abs_difference:.3g}"
        )
        verdict = "holds" if self.holds else "does NOT hold"
        out.append(f"  verdict: eq (7) {verdict}" + ("." if self.holds else ":"))
        out.extend(f"    - {reason}" for reason in self.reasons)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict:
        return {
            "holds": self.holds,
            "reasons": self.reasons,
            "factor": None if np.isnan(self.factor) else self.factor,
            "factors": self.factors,
            "premise_error": self.premise_error,
            "correlation": self.correlation,
            "max_abs_difference": self.max_abs_difference,
            "table": self.table.reset_index(names="quantity").to_dict(orient="records"),
        }


def _premise(G: np.ndarray, W: np.ndarray, c: float, scalings: tuple[str, str], label: str = "G"):
    """How far G is from WW'/c, and what that means when it is far."""
    WWt = W @ W.T
    scale = float(np.abs(G).max())
    error = float(np.abs(G - WWt / c).max() / scale)
    if error <= PREMISE_RTOL:
        return error, None
    g_scaling, m_scaling = scalings
    k = float((WWt * WWt).sum() / (G * WWt).sum())  # least-squares k in G ~ WW'/k
    if np.abs(G - WWt / k).max() / scale <= 1e-6:
        how = (
            f"different scalings (G-BLUP: {g_scaling}, M-BLUP: {m_scaling})"
            if g_scaling != m_scaling
            else f"different denominators under the same scaling label ({g_scaling}): different genotypes, markers "
            "or allele frequencies behind them"
        )
        return error, (
            f"G-BLUP's {label} equals WW'/{k:.6g}, but M-BLUP's factor is c = {c:.6g}: the two used {how}. The "
            "factor is the denominator of G: m for the "
            "standardised scalings, nu_p = 2 sum p(1-p) for centred W* (eq 14; sum p(1-p) for 0/1 presence/absence "
            "calls). Compare sigma2_g with "
            f"{k:.6g} * sigma2_b instead, or refit with one scaling."
        )
    return error, (
        f"G-BLUP's {label} is not proportional to WW' of M-BLUP's W (max relative difference {error:.2g}): the "
        + (
            f"kernels differ (G-BLUP scaling: {g_scaling}, M-BLUP scaling: {m_scaling}), so these are different "
            "models. Build G and W from the same genotypes with the same scaling."
            if g_scaling != m_scaling
            else f"kernels differ although both are labelled {g_scaling}: G and W were built from different "
            "genotypes (individuals, markers or quality control), so these are different models. Build both from "
            "the same genotypes."
        )
    )


def _premises(gb, mb, order: np.ndarray) -> tuple[float, list[str], list[tuple[str, str]], dict | None]:
    """(worst premise error, reasons, [(G-BLUP name, M-BLUP name)] to compare, per-set factors or None).

    Kernel by kernel: G-BLUP's G_k against M-BLUP's W_k, with ``G_k = W_k W_k' / c_k`` as the premise.
    """
    scalings = (gb.scaling, mb.scaling)
    if gb.single != mb.single:
        raise InputError("compare two fits with several marker sets (MultiMBLUP, MultiGBLUP), or two without.")
    if gb.set_names != mb.set_names:
        raise InputError(f"the fits have different marker sets: {gb.set_names} and {mb.set_names}.")
    errors, reasons, pairs = [], [], []
    for kg, km in zip(gb.kernels, mb.kernels, strict=True):
        label = "G" if gb.single else f"G of set {kg.name!r}"
        error, why = _premise(kg.relationship_matrix(), km.W[order], km.c, scalings, label)
        errors.append(error)
        reasons += [why] if why else []
        if gb.multi_trait:  # Sigma_g = c Sigma_b matrix-wise: every trait's variance and h2, every correlation
            traits = gb.traits
            k = "" if gb.single else f"{kg.name}_"  # several kernels: kernel by kernel, <set>_<trait>
            pairs += [(f"sigma2_g_{k}{t}", f"sigma2_g_equiv_{k}{t}") for t in traits]
            pairs += [(f"h2_{k}{t}", f"h2_{k}{t}") for t in traits]
            pairs += [(f"r_g_{k}{a}_{b}", f"r_g_{k}{a}_{b}") for i, a in enumerate(traits) for b in traits[i + 1 :]]
        elif gb.single:
            pairs.append((kg.variance_name, "sigma2_g_equiv"))
        else:
            pairs += [(kg.variance_name, f"sigma2_g_equiv_{km.name}"), (f"h2_{kg.name}", f"h2_{km.name}")]
    factors = None if gb.single else {k.name: k.c for k in mb.kernels}
    return max(errors), reasons, pairs if gb.multi_trait else [*pairs, ("h2", "h2")], factors


def _all_markers(model, markers: bool) -> bool:
    """Whether every kernel of ``model`` is a marker kernel (M-BLUP, ``markers``) or none is (G-BLUP)."""
    return all((k.markers is not None) == markers for k in model.kernels)


def _same_records(a, b) -> bool:
    """Whether two Records (or TraitRecords) hold the same values on the same individuals (order of IDs aside)."""
    if hasattr(a, "traits") or hasattr(b, "traits"):  # several traits: the same table, rows in any order
        if getattr(a, "traits", None) != getattr(b, "traits", None):
            return False
        ta = pd.DataFrame(a.Y, index=a.ids.astype(str)).sort_index()
        tb = pd.DataFrame(b.Y, index=b.ids.astype(str)).sort_index()
        return bool(ta.index.equals(tb.index) and np.allclose(ta.to_numpy(), tb.to_numpy(), equal_nan=True))
    if a.n_records != b.n_records:
        return False
    ka = pd.Series(a.y, index=a.record_ids.astype(str)).sort_index(kind="stable")
    kb = pd.Series(b.y, index=b.record_ids.astype(str)).sort_index(kind="stable")
    return bool(ka.index.equals(kb.index) and np.allclose(ka.to_numpy(), kb.to_numpy()))


def check_equivalence(mblup_fit, gblup_fit, *, z_tol: float = 4.0) -> EquivalenceReport:
    """Compare an M-BLUP fit and a G-BLUP fit of the same records (eq 7).

    Parameters
    ----------
    mblup_fit, gblup_fit : BLUPFit
        Fits of :class:`~bayesblup.MBLUP` and :class:`~bayesblup.GBLUP` on the same records.
    z_tol : float
        Posterior means may differ by this many combined Monte Carlo standard errors (4: a false
        alarm about once in 16,000 comparisons when the models agree).

    Returns
    -------
    EquivalenceReport
        Print it for the side-by-side table and the verdict.
    """
    if not (_all_markers(mblup_fit.model, True) and _all_markers(gblup_fit.model, False)):
        raise InputError("check_equivalence(mblup_fit, gblup_fit): give an M-BLUP fit first, then a G-BLUP fit.")
    mb, gb = mblup_fit.model, gblup_fit.model
    if set(mb.ids) != set(gb.ids):
        raise InputError("the two fits use different individuals; fit both models on the same records.")
    order = pd.Index(mb.ids).get_indexer(gb.ids)  # M-BLUP rows in G-BLUP order
    if not _same_records(mb.records, gb.records):
        raise InputError("the two fits use different phenotype values; fit both models on the same records.")

    premise_error, reasons, pairs, factors = _premises(gb, mb, order)
    why = reasons[0] if reasons else None
    mcmc = mblup_fit.method == "nuts" and gblup_fit.method == "nuts"
    g_table, m_table = gblup_fit.summary(), mblup_fit.summary()
    rows = {}
    for name, m_name in pairs:
        g_row, m_row = g_table.loc[name], m_table.loc[m_name]
        diff = m_row["mean"] - g_row["mean"]
        mc = float(np.hypot(g_row["mcse_mean"], m_row["mcse_mean"])) if mcmc else np.nan
        rows[name] = {
            "gblup_mean": g_row["mean"],
            "gblup_q05": g_row["q05"],
            "gblup_q95": g_row["q95"],
            "mblup_mean": m_row["mean"],
            "mblup_q05": m_row["q05"],
            "mblup_q95": m_row["q95"],
            "ratio": m_row["mean"] / g_row["mean"],
            "difference": diff,
            "mc_error": mc,
            "z": diff / mc if mcmc else np.nan,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    if mcmc:
        off = table.index[table["z"].abs() > z_tol].tolist()
        if off and not why:
            reasons.append(
                f"{', '.join(off)} differ by more than {z_tol} Monte Carlo errors although G = WW'/c: check that both "
                "fits converged (diagnostics) and use matching priors (prior='default' puts the same prior on h2 "
                "and on sigma2_g + sigma2_e in both models)."
            )
    else:
        reasons.append("MAP fits carry no Monte Carlo error: compared by the ratio of the point values (within 1%).")
        if not why and (np.abs(table["ratio"] - 1) > 0.01).any():
            reasons.append("the MAP values differ by more than 1%: check the priors and the optimiser's convergence.")
    # Every individual (unphenotyped included), M-BLUP's in G-BLUP's order.
    keys = ["id", "trait"] if "trait" in gblup_fit.genetic_values else ["id"]  # one row per id (and trait)
    g_values = gblup_fit.genetic_values.set_index(keys)["mean"]
    m_values = mblup_fit.genetic_values.set_index(keys)["mean"]
    if set(g_values.index) != set(m_values.index):
        raise InputError("the two fits predict different individuals; build G and W from the same genotypes.")
    g_mean, m_mean = g_values.to_numpy(), m_values.loc[g_values.index].to_numpy()
    holds = why is None and (
        (table["z"].abs() <= z_tol).all() if mcmc else bool((np.abs(table["ratio"] - 1) <= 0.01).all())
    )
    return EquivalenceReport(
        table=table,
        correlation=float(np.corrcoef(g_mean, m_mean)[0, 1]),
        max_abs_difference=float(np.abs(g_mean - m_mean).max()),
        factor=np.nan if factors else mb.factor,
        n_markers=mb.n_markers,
        premise_error=premise_error,
        z_tol=z_tol,
        holds=bool(holds),
        reasons=reasons,
        factors=factors,
    )
