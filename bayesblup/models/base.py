"""What M-BLUP and G-BLUP share: data, configuration, the variance block, and fitting.

Both models have ``Var(y) = sigma2_k K + sigma2_e I`` with ``K = c G``: G-BLUP has ``sigma2_k =
sigma2_g`` and ``c = 1``; M-BLUP has ``sigma2_k = sigma2_b``, ``K = WW'`` and ``c`` the denominator of
G (m for the standardised scalings, nu_p for ``centered``), so ``c sigma2_b`` is the genetic variance
on the scale of G, ``sigma2_g_equiv``. Each model is built in one of two forms:

``marginal`` (default)
    The spectral form: G is eigendecomposed once, y rotated, and the likelihood is diagonal
    (:mod:`bayesblup.linalg.spectral`). NUTS samples mu and two variances at O(n) per gradient; genetic
    values follow exactly from ``g | y, theta`` draw by draw (:mod:`bayesblup.inference.posterior`).
``latent``
    The textbook form with ``g`` (or ``b``) explicit and non-centred: the teaching view and the
    test oracle.

Records (:class:`~bayesblup.Records`) may be repeated (Z), weighted (``Var(e) = D sigma2_e``,
``D = diag(1/w)``) and carry a permanent-environment effect ``p ~ N(0, I sigma2_pe)`` per
individual. The marginal form then works on sufficient statistics: per individual the weighted
mean record ``ybar_i`` with total weight ``W_i``, for which

    Var(ybar) = sigma2_k K + sigma2_pe I + sigma2_e diag(1/W).

What the means leave out, the within-individual scatter ``sum_j w_j (y_j - ybar_i - (x_j - xbar_i)
beta)^2``, enters as a ``pm.Potential`` with its normalising constants, so the log-likelihood is
that of the records exactly. Three cases (``pe_path``):

``"none"`` (no permanent environment)
    Rescale by ``S = diag(sqrt(W))`` before the eigendecomposition: ``S Var(ybar) S = sigma2_k S K S +
    sigma2_e I`` is diagonal in the eigenbasis of ``S K S``.
``"diagonal"`` (every individual has the same total weight W)
    ``Var(ybar) = sigma2_k K + (sigma2_pe + sigma2_e / W) I``, diagonal in K's eigenbasis.
``"augmented"`` (unequal total weights)
    Split ``diag(1/W) = I / W_max + diag(Delta)``, ``Delta_i = 1/W_i - 1/W_max >= 0``. The part with
    ``Delta`` becomes an explicit, non-centred residual excess ``eps_i ~ N(0, sigma2_e Delta_i)``; given
    it, ``Var(ybar - eps) = sigma2_k K + (sigma2_pe + sigma2_e / W_max) I`` is diagonal again. g and p
    stay integrated out; only eps is sampled, and its scale sigma2_e is the best-determined variance
    in the model, so NUTS mixes well (explicit p, the obvious alternative, mixes about 8x worse).
"""

from __future__ import annotations

import time
import warnings
from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..inference.samplers import check_nuts_sampler, choose_nuts
from ..linalg.spectral import DEFAULT_EIGEN_RTOL, Spectral, eigendecompose
from ..names import INDIVIDUAL, PHENOTYPED, RECORD
from ..phenotypes import Records, match_records
from .priors import Prior, resolve_prior

__all__ = ["FORMS", "METHODS", "BLUPModel", "RotatedData"]

FORMS = ("marginal", "latent")
METHODS = ("nuts", "map")


def as_records(y, genotyped_ids, **options) -> Records:
    """``y`` itself if already matched (Records), else :func:`~bayesblup.match_records` with ``options``."""
    return y if isinstance(y, Records) else match_records(y, genotyped_ids, **options)


