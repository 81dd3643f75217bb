"""Linear algebra shared by the likelihoods and the posterior: eigendecompositions and low-rank updates."""

from .spectral import DEFAULT_EIGEN_RTOL, RankDeficiencyWarning, Spectral, eigendecompose

__all__ = ["DEFAULT_EIGEN_RTOL", "RankDeficiencyWarning", "Spectral", "eigendecompose"]
