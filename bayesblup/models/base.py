"""What M-BLUP and G-BLUP share: data, configuration, the variance block, and fitting.

Both models have ``Var(y) = sigma2_k K + sigma2_e I`` with ``K = c G``: G-BLUP has ``sigma2_k =
sigma2_g`` and ``c = 1``; M-BLUP has ``sigma2_k = sigma2_b``, ``K = WW'`` and ``c`` the denominator of
G (m for the standardised scalings, nu_p for ``centered``), so ``c sigma2_b`` is the genetic variance
on the scale of G, ``sigma2_g_equiv``. Each model is built in one of two forms:

``marginal`` (default)
    The spectral form: G is eigendecomposed once, y rotated, and the likelihood is diagonal
    (:mod:`bayesblup.spectral`). NUTS samples mu and two variances at O(n) per gradient; genetic
    values follow exactly from ``g | y, theta`` draw by draw (:mod:`bayesblup.posterior`).
``latent``
    The textbook form with ``g`` (or ``b``) explicit and non-centred: the teaching view and the
    test oracle.
"""

from __future__ import annotations

import importlib.util
import time
from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..names import INDIVIDUAL, RECORD
from ..phenotypes import Records
from ..priors import Prior, resolve_prior
from ..spectral import DEFAULT_EIGEN_RTOL, Spectral, eigendecompose

__all__ = ["FORMS", "METHODS", "BLUPModel"]

FORMS = ("marginal", "latent")
METHODS = ("nuts", "map")