def within_terms(rec: Records, *, scaled: bool):
    """What per-individual weighted means leave out of the records' log-likelihood, or None.

    Returns ``(a, b, C, n_extra, constant)``: the within-individual scatter ``a - 2 b'beta + beta' C
    beta`` (b and C None without covariates), the number of records beyond one per individual, and
    the constant of the record terms. ``scaled``: whether the means enter as ``S ybar`` with ``S =
    diag(sqrt(W_i))`` (then the rotation's Jacobian is folded into the constant).
    """
    if rec.is_collapsible:
        return None
    w = rec.record_weights
    W = rec.total_weight
    ybar = rec.individual_means(rec.y)
    yc = rec.y - ybar[rec.record_index]
    a = float(w @ yc**2)
    b = C = None
    if rec.X is not None:
        Xc = rec.X - rec.individual_means(rec.X)[rec.record_index]
        b, C = Xc.T @ (w * yc), Xc.T @ (w[:, None] * Xc)
    # log N(y) = log N(ybar) + within terms; the rotation by S adds sum log s_i = sum log W_i / 2
    # to log N(ybar), which cancels the within terms' -sum log W_i / 2 where S is used.
    constant = 0.5 * float(np.log(w).sum()) - (0.0 if scaled else 0.5 * float(np.log(W).sum()))
    return a, b, C, rec.n_records - rec.n_individuals, constant


def add_within_potential(within, beta, sigma2_e) -> None:
    """Add the within-individual record terms (see :func:`within_terms`) as a ``pm.Potential``."""
    import pymc as pm
    import pytensor.tensor as pt

    a, b, C, n_extra, constant = within
    scatter = a if beta is None else a - 2 * pt.dot(b, beta) + pt.dot(beta, pt.dot(C, beta))
    pm.Potential(
        "within_individual",
        constant - 0.5 * n_extra * pt.log(2 * np.pi * sigma2_e) - scatter / (2 * sigma2_e),
    )


class RotatedData:
    """The data of the marginal form in the eigenbasis of ``S K S``, computed once per model.

    Attributes
    ----------
    vectors : ndarray (n, n)
        U.
    lam : ndarray (n,)
        Eigenvalues of the kernel ``c S G S`` (``K = c G``).
    scale : ndarray (n,) or None
        ``sqrt(W_i)``; None where the kernel is not rescaled (S = I).
    y, one, X : ndarray
        ``U' S ybar``, ``U' S 1`` and ``U' S Xbar`` (None without covariates).
    noise : (float, float)
        ``(a, b)`` with ``nu = a sigma2_e + b sigma2_pe`` added to ``sigma2_k lam_k`` in every component.
    excess : ndarray (n,) or None
        ``Delta_i``, the residual-variance excess of each individual over the best-recorded one, in
        units of sigma2_e (``pe_path == "augmented"``).
    within : tuple or None
        ``(a, b, C, n_extra, constant)``: the within-individual scatter ``a - 2 b'beta + beta' C beta``,
        the number of records beyond one per individual, and the constant of the record terms.
    """

    def __init__(self, model: BLUPModel):
        rec = model.records
        sp = model.spectral
        self.vectors = sp.vectors
        self.lam = model.factor * sp.values
        self.scale = model.scale
        s = np.ones(rec.n_individuals) if self.scale is None else self.scale
        collapse = not rec.is_collapsible
        ybar = rec.individual_means(rec.y) if collapse else rec.y
        Xbar = None if rec.X is None else (rec.individual_means(rec.X) if collapse else rec.X)
        self.y = sp.rotate(s * ybar)
        self.one = sp.rotate(s)
        self.X = None if Xbar is None else sp.rotate(s[:, None] * Xbar)
        W = rec.total_weight
        self.noise = {"none": (1.0, 0.0), "diagonal": (1.0 / W[0], 1.0), "augmented": (1.0 / W.max(), 1.0)}[
            model.pe_path
        ]
        self.excess = 1.0 / W - 1.0 / W.max() if model.pe_path == "augmented" else None
        self.within = within_terms(rec, scaled=self.scale is not None)

    def rotate_scaled(self, x: np.ndarray) -> np.ndarray:
        """``U' S x`` for a vector or columns (the rotation of an individual-level offset)."""
        s = np.ones(self.lam.size) if self.scale is None else self.scale
        return self.vectors.T @ (s[:, None] * x if x.ndim == 2 else s * x)


