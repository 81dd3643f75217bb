"""M-BLUP: ``y = mu + W b + e``, ``b ~ N(0, I sigma2_b)``, ``e ~ N(0, I sigma2_e)``."""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import InputError
from ..genotypes.scaling import GenotypeMatrix
from ..linalg.spectral import DEFAULT_EIGEN_RTOL
from ..names import INDIVIDUAL, MARKER
from ..phenotypes import Records
from .base import BLUPModel, as_records

__all__ = ["MBLUP"]


class MBLUP(BLUPModel):
    """M-BLUP (ridge regression on markers, BGLR's BRR) as a PyMC model.

    The marginal form eigendecomposes ``WW'`` (n x n), never the n x m W. It carries the
    Deterministic ``sigma2_g_equiv = c sigma2_b`` with ``c`` the denominator of ``G = WW'/c``
    (m for the standardised scalings, nu_p for ``centered``): with that G, G-BLUP is the same model
    with ``sigma2_g = sigma2_g_equiv`` (the seed's eq 7), and ``h2`` uses it.

    Parameters
    ----------
    y : pandas.Series or Records
        Records indexed by individual ID (NA = no record).
    genotypes : GenotypeMatrix
        W with its IDs and scaling, from :func:`bayesblup.genotype_matrix`.
    form, prior, eigen_rtol, fixed, weights, permanent_environment, repeated
        As for :class:`~bayesblup.GBLUP`.
    """

    name: ClassVar[str] = "mblup"
    kernel_variance: ClassVar[str] = "sigma2_b"

    def __init__(
        self,
        y: pd.Series | Records,
        genotypes: GenotypeMatrix,
        *,
        form: str = "marginal",
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
        permanent_environment: bool = False,
        repeated: bool = False,
    ):
        if not isinstance(genotypes, GenotypeMatrix):
            raise InputError("MBLUP needs W as a GenotypeMatrix: bayesblup.genotype_matrix(genotypes, scaling=...).")
        records = as_records(y, genotypes.ids, fixed=fixed, weights=weights, repeated=repeated or permanent_environment)
        super().__init__(
            records, form=form, prior=prior, eigen_rtol=eigen_rtol, permanent_environment=permanent_environment
        )
        position = {name: i for i, name in enumerate(genotypes.ids)}
        rows = np.array([position[i] for i in records.ids], dtype=np.intp)
        others = np.array([position[i] for i in records.unphenotyped], dtype=np.intp)
        self.genotypes = genotypes
        values = np.asarray(genotypes.values, dtype=np.float64)
        # Individuals with a record. When they are every individual, in order, W is the caller's array itself:
        # at n = 5000, m = 50,000 a copy would be 2 GB.
        self.W = values if np.array_equal(rows, np.arange(values.shape[0])) else values[rows]
        self.W_unphenotyped = np.asarray(genotypes.values[others], dtype=np.float64).reshape(
            others.size, genotypes.values.shape[1]
        )
        self._G = None

    @property
    def relationship_matrix(self) -> np.ndarray:
        if self._G is None:
            # W W' through BLAS syrk (numpy spots the transpose), then G = WW'/c.
            self._G = (self.W @ self.W.T) / self.factor
        return self._G

    @property
    def _kernel_label(self) -> str:
        return "WW'"

    @property
    def factor(self) -> float:
        return float(self.genotypes.scaling.denominator)

    @cached_property
    def msx(self) -> float:
        """Sum of the column variances of W (divisor n), BGLR's ``sum(x2)/n - sum(colMeans^2)``."""
        n = self.W.shape[0]
        return float((np.einsum("ij,ij->j", self.W, self.W) / n - self.W.mean(0) ** 2).sum())  # no n x m temporary

    @property
    def n_markers(self) -> int:
        return self.W.shape[1]

    @property
    def scaling(self) -> str:
        return self.genotypes.scaling.scaling

    @property
    def denominator(self) -> float:
        return self.factor

    @property
    def targets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {"markers": (self.W.T, np.ones(self.n_markers))}
        if self.W_unphenotyped.shape[0]:
            Wu = self.W_unphenotyped
            out["unphenotyped"] = (Wu @ self.W.T, (Wu**2).sum(1))  # Cov(W_u b, y) = sigma2_b W_u W'
        return out

    @property
    def relationship_diagonal(self) -> np.ndarray:
        squares = [np.einsum("ij,ij->i", W, W) for W in (self.W, self.W_unphenotyped)]  # no n x m temporary
        return np.concatenate(squares) / self.factor

    def _latent_genetic_values(self, sigma2_k):
        import pymc as pm
        import pytensor.tensor as pt

        model = pm.modelcontext(None)
        model.add_coord(MARKER, self.genotypes.markers.astype(str))
        z = pm.Normal("z", 0.0, 1.0, dims=MARKER)
        b = pm.Deterministic("b", pt.sqrt(sigma2_k) * z, dims=MARKER)
        return pm.Deterministic("g", pt.dot(np.vstack([self.W, self.W_unphenotyped]), b), dims=INDIVIDUAL)