class BLUPModel:
    """Base class of :class:`~bayesblup.GBLUP` and :class:`~bayesblup.MBLUP`; not used directly."""

    name: ClassVar[str]  # "gblup" | "mblup"
    kernel_variance: ClassVar[str]  # "sigma2_g" | "sigma2_b"

    def __init__(
        self, records: Records, *, form: str = "marginal", prior="default", eigen_rtol: float = DEFAULT_EIGEN_RTOL
    ):
        if form not in FORMS:
            raise InputError(f"form must be one of {', '.join(FORMS)}; got {form!r}.")
        if not isinstance(records, Records):
            raise InputError("records must come from bayesblup.match_records(...) (IDs matched to genotypes).")
        if not 0 < eigen_rtol < 1:
            raise InputError(f"eigen_rtol must lie in (0, 1), got {eigen_rtol}.")
        self.records = records
        self.form = form
        self.eigen_rtol = eigen_rtol
        self._prior_spec = prior
        self._spectral: Spectral | None = None
        self._model = None
        self.timings: dict[str, float] = {}

    # --- what a subclass supplies ------------------------------------------------------------
    @property
    def relationship_matrix(self) -> np.ndarray:
        """G on the fitted individuals (n x n), in record order."""
        raise NotImplementedError

    @property
    def factor(self) -> float:
        """C in ``K = c G`` and ``sigma2_g_equiv = c sigma2_k``."""
        raise NotImplementedError

    @property
    def msx(self) -> float:
        """BGLR's MSx, the scale of the kernel in its default prior."""
        raise NotImplementedError

    @property
    def n_markers(self) -> int | None:
        raise NotImplementedError

    @property
    def scaling(self) -> str:
        raise NotImplementedError

    def _latent_genetic_values(self, sigma2_k):
        """Add the explicit genetic values ``g`` (dims individual, every individual) to the model."""
        raise NotImplementedError

    @property
    def targets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{name: (M, v)}`` for :func:`bayesblup.posterior.posterior_moments`.

        Individuals without a record (``"unphenotyped"``) and, for M-BLUP, ``"markers"``.
        """
        raise NotImplementedError

    @property
    def relationship_diagonal(self) -> np.ndarray:
        """``G_ii`` for every individual (records first), for reliabilities."""
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------
    @property
    def y(self) -> np.ndarray:
        return self.records.y

    @property
    def ids(self) -> np.ndarray:
        """IDs of the individuals with a record, in record order."""
        return self.records.ids

    @property
    def individuals(self) -> np.ndarray:
        """Every genotyped individual in the model: those with a record first, then the others."""
        return np.concatenate([self.records.ids, np.asarray(self.records.unphenotyped, dtype=object)])

    @property
    def n(self) -> int:
        return self.records.y.size

    @property
    def spectral(self) -> Spectral:
        """The eigendecomposition of G, computed once."""
        if self._spectral is None:
            t0 = time.perf_counter()
            self._spectral = eigendecompose(self.relationship_matrix, rtol=self.eigen_rtol, name=self._kernel_label)
            self.timings["eigendecomposition_s"] = time.perf_counter() - t0
        return self._spectral

    @property
    def _kernel_label(self) -> str:
        return "G"

    @property
    def priors(self) -> tuple[str, dict[str, Prior]]:
        """(label, priors) after resolving the preset against the data."""
        return resolve_prior(self._prior_spec, self.y, kernel_name=self.kernel_variance, msx=self.msx)

    @property
    def model(self):
        """The ``pm.Model``, built on first use: inspect it, extend it, or sample it with any PyMC sampler."""
        if self._model is None:
            self._model = self.build()
        return self._model

    def build(self):
        """Build and return the PyMC model in the configured form."""
        t0 = time.perf_counter()  # includes importing PyMC, which a first build pays
        import pymc as pm
        import pytensor.tensor as pt

        label, priors = self.priors
        coords = {INDIVIDUAL: self.individuals.astype(str)}
        if self.form == "marginal":
            coords["component"] = np.arange(self.n)
        X = self.records.X
        if X is not None:
            coords["covariate"] = list(self.records.covariates)
        with pm.Model(coords=coords) as model:
            mu = priors["mu"].create("mu")
            sigma2_k, sigma2_e = self._variance_block(label, priors)
            beta = None
            if X is not None:
                # Effectively flat: 10 sd(y) per sd of the covariate, so any plausible effect is inside.
                scale = 10 * np.std(self.y, ddof=1) / X.std(axis=0)
                beta = pm.Normal("beta", 0.0, scale, dims="covariate")
            if self.form == "marginal":
                sp = self.spectral
                kernel_values = self.factor * sp.values
                mean = sp.rotate(np.ones(self.n)) * mu
                if beta is not None:
                    mean = mean + pt.dot(sp.rotate(X), beta)
                pm.Normal(
                    "y_rotated",
                    mu=mean,
                    sigma=pt.sqrt(sigma2_k * kernel_values + sigma2_e),
                    observed=sp.rotate(self.y),
                    dims="component",
                )
            else:
                g = self._latent_genetic_values(sigma2_k)
                model.add_coord(RECORD, np.arange(self.n))
                # Records come first among the individuals; the rest are predicted through G.
                mean = mu + g[: self.n] if beta is None else mu + pt.dot(X, beta) + g[: self.n]
                pm.Normal("y", mu=mean, sigma=pt.sqrt(sigma2_e), observed=self.y, dims=RECORD)
        self.timings["build_s"] = time.perf_counter() - t0
        self.prior_label = label
        return model

    def _variance_block(self, label: str, priors: dict[str, Prior]):
        """sigma2_k, sigma2_e and h2 (+ sigma2_g_equiv for M-BLUP) under the chosen prior."""
        import pymc as pm

        c = self.factor
        if label == "default":
            h2 = priors["h2"].create("h2")
            total = priors["sigma2_p"].create("sigma2_p")
            sigma2_e = pm.Deterministic("sigma2_e", (1 - h2) * total)
            sigma2_k = pm.Deterministic(self.kernel_variance, h2 * total / c)
        else:
            sigma2_k = priors[self.kernel_variance].create(self.kernel_variance)
            sigma2_e = priors["sigma2_e"].create("sigma2_e")
            pm.Deterministic("h2", c * sigma2_k / (c * sigma2_k + sigma2_e))
        if self.name == "mblup":
            pm.Deterministic("sigma2_g_equiv", c * sigma2_k)
        return sigma2_k, sigma2_e

    @property
    def parameter_names(self) -> list[str]:
        names = ["h2", self.kernel_variance, "sigma2_e", "mu"]
        names = [*names[:2], "sigma2_g_equiv", *names[2:]] if self.name == "mblup" else names
        return [*names, "beta"] if self.records.X is not None else names

    def fit(
        self,
        *,
        method: str = "nuts",
        chains: int = 4,
        draws: int = 1000,
        tune: int = 1000,
        seed: int | None = None,
        cores: int | None = None,
        progressbar: bool = False,
        target_accept: float = 0.8,
        genetic_value_draws: bool = False,
        thin: int = 1,
    ):
        """Fit by NUTS (nutpie when installed, else PyMC's) or MAP, and add genetic values.

        Parameters
        ----------
        method : {"nuts", "map"}
            ``"map"`` maximises the posterior density with ``pymc.find_MAP``; genetic values are
            then the conditional mean and sd of ``g | y`` at the MAP variances.
        chains, draws, tune, seed, cores, progressbar
            As in ``pymc.sample``.
        target_accept : float
            NUTS's target acceptance rate; raise it (e.g. 0.95) if a fit reports divergences, as the
            latent form can when h2 is near 1.
        genetic_value_draws : bool
            Also store full draws of ``g`` (marginal form; every ``thin``-th draw) in the posterior.
        thin : int
            Thinning of those draws.

        Returns
        -------
        BLUPFit
        """
        import pymc as pm

        from ..results import BLUPFit

        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
        for name, value in {"chains": chains, "draws": draws, "thin": thin}.items():
            if int(value) < 1:
                raise InputError(f"{name} must be at least 1, got {value}.")
        if not 0 < target_accept < 1:
            raise InputError(f"target_accept must lie in (0, 1), got {target_accept}.")
        if tune < 0:
            raise InputError(f"tune must be >= 0, got {tune}.")
        model = self.model
        t0 = time.perf_counter()
        if method == "nuts":
            sampler = "nutpie" if importlib.util.find_spec("nutpie") else "pymc"
            datatree = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=seed,
                nuts_sampler=sampler,
                progressbar=progressbar,
                target_accept=target_accept,
                model=model,
                compute_convergence_checks=False,  # our own diagnostics report them
            )
        else:
            sampler = "find_MAP"
            datatree = pm.find_MAP(
                model=model, progressbar=progressbar, jitter=False, return_inferencedata=True, random_seed=seed
            )
        self.timings["sampling_s"] = time.perf_counter() - t0
        settings = {"form": self.form, "seed": seed}
        if method == "nuts":
            settings |= {"chains": chains, "draws": draws, "tune": tune, "target_accept": target_accept}
        return BLUPFit.from_datatree(
            self,
            datatree,
            method=method,
            sampler=sampler,
            genetic_value_draws=genetic_value_draws,
            thin=thin,
            **settings,
        )