class BLUPModel:
    """Base class of :class:`~bayesblup.GBLUP` and :class:`~bayesblup.MBLUP`; not used directly."""

    name: ClassVar[str]  # "gblup" | "mblup"
    kernel_variance: ClassVar[str]  # "sigma2_g" | "sigma2_b"
    #: PyMC's NUTS initialisation: a diagonal mass matrix suits the few, nearly independent parameters here.
    nuts_init: ClassVar[str] = "jitter+adapt_diag"
    #: NUTS's target acceptance. 0.9 rather than PyMC's 0.8: when the posterior of h2 has mass near 0 the
    #: curvature in logit(h2) changes along the chain, and 0.8 left a divergent transition in 4 x 1000 draws
    #: of a simulated n = 80 fit (none at 0.9, for a few percent more gradient evaluations). Several marker
    #: sets (a set with little variance narrows the posterior's neck) and a sampled residual excess
    #: (pe_path == "augmented") need the same.
    default_target_accept: ClassVar[float] = 0.9
    #: Whether the marginal form can put its numbers in pm.Data, so that fits of the same structure share
    #: one compiled model (:mod:`bayesblup.inference.compiled`). The multi-set models hold their data in Ops.
    supports_reuse: ClassVar[bool] = True

    def __init__(
        self,
        records: Records,
        *,
        form: str = "marginal",
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        permanent_environment: bool = False,
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
        self.permanent_environment = bool(permanent_environment)
        if self.permanent_environment and records.individual is None:
            raise InputError(
                "permanent_environment needs repeated records (several per individual); with one record each it "
                "cannot be told apart from the residual. Drop the option, or pass records with repeated=True."
            )
        self._prior_spec = prior
        self._spectral: Spectral | None = None
        self._rotated: RotatedData | None = None
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
        """``{name: (M, v)}`` for :func:`bayesblup.inference.posterior.posterior_moments`.

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
        """Individuals with at least one record."""
        return self.records.n_individuals

    @property
    def n_records(self) -> int:
        return self.records.n_records

    @property
    def scale(self) -> np.ndarray | None:
        """``sqrt(W_i)``, by which G is rescaled (see the module docstring); None where it is not."""
        if self.records.is_collapsible or self.permanent_environment:
            return None  # with p, S would put sigma2_pe diag(W) in the kernel's basis: not diagonal
        return np.sqrt(self.records.total_weight)

    @property
    def pe_path(self) -> str:
        """How the marginal form stays diagonal: ``"none"``, ``"diagonal"`` or ``"augmented"`` (module docstring)."""
        if not self.permanent_environment:
            return "none"
        W = self.records.total_weight
        return "diagonal" if np.allclose(W, W[0], rtol=1e-12, atol=0) else "augmented"

    @property
    def spectral(self) -> Spectral:
        """The eigendecomposition of ``S G S`` (G itself with one unweighted record per individual), computed once."""
        if self._spectral is None:
            t0 = time.perf_counter()
            K = self.relationship_matrix
            label = self._kernel_label
            if self.scale is not None:  # S G S: the weights rescale G before the eigendecomposition
                K = self.scale[:, None] * K * self.scale[None, :]
                label = f"S {label} S (G rescaled by the root total record weights)"
            self._spectral = eigendecompose(K, rtol=self.eigen_rtol, name=label)
            self.timings["eigendecomposition_s"] = time.perf_counter() - t0
        return self._spectral

    @property
    def rotated(self) -> RotatedData:
        """Data of the marginal form in the eigenbasis (see :class:`RotatedData`), computed once."""
        if self._rotated is None:
            self._rotated = RotatedData(self)
        return self._rotated

    @property
    def _kernel_label(self) -> str:
        return "G"

    @property
    def reusable(self) -> bool:
        """Whether :meth:`fit` samples a compiled model shared with fits of the same structure.

        The single-kernel marginal form: every number its graph reads (rotated data, eigenvalues,
        prior parameters) is a ``pm.Data`` container, so another trait, another CV fold or another
        data set of the same structure only swaps data (:mod:`bayesblup.inference.compiled`). Not the
        latent form, whose free variables grow with n, nor the augmented path, nor several sets.
        """
        return self.supports_reuse and self.form == "marginal" and not self._samples_excess

    def _constant(self, name: str, value, dims=None):
        """``value`` in the graph: a ``pm.Data`` container in a reusable model, else a constant."""
        if not self.reusable:
            return value
        import pymc as pm

        return pm.Data(name, value, dims=dims)

    def _create_prior(self, priors: dict[str, Prior], name: str):
        """The prior of ``name``, its parameters as ``pm.Data`` in a reusable model (they follow y)."""
        prior = priors[name]
        if not self.reusable:
            return prior.create(name)
        if any(np.ndim(v) != 0 or isinstance(v, bool | str) for v in prior.parameters.values()):
            return prior.create(name)  # refused there, with the parameter named
        data = {key: self._constant(f"prior_{name}_{key}", float(value)) for key, value in prior.parameters.items()}
        return prior.create(name, parameters=data)

    @property
    def priors(self) -> tuple[str, dict[str, Prior]]:
        """(label, priors) after resolving the preset against the data."""
        pe_msx = None
        if self.permanent_environment:  # BGLR's MSx of the incidence matrix Z: 1 - sum(n_i^2) / N^2
            counts = np.bincount(self.records.record_index, minlength=self.n)
            pe_msx = 1.0 - float((counts.astype(float) ** 2).sum()) / self.n_records**2
        return resolve_prior(self._prior_spec, self.y, kernel_name=self.kernel_variance, msx=self.msx, pe_msx=pe_msx)

    @property
    def model(self):
        """The ``pm.Model``, built on first use: inspect it, extend it, or sample it with any PyMC sampler."""
        if self._model is None:
            t0 = time.perf_counter()  # includes importing PyMC (a first build pays it) and the eigendecomposition
            self._model = self.build()
            self.timings["build_s"] = time.perf_counter() - t0
        return self._model

    def build(self):
        """Build and return the PyMC model in the configured form."""
        import pymc as pm
        import pytensor.tensor as pt

        label, priors = self.priors
        rec = self.records
        coords = {INDIVIDUAL: self.individuals.astype(str)}
        if self.reusable:  # nothing in the marginal graph is per individual: keep them out of the shared model
            del coords[INDIVIDUAL]
        if self.form == "marginal":
            coords["component"] = np.arange(self.n)
        if rec.X is not None:
            coords["covariate"] = list(rec.covariates)
        if self.permanent_environment and (self.form == "latent" or self._samples_excess):
            # p (latent form) or the residual excess (augmented path) lives here
            coords[PHENOTYPED] = self.ids.astype(str)
        with pm.Model(coords=coords) as model:
            mu = self._create_prior(priors, "mu")
            sigma2_k, sigma2_pe, sigma2_e = self._variance_block(label, priors)
            beta = None
            if rec.X is not None:
                # Effectively flat: 10 sd(y) per sd of the covariate, so any plausible effect is inside.
                scale = 10 * np.std(self.y, ddof=1) / rec.X.std(axis=0)
                beta = pm.Normal("beta", 0.0, self._constant("beta_scale", scale, dims="covariate"), dims="covariate")
            if self.form == "marginal":
                self._marginal_likelihood(mu, beta, sigma2_k, sigma2_pe, sigma2_e)
            else:
                pe = None
                if self.permanent_environment:  # explicit and non-centred, as g
                    z_pe = pm.Normal("z_pe", 0.0, 1.0, dims=PHENOTYPED)
                    pe = pm.Deterministic("pe", pt.sqrt(sigma2_pe) * z_pe, dims=PHENOTYPED)
                g = self._latent_genetic_values(sigma2_k)
                model.add_coord(RECORD, np.arange(self.n_records))
                # Individuals with a record come first; the rest are predicted through G.
                idx = rec.record_index
                mean = mu + g[: self.n][idx]
                if beta is not None:
                    mean = mean + pt.dot(rec.X, beta)
                if pe is not None:
                    mean = mean + pe[idx]
                sigma = pt.sqrt(sigma2_e) if rec.weights is None else pt.sqrt(sigma2_e / rec.weights)
                pm.Normal("y", mu=mean, sigma=sigma, observed=self.y, dims=RECORD)
        self.prior_label = label
        return model

    def _marginal_likelihood(self, mu, beta, sigma2_k, sigma2_pe, sigma2_e) -> None:
        """``y_rotated`` (diagonal Gaussian) and, for repeated or weighted records, the record terms."""
        import pymc as pm
        import pytensor.tensor as pt

        data = self.rotated
        mean = self._constant("one_star", data.one, dims="component") * mu
        if beta is not None:
            mean = mean + pt.dot(self._constant("X_star", data.X, dims=("component", "covariate")), beta)
        a, b = data.noise
        a = self._constant("noise_a", a)
        noise = a * sigma2_e if b == 0 else a * sigma2_e + b * sigma2_pe
        if data.excess is not None:
            # The residual excess of the less-recorded individuals, explicit and non-centred (its sd
            # is a multiple of sigma_e); rotated with the data, it leaves the likelihood diagonal.
            z = pm.Normal("z_excess", 0.0, 1.0, dims=PHENOTYPED)
            # sqrt(Delta) outside the graph: sqrt(sigma2_e * 0) would have an infinite gradient.
            mean = mean + pt.dot(data.vectors.T, np.sqrt(data.excess) * z) * pt.sqrt(sigma2_e)
        lam = self._constant("eigenvalues", data.lam, dims="component")
        y_star = self._constant("y_star", data.y, dims="component")
        pm.Normal("y_rotated", mu=mean, sigma=pt.sqrt(sigma2_k * lam + noise), observed=y_star, dims="component")
        if data.within is not None:
            # log N(y) = log N(y_rotated) + what the weighted means leave out: the within-individual
            # scatter with its normalising constant, so logp is the records' exactly.
            names = ("within_a", "within_b", "within_C", "within_n_extra", "within_constant")
            within = tuple(v if v is None else self._constant(k, v) for k, v in zip(names, data.within, strict=True))
            add_within_potential(within, beta, sigma2_e)

    def _variance_block(self, label: str, priors: dict[str, Prior]):
        """sigma2_k, sigma2_pe (None without it), sigma2_e and h2 (+ sigma2_g_equiv for M-BLUP)."""
        import pymc as pm

        c = self._constant("factor_c", float(self.factor))
        sigma2_pe = None
        if "h2" in priors:  # the h2 parameterisation: "default", or a user's dict with "h2"
            h2 = self._create_prior(priors, "h2")
            total = self._create_prior(priors, "sigma2_p")
            rest = (1 - h2) * total
            if self.permanent_environment:  # the share of the non-genetic variance that is permanent
                share = self._create_prior(priors, "pe_share")
                sigma2_pe = pm.Deterministic("sigma2_pe", share * rest)
                rest = (1 - share) * rest
            sigma2_e = pm.Deterministic("sigma2_e", rest)
            sigma2_k = pm.Deterministic(self.kernel_variance, h2 * total / c)
        else:
            sigma2_k = self._create_prior(priors, self.kernel_variance)
            if self.permanent_environment:
                sigma2_pe = self._create_prior(priors, "sigma2_pe")
            sigma2_e = self._create_prior(priors, "sigma2_e")
            other = sigma2_e if sigma2_pe is None else sigma2_pe + sigma2_e
            pm.Deterministic("h2", c * sigma2_k / (c * sigma2_k + other))
        if self.permanent_environment:
            pm.Deterministic("repeatability", (c * sigma2_k + sigma2_pe) / (c * sigma2_k + sigma2_pe + sigma2_e))
        if self.name == "mblup":
            pm.Deterministic("sigma2_g_equiv", c * sigma2_k)
        return sigma2_k, sigma2_pe, sigma2_e

    @property
    def _samples_excess(self) -> bool:
        """Whether NUTS samples the residual excess (marginal form, ``pe_path == "augmented"``)."""
        return self.form == "marginal" and self.pe_path == "augmented"

    def _result_class(self):
        from ..results.fit import BLUPFit

        return BLUPFit

    @property
    def parameter_names(self) -> list[str]:
        names = ["h2", "repeatability"] if self.permanent_environment else ["h2"]
        names.append(self.kernel_variance)
        if self.name == "mblup":
            names.append("sigma2_g_equiv")
        if self.permanent_environment:
            names.append("sigma2_pe")
        names += ["sigma2_e", "mu"]
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
        target_accept: float | None = None,
        genetic_value_draws: bool = False,
        thin: int = 1,
        nuts_sampler: str | None = None,
    ):
        """Fit by NUTS (nutpie when installed, else PyMC's) or MAP, and add genetic values.

        Parameters
        ----------
        method : {"nuts", "map"}
            ``"map"`` maximises the posterior density with ``pymc.find_MAP``; genetic values are
            then the conditional mean and sd of ``g | y`` at the MAP variances.
        chains, draws, tune, seed, cores, progressbar
            As in ``pymc.sample``.
        target_accept : float, optional
            NUTS's target acceptance rate; raise it (e.g. 0.95) if a fit reports divergences, as the
            latent form can when h2 is near 1. By default 0.9 (``default_target_accept``): the posterior
            of h2 near 0, a residual excess (``pe_path == "augmented"``) and a marker set whose variance
            is near zero all give the posterior a geometry that needs smaller steps than PyMC's 0.8.
        genetic_value_draws : bool
            Also store full draws of ``g`` (marginal form; every ``thin``-th draw) in the posterior.
        thin : int
            Thinning of those draws.
        nuts_sampler : {None, "pymc", "nutpie", "numpyro", "blackjax"}
            The NUTS implementation; None: nutpie if installed, else PyMC's. ``"numpyro"`` and
            ``"blackjax"`` run NUTS on JAX (``pip install 'bayesblup[jax]'``; a GPU needs a CUDA jaxlib)
            for the latent forms and the single-kernel marginal form, not for the marginal form of
            several marker sets (:mod:`bayesblup.inference.samplers`, docs/jax.md).

        Returns
        -------
        BLUPFit
        """
        import pymc as pm

        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
        for name, value in {"chains": chains, "draws": draws, "thin": thin}.items():
            if int(value) < 1:
                raise InputError(f"{name} must be at least 1, got {value}.")
        if target_accept is None:
            target_accept = self.default_target_accept
        if not 0 < target_accept < 1:
            raise InputError(f"target_accept must lie in (0, 1), got {target_accept}.")
        if tune < 0:
            raise InputError(f"tune must be >= 0, got {tune}.")
        check_nuts_sampler(self, nuts_sampler, method)
        model = self.model
        t0 = time.perf_counter()
        if method == "nuts":
            choice = choose_nuts(self, model, nuts_sampler, chains=chains, progressbar=progressbar)
            sampler = choice.sampler
            compiled = "per fit"
            if sampler == "pymc" and self.reusable:  # a compiled model shared by fits of this structure
                from ..inference.compiled import sample as sample_compiled

                datatree, reused = sample_compiled(
                    self, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, progressbar=progressbar,
                    target_accept=target_accept,
                )  # fmt: skip
                compiled = "reused" if reused else "new"
            else:
                with warnings.catch_warnings(), choice.errors():
                    # PyMC labels its dense mass-matrix adaptation experimental; the multi-set models use it on purpose.
                    warnings.filterwarnings("ignore", message="QuadPotentialFullAdapt is an experimental")
                    datatree = pm.sample(
                        draws=draws,
                        tune=tune,
                        chains=chains,
                        cores=cores,
                        random_seed=seed,
                        target_accept=target_accept,
                        model=model,
                        compute_convergence_checks=False,  # our own diagnostics report them
                        **choice.kwargs,
                    )
        else:
            sampler = "find_MAP"
            datatree = pm.find_MAP(
                model=model, progressbar=progressbar, jitter=False, return_inferencedata=True, random_seed=seed
            )
        self.timings["sampling_s"] = time.perf_counter() - t0
        # PyMC's own clock of the draw loop (the JAX samplers keep it on the posterior, and it includes their
        # XLA compilation); the rest of sampling_s is compilation and NUTS initialisation
        for group in ("sample_stats", "posterior") if method == "nuts" else ():
            node = datatree.children.get(group)  # PyMC's mock sampler (tests) writes no sample_stats
            if node is not None and "sampling_time" in node.attrs:
                self.timings["draws_s"] = float(node.attrs["sampling_time"])
                break
        settings = {"form": self.form, "seed": seed}
        if method == "nuts":
            settings |= {"chains": chains, "draws": draws, "tune": tune, "target_accept": target_accept}
            settings |= choice.settings | {"compiled": compiled}
        return self._result_class().from_datatree(
            self,
            datatree,
            method=method,
            sampler=sampler,
            genetic_value_draws=genetic_value_draws,
            thin=thin,
            **settings,
        )
