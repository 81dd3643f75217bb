"""Linear algebra shared by the likelihoods and the posterior: eigendecompositions and low-rank updates."""

from .spectral import (
    DEFAULT_EIGEN_RTOL,
    RankDeficiencyWarning,
    Spectral,
    ThinSpectral,
    eigendecompose,
    thin_eigendecompose,
)

__all__ = [
    "DEFAULT_EIGEN_RTOL",
    "RankDeficiencyWarning",
    "Spectral",
    "ThinSpectral",
    "eigendecompose",
    "thin_eigendecompose",
]
