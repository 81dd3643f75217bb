"""REML point estimates of the variance components: the frequentist reference a posterior is read against.

``y = X beta + g + e``, ``g ~ N(0, G sigma2_g)``, ``e ~ N(0, I sigma2_e)``: the model of rrBLUP's
``mixed.solve(y, X, K = G)``. The restricted likelihood is maximised the way EMMA does it (Kang et
al. 2008): with ``S = I - X (X'X)^-1 X'``, eigendecompose ``S G S = U diag(xi) U'`` once and keep the
``n - p`` eigenvectors orthogonal to X. With ``eta = U'y`` and ``delta = sigma2_e / sigma2_g``,

    l_R(delta) = [(n - p) log((n - p) / (2 pi)) - (n - p) - (n - p) log(sum eta_k^2 / (xi_k + delta))
                  - sum log(xi_k + delta)] / 2,

a one-dimensional problem in ``log delta``; then ``sigma2_g = sum eta_k^2 / (xi_k + delta) / (n - p)``.
The log-likelihood reported is rrBLUP's (it omits ``log det(X'X) / 2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..genotypes.relationship import Relationship
from ..phenotypes import as_records

MULTI_TRAIT = (
    "with several traits, fit them jointly (bb.GBLUP(Y, G) with a DataFrame of traits) and read the genetic and "
    "residual correlations from its summary"
)

__all__ = ["REMLResult", "reml"]


@dataclass(frozen=True)
class REMLResult:
    """REML estimates; ``beta`` holds the intercept first, then the fixed effects (GLS at the REML variances)."""

    sigma2_g: float
    sigma2_e: float
    h2: float
    beta: pd.Series
    loglik: float
    n: int

    def to_dict(self) -> dict:
        return {
            "sigma2_g": self.sigma2_g, "sigma2_e": self.sigma2_e, "h2": self.h2, "beta": self.beta.to_dict(),
            "loglik": self.loglik, "n": self.n,
        }  # fmt: skip


def _restricted_loglik(log_delta: np.ndarray, eta2: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """l_R at each log(delta) (module docstring), vectorised over a grid."""
    d = np.exp(np.atleast_1d(log_delta))[:, None]
    k = eta2.size
    q = (eta2[None, :] / (xi[None, :] + d)).sum(axis=1)
    return 0.5 * (k * np.log(k / (2 * np.pi)) - k - k * np.log(q) - np.log(xi[None, :] + d).sum(axis=1))


def reml(y: pd.Series, G: Relationship, *, fixed: pd.DataFrame | None = None) -> REMLResult:
    """REML estimates of ``sigma2_g``, ``sigma2_e`` and ``h2`` for one kernel (as rrBLUP's ``mixed.solve``).

    Parameters
    ----------
    y : pandas.Series
        One record per individual, indexed by ID (NA = no record; those individuals are left out).
    G : Relationship
        The relationship matrix; every individual with a record must be in it.
    fixed : pandas.DataFrame, optional
        Fixed effects beside the intercept, indexed like ``y``.

    Examples
    --------
    >>> import bayesblup as bb
    >>> wheat = bb.datasets.load_wheat()
    >>> geno, _ = bb.quality_control(wheat.genotypes)
    >>> est = bb.reml(wheat.phenotypes["y1"], bb.genomic_relationship(geno))
    >>> round(est.h2, 3), round(est.sigma2_g, 3), round(est.sigma2_e, 3)   # rrBLUP: 0.499, 0.530, 0.532
    (0.499, 0.53, 0.532)
    """
    from scipy.optimize import minimize_scalar

    if not isinstance(G, Relationship):
        raise InputError("G must be a Relationship, e.g. from bayesblup.genomic_relationship.")
    if isinstance(y, pd.DataFrame) and y.shape[1] > 1:
        raise InputError(f"reml takes one trait (a Series), as rrBLUP's mixed.solve; {MULTI_TRAIT}.")
    rec = as_records(y, G.ids, fixed=fixed)
    if not rec.is_collapsible or rec.weights is not None:
        raise InputError(
            "reml takes one unweighted record per individual (as rrBLUP's mixed.solve); fit GBLUP instead."
        )
    rows = G.index(rec.ids)
    K = G.matrix[np.ix_(rows, rows)]
    n = rec.n_individuals
    X = np.ones((n, 1)) if rec.X is None else np.column_stack([np.ones(n), rec.X])
    p = X.shape[1]
    if n - p < 3:
        raise InputError(f"reml needs more records than fixed effects: {n} records, {p} fixed effects.")
    # An orthonormal basis of the complement of X: the restricted likelihood lives there. (Dropping
    # the smallest eigenvalues of S K S instead would go wrong when K has null directions of its own,
    # as a centred G does.)
    Q, _ = np.linalg.qr(X, mode="complete")
    if np.linalg.matrix_rank(X) < p:
        raise InputError("the fixed effects are collinear (with each other or the intercept); drop one.")
    perp = Q[:, p:]
    xi, V = np.linalg.eigh(perp.T @ K @ perp)
    xi = np.clip(xi, 0.0, None)  # K is positive semi-definite; rounding can leave -1e-16
    U = perp @ V
    eta2 = (U.T @ rec.y) ** 2
    grid = np.linspace(-12.0, 12.0, 241)  # delta from 6e-6 to 1.6e5; the maximum is refined by Brent
    values = _restricted_loglik(grid, eta2, xi)
    best = int(np.argmax(values))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    opt = minimize_scalar(
        lambda t: -_restricted_loglik(t, eta2, xi)[0], bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}
    )
    log_delta = float(opt.x)
    delta = np.exp(log_delta)
    sigma2_g = float((eta2 / (xi + delta)).sum() / (n - p))
    sigma2_e = delta * sigma2_g
    # GLS beta at the REML variances: V = sigma2_g (K + delta I)
    V = K + delta * np.eye(n)
    Vi_X = np.linalg.solve(V, X)
    beta = np.linalg.solve(X.T @ Vi_X, Vi_X.T @ rec.y)
    names = ["mu", *rec.covariates]
    return REMLResult(
        sigma2_g=sigma2_g,
        sigma2_e=float(sigma2_e),
        h2=sigma2_g / (sigma2_g + float(sigma2_e)),
        beta=pd.Series(beta, index=names),
        loglik=float(_restricted_loglik(log_delta, eta2, xi)[0]),
        n=n,
    )
