"""Exact oracles for the relationship layer, written independently of the package code.

``exact_relationship`` follows the textbook formulas marker by marker in rational arithmetic
(``fractions.Fraction``): no floating point, no blocking, no BLAS. Every entry of G is rational
because W enters only as products ``w_ij w_kj``, where ``1/sd_j`` appears squared.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def exact_relationship(calls, *, scaling: str, k: int, base_p=None) -> np.ndarray:
    """G from allele counts or fractional dosages (``None`` or NaN = missing), computed with Fractions.

    - missing calls take the observed mean of their marker;
    - standardized: centre = mean of the filled column, var = sum of squares / (n - 1), G = WW'/m;
    - standardized-hwe: centre = k p, var = k p (1-p), G = WW'/m;
    - centered: centre = k p, no division, G = W*W*' / (k sum p(1-p)).
    """
    rows = [[None if (v is None or v != v) else Fraction(float(v)) for v in row] for row in calls]  # floats: exact
    n, m = len(rows), len(rows[0])
    columns = []
    nu = Fraction(0)
    for j in range(m):
        observed = [r[j] for r in rows if r[j] is not None]
        mean = sum(observed, Fraction(0)) / len(observed)
        x = [mean if r[j] is None else r[j] for r in rows]
        p = mean / k if base_p is None else Fraction(float(base_p[j]))
        if scaling == "standardized":
            centre, var = mean, sum(((v - mean) ** 2 for v in x), Fraction(0)) / (n - 1)
        elif scaling == "standardized-hwe":
            centre, var = k * p, k * p * (1 - p)
        elif scaling == "centered":
            centre, var = k * p, Fraction(1)
            nu += k * p * (1 - p)
        else:
            raise ValueError(scaling)
        columns.append(([v - centre for v in x], var))
    denominator = nu if scaling == "centered" else Fraction(m)
    G = np.empty((n, n))
    for i in range(n):
        for k2 in range(i, n):
            value = sum((w[i] * w[k2] / var for w, var in columns), Fraction(0)) / denominator
            G[i, k2] = G[k2, i] = float(value)
    return G
