"""Binary and ordinal traits: the threshold (probit liability) model.

An unobserved liability ``l = mu + X beta + g + e``, ``e ~ N(0, 1)``, is cut into categories: the record is
category k when ``tau_k < l <= tau_{k+1}`` (``tau_0 = -inf``, ``tau_K = +inf``). ``g ~ N(0, sigma2_g G)``
(G-BLUP) or ``g = W b``, ``b ~ N(0, I sigma2_b)`` (M-BLUP), and ``sigma2_g = c sigma2_b`` holds on the
liability scale as on any other (eq 7 of S. M. Høj-Edwards and P. Sørensen, "Linear Mixed Models used in
Quantitative Genomics", 2022). The residual variance is 1 (it sets the liability's unit), so

    h2 = sigma2_g / (sigma2_g + 1)

is the heritability of the liability. One location is free: ``mu`` for a binary trait (its one threshold is
0, ``P(y = 1 | g) = Phi(mu + x'beta + g)``), the K - 1 thresholds for an ordinal one (``mu = 0``, as BGLR's
``response_type="ordinal"``, whose thresholds are then comparable: a binary trait's ``mu`` is minus BGLR's
``threshold_1``).

No Gaussian integral removes g here, so g is sampled: non-centred in the kernel's eigenbasis (``g =
sqrt(sigma2_g) U diag(sqrt(lam)) z``, z over the rank of G; M-BLUP's ``b = sqrt(sigma2_b) z`` over the
markers), the parameterisation of the latent form, and the likelihood is PyMC's ``OrderedProbit`` (its log
probabilities computed in log space, stable in the tails).

The observed-scale heritability of a binary trait (Dempster and Lerner 1950; Robertson's transformation) is

    h2_observed = h2 z^2 / (K (1 - K)),    z = phi(Phi^-1(1 - K)),

at prevalence K: reported at the sample prevalence (``h2_observed``) and, when given, at a population
prevalence (``h2_observed_population``), the figure a Gaussian fit of the 0/1 records estimates in a
population with that prevalence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["THRESHOLD_FAMILIES", "Categories", "categories", "observed_scale_factor"]

THRESHOLD_FAMILIES = ("binary", "ordinal")
#: More categories than this and the trait is probably continuous: refused for ``family="ordinal"``.
MAX_CATEGORIES = 20


@dataclass(frozen=True)
class Categories:
    """A binary or ordinal trait's records as category codes 0..K-1.

    Attributes
    ----------
    codes : ndarray of int (records,)
    labels : ndarray (K,)
        The record value of each code, in increasing order.
    counts : ndarray of int (K,)
    """

    codes: np.ndarray
    labels: np.ndarray
    counts: np.ndarray

    @property
    def n_categories(self) -> int:
        return int(self.labels.size)

    @property
    def prevalence(self) -> float:
        """The share of records in the highest category (binary: the cases)."""
        return float(self.counts[-1] / self.counts.sum())

    def initial_thresholds(self) -> np.ndarray:
        """``Phi^-1`` of the cumulative shares below each threshold (BGLR's starting values)."""
        from scipy.stats import norm

        return norm.ppf(np.cumsum(self.counts)[:-1] / self.counts.sum())


def categories(y: np.ndarray, family: str, *, trait: str = "the trait") -> Categories:
    """The records of a threshold family as category codes, refused with what to do when they are not.

    A binary trait has exactly two distinct values (0/1, or 1/2 as PLINK codes controls and cases; the higher
    value is the case); an ordinal one two to :data:`MAX_CATEGORIES` ordered values, each seen at least once.
    """
    y = np.asarray(y, dtype=float)
    labels, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    if family == "binary" and labels.size != 2:
        shown = ", ".join(f"{v:g}" for v in labels[:5]) + (" ..." if labels.size > 5 else "")
        raise InputError(
            f"family='binary' needs {trait} to take exactly two values (e.g. 0/1); it takes {labels.size}: {shown}. "
            "Use family='ordinal' for ordered categories, or 'gaussian' for a continuous trait."
        )
    if family == "ordinal":
        if labels.size < 2:
            raise InputError(
                f"family='ordinal' needs at least two categories of {trait}; all records are {labels[0]:g}."
            )
        if labels.size > MAX_CATEGORIES:
            raise InputError(
                f"family='ordinal' with {labels.size} distinct values of {trait}: more than {MAX_CATEGORIES} "
                "categories looks like a continuous trait; fit it with family='gaussian', or group its values into "
                "categories."
            )
    return Categories(codes=codes.ravel().astype(np.int64), labels=labels, counts=counts)


def observed_scale_factor(prevalence: float) -> float:
    """``z^2 / (K (1 - K))`` with ``z = phi(Phi^-1(1 - K))``: ``h2_observed = h2 x`` this (module docstring)."""
    from scipy.stats import norm

    K = float(prevalence)
    if not 0 < K < 1:
        raise InputError(f"prevalence must lie in (0, 1), got {prevalence}.")
    z = norm.pdf(norm.ppf(1.0 - K))
    return float(z**2 / (K * (1.0 - K)))
