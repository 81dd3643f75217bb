"""G-BLUP: ``y = mu + g + e``, ``g ~ N(0, G sigma2_g)``, ``e ~ N(0, I sigma2_e)``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import InputError
from ..genotypes.relationship import Relationship, check_relationship
from ..linalg.spectral import DEFAULT_EIGEN_RTOL, eigendecompose
from ..names import INDIVIDUAL
from ..phenotypes import Records
from .base import BLUPModel, as_records

__all__ = ["GBLUP"]


class GBLUP(BLUPModel):
    """G-BLUP as a PyMC model.

    Parameters
    ----------
    y : pandas.Series or Records
        Records indexed by individual ID (NA = no record), or records already matched.
    relationship : Relationship
        G with its IDs (from :func:`bayesblup.genomic_relationship` or :func:`bayesblup.read_relationship`).
        Every phenotyped individual must be in it.
    form : {"marginal", "latent"}
        Spectral marginal likelihood (fast, default) or explicit non-centred ``g`` (teaching, oracle).
    prior : {"default", "bglr"} or dict
        See :mod:`bayesblup.models.priors`.
    eigen_rtol : float
        Eigenvalues of G below this fraction of the largest are treated as zero.
    fixed : pandas.DataFrame, optional
        Fixed effects besides the intercept, indexed by ID: numeric covariates and factors (dummy-coded
        against their first level); ``beta ~ Normal(0, 10 sd(y) / sd(x_j))``, effectively flat.
    weights : pandas.Series, optional
        Residual precision weights, one per record: ``Var(e_j) = sigma2_e / w_j``, i.e. the user gives
        the inverse of D's diagonal (a record that is the mean of k measurements has ``w = k``).
    permanent_environment : bool
        Add ``p ~ N(0, I sigma2_pe)``, one effect per individual shared by its repeated records
        (implies ``repeated``).
    repeated : bool
        Allow several records per individual (``y`` indexed by ID with repeats). ``fixed`` and
        ``weights`` then need y's index row for row.

    Examples
    --------
    >>> import bayesblup as bb
    >>> wheat = bb.datasets.load_wheat()
    >>> G = bb.genomic_relationship(wheat.genotypes, scaling="standardized")
    >>> model = bb.GBLUP(wheat.phenotypes["y1"], G, prior="bglr")
    >>> [v.name for v in model.model.free_RVs], [v.name for v in model.model.deterministics]
    (['mu', 'sigma2_g', 'sigma2_e'], ['h2'])
    >>> sorted(v.name for v in model.model.data_vars)[:4]   # every number of the graph: data, swapped on reuse
    ['eigenvalues', 'factor_c', 'noise_a', 'one_star']
    """

    name: ClassVar[str] = "gblup"
    kernel_variance: ClassVar[str] = "sigma2_g"

    def __init__(
        self,
        y: pd.Series | Records,
        relationship: Relationship,
        *,
        form: str = "marginal",
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
        permanent_environment: bool = False,
        repeated: bool = False,
    ):
        if not isinstance(relationship, Relationship):
            raise InputError(
                "relationship must be a bayesblup.Relationship (e.g. from bayesblup.genomic_relationship, or "
                f"bayesblup.Relationship(matrix, ids, 'user')); got {type(relationship).__name__}."
            )
        n = relationship.n_individuals
        check_relationship(
            relationship.matrix, relationship.ids, f"relationship matrix ({relationship.scaling}, {n} x {n})"
        )
        records = as_records(
            y, relationship.ids, fixed=fixed, weights=weights, repeated=repeated or permanent_environment
        )
        super().__init__(
            records, form=form, prior=prior, eigen_rtol=eigen_rtol, permanent_environment=permanent_environment
        )
        self.relationship = relationship
        self._p = relationship.index(records.ids)
        self._u = relationship.index(records.unphenotyped)
        self._G = np.asarray(relationship.matrix[np.ix_(self._p, self._p)], dtype=np.float64)

    @property
    def relationship_matrix(self) -> np.ndarray:
        return self._G

    @property
    def factor(self) -> float:
        return 1.0

    @property
    def msx(self) -> float:
        """BGLR RKHS's ``mean(d)``: the mean non-zero eigenvalue of G."""
        if self.scale is None:
            return self.spectral.mean_nonzero
        # The spectral form decomposes S G S; G's own mean non-zero eigenvalue is trace(G) / rank(G),
        # and rank(S G S) = rank(G) since S is invertible.
        return float(np.trace(self._G)) / self.spectral.rank

    @property
    def n_markers(self) -> int | None:
        return self.relationship.n_markers

    @property
    def scaling(self) -> str:
        return self.relationship.scaling

    @property
    def denominator(self) -> float | None:
        return self.relationship.denominator

    @property
    def targets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if not self._u.size:
            return {}
        G = self.relationship.matrix
        return {"unphenotyped": (G[np.ix_(self._u, self._p)], np.diag(G)[self._u])}

    @property
    def relationship_diagonal(self) -> np.ndarray:
        return np.diag(self.relationship.matrix)[np.concatenate([self._p, self._u])]

    def _latent_genetic_values(self, sigma2_k):
        import pymc as pm
        import pytensor.tensor as pt

        every = np.concatenate([self._p, self._u])
        G_all = self.relationship.matrix[np.ix_(every, every)]
        # G itself over every individual (the marginal form's decomposition is of S G S, records only).
        reuse = not self._u.size and self.scale is None
        sp = self.spectral if reuse else eigendecompose(G_all, rtol=self.eigen_rtol)
        keep = sp.values > 0
        factor = sp.vectors[:, keep] * np.sqrt(sp.values[keep])  # L with L L' = G (rank r)
        model = pm.modelcontext(None)
        model.add_coord("factor", np.arange(int(keep.sum())))
        z = pm.Normal("z", 0.0, 1.0, dims="factor")
        return pm.Deterministic("g", pt.sqrt(sigma2_k) * pt.dot(factor, z), dims=INDIVIDUAL)
