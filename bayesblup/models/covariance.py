"""Priors on t x t covariance matrices (multi-trait models): LKJ, inverse Wishart, and BGLR's defaults.

Building blocks for a model with t traits, a genetic covariance ``Sigma_g`` (on G's scale) and a residual
covariance ``Sigma_e``. Each is called inside a ``with pm.Model():`` block, registers its variables under
``name`` and returns the t x t covariance matrix as a PyTensor tensor:

- :func:`lkj_covariance`: ``Sigma = diag(sd) R diag(sd)`` with ``R ~ LKJCorr(eta)`` and the standard
  deviations ``sd`` built by the caller (from per-trait priors);
- :func:`inverse_wishart`: ``Sigma ~ InverseWishart(df, scale)`` in scipy's convention
  (``E[Sigma] = scale / (df - t - 1)``), sampled through the Bartlett decomposition so that NUTS works on
  unconstrained, well-scaled variables (the log of t chi-squares and t(t - 1)/2 standard normals);
- :func:`bglr_multitrait_priors`: the ``(df0, S0)`` that BGLR's ``Multitrait`` chooses by default for an
  ``RKHS`` term and for the residual, and :func:`bglr_rkhs_msx` its ``MSx`` of a kernel
  (``docs/multitrait-priors.md`` cites the BGLR source line by line).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = [
    "BGLR_MT_RESIDUAL_DF0",
    "bglr_multitrait_priors",
    "bglr_rkhs_msx",
    "inverse_wishart",
    "lkj_covariance",
]

#: BGLR Multitrait's default ``resCov$df0`` (whatever the number of traits).
BGLR_MT_RESIDUAL_DF0 = 5.0
#: BGLR's eigenvalue cut-off for an RKHS kernel: eigenvectors with eigenvalues at or below it are dropped.
BGLR_EIGEN_TOL = 1e-10


def _n_traits(x, what: str) -> int:
    """The static trait count of a vector (t,) or matrix (t, t) tensor."""
    n = x.type.shape[-1]
    if n is None:  # a shape set by model dims or pm.Data: its value now (LKJ and the Bartlett factor need it)
        try:
            n = int(x.shape[-1].eval())
        except Exception as exc:  # a shape that depends on inputs not given yet
            raise InputError(f"{what}: its number of traits must be known when the model is built.") from exc
    if n < 2:
        raise InputError(f"{what}: a covariance prior needs at least 2 traits, got {n}.")
    return int(n)


def lkj_covariance(name: str, sd, *, eta: float = 1.0, dims=None):
    """``Sigma = diag(sd) R diag(sd)`` with ``R ~ LKJCorr(eta)``: a t x t covariance from given sds.

    Registers ``f"{name}_corr_chol"`` (PyMC's ``LKJCorr``: the lower Cholesky factor of R, a free variable),
    the Deterministics ``f"{name}_corr"`` (R) and ``name`` (Sigma), both with ``dims``.

    Parameters
    ----------
    name : str
        The covariance's name in the model, e.g. ``"Sigma_g"``.
    sd : tensor_like, shape (t,)
        The t standard deviations (a tensor built from per-trait priors, or numbers); t must be static.
    eta : float
        LKJ's shape: 1 is uniform over correlation matrices; larger values shrink R towards I. Each
        correlation's marginal is ``2 Beta(eta - 1 + t/2, eta - 1 + t/2) - 1``.
    dims : tuple of str, optional
        Two dims (e.g. ``("trait", "trait_bis")``) for the Deterministics.

    Returns
    -------
    TensorVariable
        Sigma, t x t.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if not np.ndim(eta) == 0 or not float(eta) > 0:
        raise InputError(f"{name}: LKJ's eta must be one positive number, got {eta!r}.")
    sd = pt.as_tensor_variable(sd)
    if sd.ndim != 1:
        raise InputError(f"{name}: sd must be a vector of t standard deviations, got {sd.ndim} dimensions.")
    t = _n_traits(sd, name)
    chol_corr = pm.LKJCorr(f"{name}_corr_chol", n=t, eta=eta)  # lower L with R = L L'
    corr = pm.Deterministic(f"{name}_corr", chol_corr @ chol_corr.T, dims=dims)
    return pm.Deterministic(name, sd[:, None] * corr * sd[None, :], dims=dims)


def inverse_wishart(name: str, df, scale, *, dims=None):
    """``Sigma ~ InverseWishart(df, scale)``, scipy's convention, through the Bartlett decomposition.

    ``Sigma^-1 = L A A' L'`` with ``L = chol(scale^-1)`` and A lower triangular, ``A_ii^2 ~ ChiSquared(df - i
    + 1)`` (i = 1..t) and ``A_ij ~ N(0, 1)`` below the diagonal; then ``Sigma^-1 ~ Wishart(df, scale^-1)``
    and ``Sigma ~ InverseWishart(df, scale)``, with density proportional to ``|Sigma|^(-(df + t + 1)/2)
    exp(-tr(scale Sigma^-1)/2)``, mode ``scale / (df + t + 1)`` and, when ``df > t + 1``, mean
    ``scale / (df - t - 1)``. This is BGLR's (MCMCpack's ``riwish``) parametrisation too.

    Registers the free variables ``f"{name}_bartlett_chi2"`` (the t chi-squares ``A_ii^2``, log-transformed
    for NUTS) and ``f"{name}_bartlett_z"`` (the t(t - 1)/2 normals, row by row of the lower triangle), and
    the Deterministic ``name`` (Sigma, with ``dims``).

    Parameters
    ----------
    name : str
        The covariance's name in the model, e.g. ``"Sigma_e"``.
    df : float
        Degrees of freedom, ``df > t - 1``. BGLR's genetic default ``t + 1`` is proper but has no mean.
    scale : array_like, shape (t, t)
        Symmetric positive-definite scale matrix (BGLR's ``S0``); numbers or a tensor of static shape.
    dims : tuple of str, optional
        Two dims for the Deterministic.

    Returns
    -------
    TensorVariable
        Sigma, t x t.
    """
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.graph.basic import Variable
    from pytensor.tensor.linalg import solve_triangular

    scale = pt.as_tensor_variable(scale if isinstance(scale, Variable) else np.asarray(scale, dtype=float))
    if scale.ndim != 2 or scale.type.shape[0] != scale.type.shape[1]:
        raise InputError(f"{name}: the scale must be a square t x t matrix, got shape {scale.type.shape}.")
    t = _n_traits(scale, name)
    if not isinstance(df, Variable) and np.ndim(df) != 0:
        raise InputError(f"{name}: df must be one number, got {df!r}.")
    if not isinstance(df, Variable) and not float(df) > t - 1:
        raise InputError(f"{name}: the inverse Wishart needs df > t - 1 = {t - 1} to be proper, got df = {df}.")
    if isinstance(scale, pt.TensorConstant):
        value = scale.data
        if not np.allclose(value, value.T) or np.any(np.linalg.eigvalsh((value + value.T) / 2) <= 0):
            raise InputError(f"{name}: the scale must be symmetric positive definite.")
        chol_inv = pt.as_tensor_variable(np.linalg.cholesky(np.linalg.inv(value)))  # L, L L' = scale^-1
    else:
        chol_inv = pt.linalg.cholesky(pt.linalg.inv(scale))

    chi2 = pm.ChiSquared(f"{name}_bartlett_chi2", nu=df - pt.arange(t))  # df - i + 1, i = 1..t
    z = pm.Normal(f"{name}_bartlett_z", mu=0.0, sigma=1.0, shape=t * (t - 1) // 2)
    rows, cols = np.tril_indices(t, -1)
    A = pt.zeros((t, t))
    A = A[np.arange(t), np.arange(t)].set(pt.sqrt(chi2))
    A = A[rows, cols].set(z)
    B = chol_inv @ A  # lower triangular, B B' = Sigma^-1
    B_inv = solve_triangular(B, pt.eye(t), lower=True)
    return pm.Deterministic(name, B_inv.T @ B_inv, dims=dims)  # Sigma = B'^-1 B^-1


def _pairwise_cov(Y: np.ndarray) -> np.ndarray:
    """R's ``cov(Y, use = "pairwise.complete.obs")`` then ``Sy[is.na(Sy)] = 0``.

    Each entry (j, k) from the rows where both traits are observed: their own means, divisor ``n_jk - 1``;
    0 where fewer than two rows have both.
    """
    t = Y.shape[1]
    obs = ~np.isnan(Y)
    Sy = np.zeros((t, t))
    for j in range(t):
        for k in range(j, t):
            both = obs[:, j] & obs[:, k]
            n = int(both.sum())
            if n < 2:
                continue
            a, b = Y[both, j], Y[both, k]
            Sy[j, k] = Sy[k, j] = np.sum((a - a.mean()) * (b - b.mean())) / (n - 1)
    return Sy


def bglr_rkhs_msx(K) -> float:
    """BGLR Multitrait's ``MSx`` of an RKHS kernel K (n x n): ``mean(diag K+) - mean(K+)``.

    BGLR keeps the eigenvectors of K with eigenvalues above 1e-10, sets ``X = Gamma Lambda^1/2`` (so that
    ``X X' = K+``, K without its null and negative directions) and takes ``MSx = sum(X^2)/n -
    sum(colMeans(X)^2)``, the sum of the column variances of X with divisor n: ``tr(K+)/n - 1'K+1/n^2``. For
    a centred G (``G 1 = 0``) it is ``tr(G)/n``; note that single-trait ``BGLR`` divides ``tr(G)`` by the
    number of kept eigenvalues instead (``mean(d)``), n - 1 for a centred G of full rank n - 1.
    """
    K = np.asarray(K, dtype=float)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise InputError(f"bglr_rkhs_msx: K must be a square matrix, got shape {K.shape}.")
    values, vectors = np.linalg.eigh((K + K.T) / 2)
    keep = values > BGLR_EIGEN_TOL
    X = vectors[:, keep] * np.sqrt(values[keep])
    return float(np.sum(X**2) / K.shape[0] - np.sum(X.mean(axis=0) ** 2))


def bglr_multitrait_priors(Y, msx: float, *, r2: float = 0.5, n_terms: int = 1, as_sampled: bool = False) -> dict:
    """The inverse-Wishart priors that BGLR's ``Multitrait`` uses by default (BGLR 1.1.5).

    With ``Sy = cov(Y, use = "pairwise.complete.obs")`` (NA entries set to 0) and t traits:

    - ``"genetic"`` (an RKHS or BRR term, ``Cov$type = "UN"``): ``df0 = t + 1``,
      ``S0 = (r2 / n_terms) Sy / msx (df0 + t + 1)``, so that the prior mode ``S0 / (df0 + t + 1)`` is
      ``(r2 / n_terms) Sy / msx``;
    - ``"residual"`` (``resCov$type = "UN"``): ``df0 = 5`` whatever t, ``S0 = (1 - r2) Sy (df0 + t + 1)``,
      prior mode ``(1 - r2) Sy``.

    Both are ``InverseWishart(df0, S0)`` in scipy's convention (:func:`inverse_wishart`). BGLR's Gibbs
    update of the genetic covariance draws from ``riwish(df0 + t + p, S0 + B'B)`` for p effects B (p x t),
    where the prior ``IW(df0, S0)`` gives ``df0 + p``: the sampler behaves as if the genetic prior were
    ``IW(df0 + t, S0)``. ``as_sampled=True`` returns that ``df0 + t`` for the genetic term (to reproduce
    BGLR's posterior); the default returns the ``df0`` that BGLR sets and prints.

    Parameters
    ----------
    Y : array_like, shape (n, t)
        Phenotypes, NaN for missing.
    msx : float
        The kernel's ``MSx`` (:func:`bglr_rkhs_msx`; 1 or close to it for a standardised G).
    r2 : float
        BGLR's ``R2``, the prior share of variance explained by the linear predictor (default 0.5).
    n_terms : int
        BGLR's ``nLT``: the number of terms in ``ETA`` (FIXED terms count too); each random term gets
        ``r2 / n_terms``.
    as_sampled : bool
        Genetic df as BGLR's sampler uses it (``df0 + t``), see above.

    Returns
    -------
    dict
        ``{"genetic": (df0, S0), "residual": (df0, S0)}``, df0 floats and S0 (t, t) arrays.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 4.0], [np.nan, 0.0]])
    >>> priors = bglr_multitrait_priors(Y, msx=1.0)
    >>> priors["genetic"][0], priors["residual"][0]
    (3.0, 5.0)
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[1] < 2:
        raise InputError(f"bglr_multitrait_priors: Y must be an n x t matrix with t >= 2 traits, got shape {Y.shape}.")
    if not np.all(np.isfinite(Y[~np.isnan(Y)])):
        raise InputError("bglr_multitrait_priors: Y has infinite values (NaN marks a missing record).")
    if not (np.ndim(msx) == 0 and np.isfinite(msx) and msx > 0):
        raise InputError(f"bglr_multitrait_priors: msx must be one positive number, got {msx!r}.")
    if not 0 < r2 < 1:
        raise InputError(f"bglr_multitrait_priors: r2 must lie in (0, 1), got {r2!r}.")
    if int(n_terms) != n_terms or n_terms < 1:
        raise InputError(f"bglr_multitrait_priors: n_terms must be a positive integer, got {n_terms!r}.")
    t = Y.shape[1]
    Sy = _pairwise_cov(Y)
    df0_g = float(t + 1)
    S0_g = (r2 / n_terms) * Sy / msx * (df0_g + t + 1)
    df0_e = BGLR_MT_RESIDUAL_DF0
    S0_e = (1 - r2) * Sy * (df0_e + t + 1)
    return {"genetic": (df0_g + t if as_sampled else df0_g, S0_g), "residual": (df0_e, S0_e)}
