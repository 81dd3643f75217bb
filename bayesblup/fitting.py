"""Models that fit themselves: ``GBLUP``, ``MBLUP``, ``MultiGBLUP``, ``MultiMBLUP``.

Each is the one model of :mod:`bayesblup.models` over its kernels (a relationship G, marker effects
on W, or one of either per marker set), plus :meth:`BLUPModel.fit`, which samples the ``pm.Model``
you hold (:attr:`~bayesblup.models.model.BLUPModel.model`), with whatever you added to it, and turns
the draws into a :class:`~bayesblup.BLUPFit` (genetic values, marker effects, tables, diagnostics).

This module sits above :mod:`bayesblup.results` in the layers: the model layer builds PyMC models
and knows nothing of inference or results; fitting brings the three together.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from .errors import InputError
from .genotypes.relationship import Relationship
from .genotypes.scaling import GenotypeMatrix
from .inference.samplers import chain_threads, check_nuts_sampler, choose_nuts, default_cores
from .kernels import MarkerKernel, RelationshipKernel
from .linalg.spectral import DEFAULT_EIGEN_RTOL
from .models.model import METHODS
from .models.model import BLUPModel as _Model
from .phenotypes import Records
from .results.fit import BLUPFit

__all__ = ["GBLUP", "MBLUP", "BLUPModel", "MultiGBLUP", "MultiMBLUP"]


class BLUPModel(_Model):
    """One model over a list of kernels that can fit itself (see :class:`bayesblup.models.model.BLUPModel`).

    Parameters
    ----------
    y : pandas.Series or Records
        Records indexed by individual ID.
    kernels : list or dict
        Relationship (G), GenotypeMatrix (W) or Kernel objects; a dict names them (marker sets).
    **options
        ``form``, ``prior``, ``eigen_rtol``, ``fixed``, ``weights``, ``permanent_environment``,
        ``repeated``, ``path``, ``family``: as for :class:`GBLUP` and :class:`MultiGBLUP`.
    """

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
        log_likelihood: bool | None = None,
    ) -> BLUPFit:
        """Fit :attr:`model` (the ``pm.Model`` you hold, extensions included) by NUTS, MAP or quadrature.

        Parameters
        ----------
        method : {"nuts", "map", "quadrature"}
            ``"quadrature"`` integrates the posterior of the two variance components of a one-kernel Gaussian
            model (G-BLUP or M-BLUP, marginal form; fixed effects, weights and repeated records allowed, not a
            permanent environment nor a model you extended) numerically, with mu and beta integrated out exactly
            (:mod:`bayesblup.inference.quadrature`): the summary's moments and quantiles are exact to about 1e-6 of
            each sd, the posterior means of the genetic values and marker effects exact, and ``chains x draws``
            independent draws serve everything else; no PyMC sampling, no compilation. ``"map"`` maximises the
            posterior density with ``pymc.find_MAP``; genetic values are then the conditional mean and sd of
            ``g | y`` at the MAP variances. For a binary or ordinal
            trait (``family``) it is the Laplace approximation's marginal mode
            (:mod:`bayesblup.inference.laplace`): g integrated out by Laplace's method, the hyperparameters
            (h2, mu or the thresholds, beta) at the mode of their marginal posterior, and genetic values
            with Laplace's mean and sd at that mode (the joint mode over g and its variance is degenerate:
            h2 goes to 1). Not for a model you extended.
        chains, draws, tune, seed, progressbar
            As in ``pymc.sample``; quadrature draws ``chains x draws`` independent points (seeded) and has no tuning.
        cores : int, optional
            Processes to run PyMC's chains in; by default one per chain up to the CPUs this process may
            use (:func:`bayesblup.inference.samplers.default_cores`: PyMC's own default counts half the
            CPUs, taking every second one for a hyper-thread, and on a 2-core machine ran the chains one
            after another). The draws do not depend on it.
        target_accept : float, optional
            NUTS's target acceptance rate; raise it (e.g. 0.95) if a fit reports divergences, as the
            latent form can when h2 is near 1. By default 0.9 (``default_target_accept``): the posterior
            of h2 near 0, a residual excess (``pe_path == "augmented"``) and a marker set whose variance
            is near zero all give the posterior a geometry that needs smaller steps than PyMC's 0.8. Binary and
            ordinal traits: 0.8 (``threshold_target_accept``; each gradient costs O(n^2)).
        genetic_value_draws : bool
            Also store full draws of ``g`` (single-kernel marginal form; every ``thin``-th draw).
        thin : int
            Thinning of those draws.
        nuts_sampler : {None, "pymc", "nutpie", "numpyro", "blackjax"}
            The NUTS implementation; None: PyMC's (nutpie only when named: it compiles with Numba at every fit,
            which pays only for long latent fits; :mod:`bayesblup.inference.samplers`). ``"numpyro"`` and
            ``"blackjax"`` run NUTS on JAX (``pip install 'bayesblup[jax]'``; a GPU needs a CUDA jaxlib)
            for the latent forms and the single-kernel marginal form, not for the marginal form of
            several kernels (:mod:`bayesblup.inference.samplers`, docs/jax.md).
        log_likelihood : bool, optional
            Add the DataTree's ``log_likelihood`` group (per record and draw) for ``az.loo`` and ``az.compare``
            (PyMC's ``idata_kwargs={"log_likelihood": True}``): in the marginal form ``log p(y_i | y_-i, theta)``,
            each record given all others, in the latent form ``log p(y_i | g, theta)``
            (:mod:`bayesblup.results.loo`). None (the default): where it is cheap (at most
            ``LOG_LIKELIHOOD_FLOPS`` operations and ``LOG_LIKELIHOOD_ENTRIES`` numbers; every one-kernel model of a
            few thousand records), else ``fit.settings["log_likelihood_note"]`` says why not and
            :meth:`~bayesblup.BLUPFit.compute_log_likelihood` adds it later. Not for several traits nor MAP.

        Returns
        -------
        BLUPFit

        Notes
        -----
        Variables or potentials you added to :attr:`model` are sampled with it and appear in the
        posterior. In the marginal form g is integrated out of the likelihood and your additions
        cannot involve it, so the genetic values stay exact given each draw of the parameters; the
        fit's notes name the additions.
        """
        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
        for name, value in {"chains": chains, "draws": draws, "thin": thin}.items():
            if int(value) < 1:
                raise InputError(f"{name} must be at least 1, got {value}.")
        if target_accept is None:
            target_accept = self.threshold_target_accept if self.threshold else self.default_target_accept
        if not 0 < target_accept < 1:
            raise InputError(f"target_accept must lie in (0, 1), got {target_accept}.")
        if tune < 0:
            raise InputError(f"tune must be >= 0, got {tune}.")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise InputError(f"seed must be an integer >= 0 (NumPy's seeds are non-negative), got {seed!r}.")
        if cores is not None and int(cores) < 1:
            raise InputError(f"cores must be at least 1, got {cores}.")
        check_nuts_sampler(self, nuts_sampler, method)
        if log_likelihood:  # refused before any sampling where it is not available
            from .results.loo import refuse_pointwise

            refuse_pointwise(self, method)
        seed_drawn = seed is None
        if seed_drawn:  # drawn here and recorded in the fit's settings, so that every fit can be repeated exactly
            seed = int(np.random.default_rng().integers(2**31 - 1))
        if method == "map" and self.threshold and self.extensions:
            # the Laplace mode integrates g out of the model bayesblup built, not out of the pm.Model you extended
            raise InputError(
                f"method='map' for family={self.family!r} is the Laplace approximation of the model as bayesblup built "
                f"it and would not see what you added ({', '.join(self.extensions)}): use method='nuts', which samples "
                "the extended model."
            )
        if method == "map" and self.multi_trait and not self.single and self.form == "marginal":
            # the explicit kernels' effects and their covariance have a joint mode at zero variance (as any
            # latent form's), not at the marginal mode of the variances
            raise InputError(
                "method='map' is not available for several traits with several kernels: their explicit effects make "
                "the joint mode degenerate (a kernel's variance collapses to zero). Use method='nuts'."
            )
        if method == "map" and self.form == "latent" and not self.threshold:
            # measured on wheat y1: h2 = 1.000, sigma2_e = 0.0000 (g fits the records exactly as sigma2_e -> 0)
            raise InputError(
                "method='map' with form='latent' would find the joint mode over g and the variances, which is "
                "degenerate (h2 -> 1, sigma2_e -> 0). Use form='marginal' (the default; --form marginal), whose mode "
                "is that of the variance components with g integrated out, or method='nuts'."
            )
        if method == "quadrature":
            from .inference.quadrature import check_quadrature

            check_quadrature(self)  # one kernel, one Gaussian trait, two variance components: refused before any work
        if genetic_value_draws and not self.single:
            raise InputError(
                "genetic_value_draws is not available for several marker sets; the fit reports each set's and the "
                "total genetic values with their sd."
            )
        if method == "quadrature":
            fit = self._fit_quadrature(chains=chains, draws=draws, seed=seed, genetic_value_draws=genetic_value_draws,
                                       thin=thin, log_likelihood=log_likelihood)  # fmt: skip
            fit.settings["seed_drawn"] = seed_drawn
            return fit
        import pymc as pm

        model = self.model
        t0 = time.perf_counter()
        if cores is None:
            cores = default_cores(chains)
        if method == "nuts":
            choice = choose_nuts(self, model, nuts_sampler, chains=chains, progressbar=progressbar)
            sampler = choice.sampler
            compiled = "per fit"
            if sampler == "pymc" and self.reusable:  # a compiled model shared by fits of this structure
                from .inference.compiled import sample as sample_compiled

                with chain_threads(min(cores, chains)):
                    datatree, reused = sample_compiled(
                        model, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, progressbar=progressbar,
                        target_accept=target_accept, init=self.nuts_init,
                    )  # fmt: skip
                compiled = "reused" if reused else "new"
            else:
                kwargs = choice.kwargs | {"target_accept": target_accept}
                # PyMC's chains in worker processes share the CPUs' BLAS threads out (chain_threads)
                processes = min(cores, chains) if sampler == "pymc" else 1
                with warnings.catch_warnings(), choice.errors(), chain_threads(processes):
                    # PyMC labels its dense mass-matrix adaptation experimental; several kernels use it on purpose.
                    warnings.filterwarnings("ignore", message="QuadPotentialFullAdapt is an experimental")
                    if sampler == "pymc" and self.gibbs_missing:
                        from .inference.missing import gibbs_sample_kwargs

                        # An exact Gibbs draw of the missing records, NUTS on the rest (inference.missing); the
                        # steps are built there, so pm.sample takes neither init nor target_accept
                        kwargs = {k: v for k, v in kwargs.items() if k not in ("init", "target_accept")}
                        kwargs |= gibbs_sample_kwargs(
                            self, model, chains=chains, seed=seed, target_accept=target_accept
                        )  # fmt: skip
                    datatree = pm.sample(
                        draws=draws,
                        tune=tune,
                        chains=chains,
                        cores=cores,
                        random_seed=seed,
                        model=model,
                        compute_convergence_checks=False,  # our own diagnostics report them
                        **kwargs,
                    )
        elif self.threshold:
            # the joint mode over g and its variance is degenerate (h2 -> 1): the marginal mode, g integrated out by
            # Laplace's method (bayesblup.inference.laplace)
            from .inference.laplace import ThresholdLaplace, laplace_datatree

            sampler = "laplace"
            laplace = ThresholdLaplace(self).fit()
            datatree = laplace_datatree(self, laplace)
            self.timings |= {f"laplace_{k}": v for k, v in laplace.seconds.items()}
        else:
            sampler = "find_MAP"
            datatree = pm.find_MAP(
                model=model, progressbar=progressbar, jitter=False, return_inferencedata=True, random_seed=seed
            )
        self.timings["sampling_s"] = time.perf_counter() - t0
        if method == "nuts":
            # On Ctrl-C PyMC stops the chains and returns the draws so far; a fit of fewer draws than asked for
            # is not the fit asked for, so the interrupt goes on (the command line exits 130, writing nothing)
            posterior = datatree.children.get("posterior")
            got = 0 if posterior is None else int(posterior.sizes.get("draw", 0))
            if got < draws:
                raise KeyboardInterrupt(f"sampling interrupted after {got} of {draws} draws")
        # PyMC's own clock of the draw loop (the JAX samplers keep it on the posterior, and it includes their
        # XLA compilation); the rest of sampling_s is compilation and NUTS initialisation
        for group in ("sample_stats", "posterior") if method == "nuts" else ():
            node = datatree.children.get(group)  # PyMC's mock sampler (tests) writes no sample_stats
            if node is not None and "sampling_time" in node.attrs:
                self.timings["draws_s"] = float(node.attrs["sampling_time"])
                break
        settings = {"form": self.form, "seed": seed, "seed_drawn": seed_drawn}
        if method == "nuts":
            settings |= {"chains": chains, "draws": draws, "tune": tune, "target_accept": target_accept, "cores": cores}
            settings |= choice.settings | {"compiled": compiled}
            if sampler == "pymc" and self.gibbs_missing:
                settings["missing_records"] = "exact Gibbs draw (bayesblup.inference.missing)"
        if sampler == "laplace":
            settings["laplace"] = {
                "approximation": "Laplace: marginal mode of the hyperparameters, g integrated out",
                "optimizer": "L-BFGS-B, forward differences",
                "converged": laplace.converged,
                "evaluations": laplace.evaluations,
                "newton_iterations": laplace.newton_iterations,
                "log_marginal": laplace.mode.log_marginal,
            }
        if self.extensions:
            settings["extensions"] = self.extensions
        return BLUPFit.from_datatree(
            self,
            datatree,
            method=method,
            sampler=sampler,
            genetic_value_draws=genetic_value_draws,
            thin=thin,
            log_likelihood=log_likelihood,
            **settings,
        )

    def _fit_quadrature(
        self, *, chains: int, draws: int, seed, genetic_value_draws: bool, thin: int, log_likelihood: bool | None = None
    ) -> BLUPFit:
        """``fit(method="quadrature")``: the grid, its summary and exact means, and independent draws."""
        from .inference.quadrature import quadrature, quadrature_datatree, quadrature_draws

        self.spectral_data  # noqa: B018 - the eigendecomposition and rotation, timed apart (eigendecomposition_s)
        t0 = time.perf_counter()
        result = quadrature(self)
        t1 = time.perf_counter()
        posterior = quadrature_draws(self, result, chains=chains, draws=draws, seed=seed)
        datatree = quadrature_datatree(self, result, posterior)
        t2 = time.perf_counter()
        # sampling_s: what NUTS's compilation and draws take, here the grid and the draws
        self.timings |= {"quadrature_s": t1 - t0, "quadrature_draws_s": t2 - t1, "sampling_s": t2 - t0}
        self.prior_label = self.priors[0]  # as a build would set it (plots' titles); no pm.Model is needed
        settings = {"form": self.form, "seed": seed, "chains": chains, "draws": draws, "quadrature": result.settings()}
        return BLUPFit.from_datatree(
            self, datatree, method="quadrature", sampler="quadrature", genetic_value_draws=genetic_value_draws,
            thin=thin, log_likelihood=log_likelihood, **settings,
        )  # fmt: skip


class GBLUP(BLUPModel):
    """G-BLUP as a PyMC model: ``y = mu + g + e``, ``g ~ N(0, G sigma2_g)``, ``e ~ N(0, I sigma2_e)``.

    Parameters
    ----------
    y : pandas.Series, pandas.DataFrame or Records
        Records indexed by individual ID (NA = no record), or records already matched. A DataFrame of
        several traits (one column each, NaN where a record is missing) fits them jointly, with genetic
        and residual correlations (:mod:`bayesblup.models.multitrait`); its priors are ``"default"``
        (per-trait h2, LKJ correlations), ``"bglr"`` (BGLR Multitrait's inverse Wishart priors) or a dict
        (:func:`bayesblup.models.priors.resolve_multitrait_priors`).
    relationship : Relationship or GenotypeMatrix
        G with its IDs (from :func:`bayesblup.genomic_relationship` or :func:`bayesblup.read_relationship`),
        or G's factor W (from :func:`bayesblup.genotype_matrix`; ``G = W W' / denominator``, never formed on
        the low-rank path). Every phenotyped individual must be in it.
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
    family : {"gaussian", "binary", "ordinal"}
        The likelihood: Gaussian records, or the threshold (probit liability) model of a binary or ordinal
        trait (:mod:`bayesblup.models.threshold`): g sampled non-centred in G's eigenbasis, h2 on the
        liability scale (``h2_observed`` on the observed scale for a binary trait), thresholds.
    prevalence : float, optional
        A binary trait's population prevalence, for ``h2_observed_population``.
    path : {"auto", "low-rank", "dense"}
        Given W with fewer markers than individuals with a record, ``"auto"`` takes the low-rank path (the
        m x m ``W'W`` decomposed, no n x n matrix; :mod:`bayesblup.models.model`); ``"dense"`` forms G and
        eigendecomposes it. The fit records which (``describe()["path"]``).

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

    kernel_variance = "sigma2_g"

    def __init__(
        self,
        y: pd.Series | Records,
        relationship: Relationship | GenotypeMatrix,
        *,
        form: str | None = None,
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
        permanent_environment: bool = False,
        repeated: bool = False,
        family: str = "gaussian",
        prevalence: float | None = None,
        path: str = "auto",
    ):
        super().__init__(
            y, [RelationshipKernel(relationship)], form=form, prior=prior, eigen_rtol=eigen_rtol, fixed=fixed,
            weights=weights, permanent_environment=permanent_environment, repeated=repeated, family=family,
            prevalence=prevalence, path=path,
        )  # fmt: skip

    @property
    def relationship(self) -> Relationship:
        return self.kernels[0].relationship


class MBLUP(BLUPModel):
    """M-BLUP (ridge regression on markers, BGLR's BRR): ``y = mu + W b + e``, ``b ~ N(0, I sigma2_b)``.

    The marginal form eigendecomposes ``WW'`` (n x n), never the n x m W. It carries the
    Deterministic ``sigma2_g_equiv = c sigma2_b`` with ``c`` the denominator of ``G = WW'/c``
    (m for the standardised scalings, nu_p for ``centered``): with that G, G-BLUP is the same model
    with ``sigma2_g = sigma2_g_equiv`` (eq 7 of the lecture notes), and ``h2`` uses it.

    Parameters
    ----------
    y : pandas.Series, pandas.DataFrame or Records
        Records indexed by individual ID (NA = no record); a DataFrame of several traits fits them
        jointly, with ``Sigma_g = c Sigma_b`` (as for :class:`~bayesblup.GBLUP`).
    genotypes : GenotypeMatrix
        W with its IDs and scaling, from :func:`bayesblup.genotype_matrix`.
    form, prior, eigen_rtol, fixed, weights, permanent_environment, repeated, family, prevalence, path
        As for :class:`~bayesblup.GBLUP` (with fewer markers than individuals, ``path="auto"`` is low-rank).
    """

    kernel_variance = "sigma2_b"

    def __init__(
        self,
        y: pd.Series | Records,
        genotypes: GenotypeMatrix,
        *,
        form: str | None = None,
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
        permanent_environment: bool = False,
        repeated: bool = False,
        family: str = "gaussian",
        prevalence: float | None = None,
        path: str = "auto",
    ):
        super().__init__(
            y, [MarkerKernel(genotypes)], form=form, prior=prior, eigen_rtol=eigen_rtol, fixed=fixed,
            weights=weights, permanent_environment=permanent_environment, repeated=repeated, family=family,
            prevalence=prevalence, path=path,
        )  # fmt: skip

    @property
    def genotypes(self) -> GenotypeMatrix:
        return self.kernels[0].genotypes

    @property
    def W(self):
        """W of the individuals with a record, in record order."""
        return self.kernels[0].W


def _sets(sources: dict, kind: type, what: str, helper: str) -> dict:
    if not isinstance(sources, dict) or not all(isinstance(v, kind) for v in sources.values()):
        raise InputError(f"{what} must be {{set: {kind.__name__}}}, e.g. from bayesblup.{helper}.")
    if len(sources) < 2:
        raise InputError(f"several marker sets need at least two; got {len(sources)}.")
    return sources


class MultiGBLUP(BLUPModel):
    """G-BLUP with one relationship matrix per marker set (GFBLUP for a feature set and the rest).

    ``y = mu + sum_k g_k + e`` with ``g_k ~ N(0, G_k sigma2_g_<set>)``; the marginal form takes the
    Woodbury or the dense path (:mod:`bayesblup.models.model`).

    Parameters
    ----------
    y : pandas.Series or Records
        Records indexed by individual ID (NA = no record).
    relationships : dict of str to Relationship
        ``{set: G_k}`` over the same individuals, from :func:`bayesblup.relationships_by_set`.
    path : {"auto", "woodbury", "dense"}
        The marginal form's exact path; ``"auto"`` picks Woodbury for one large set plus small ones.
    form, prior, eigen_rtol, fixed, weights, permanent_environment, repeated, family
        As for :class:`~bayesblup.GBLUP`; the prior is per set (:mod:`bayesblup.models.priors`).

    Examples
    --------
    >>> import bayesblup as bb
    >>> wheat = bb.datasets.load_wheat()
    >>> geno, _ = bb.quality_control(wheat.genotypes)
    >>> G = bb.relationships_by_set(geno, {"first100": geno.markers[:100]})
    >>> model = bb.MultiGBLUP(wheat.phenotypes["y1"], G, prior="bglr")
    >>> model.path, model.background
    ('woodbury', 'rest')
    """

    kernel_variance = "sigma2_g"

    def __init__(
        self,
        y: pd.Series | Records,
        relationships: dict[str, Relationship],
        *,
        form: str | None = None,
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
        permanent_environment: bool = False,
        repeated: bool = False,
        path: str = "auto",
        family: str = "gaussian",
        prevalence: float | None = None,
    ):
        relationships = _sets(relationships, Relationship, "relationships", "relationships_by_set")
        super().__init__(
            y, relationships, form=form, prior=prior, eigen_rtol=eigen_rtol, fixed=fixed, weights=weights,
            permanent_environment=permanent_environment, repeated=repeated, path=path, family=family,
            prevalence=prevalence,
        )  # fmt: skip
        self.relationships = relationships


class MultiMBLUP(BLUPModel):
    """M-BLUP with one marker matrix per set: ``y = mu + sum_k W_k b_k + e``, ``b_k ~ N(0, I sigma2_b_<set>)``.

    Parameters
    ----------
    y : pandas.Series or Records
        Records indexed by individual ID (NA = no record).
    genotypes : dict of str to GenotypeMatrix
        ``{set: W_k}`` over the same individuals, from :func:`bayesblup.genotype_matrices_by_set`.
    path, form, prior, eigen_rtol, fixed, weights, permanent_environment, repeated, family
        As for :class:`MultiGBLUP`.
    """

    kernel_variance = "sigma2_b"

    def __init__(
        self,
        y: pd.Series | Records,
        genotypes: dict[str, GenotypeMatrix],
        *,
        form: str | None = None,
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
        permanent_environment: bool = False,
        repeated: bool = False,
        path: str = "auto",
        family: str = "gaussian",
        prevalence: float | None = None,
    ):
        genotypes = _sets(genotypes, GenotypeMatrix, "genotypes", "genotype_matrices_by_set")
        super().__init__(
            y, genotypes, form=form, prior=prior, eigen_rtol=eigen_rtol, fixed=fixed, weights=weights,
            permanent_environment=permanent_environment, repeated=repeated, path=path, family=family,
            prevalence=prevalence,
        )  # fmt: skip
        self.genotypes = genotypes

    @property
    def W(self) -> dict:
        """``{set: W_k}`` over every individual (records first)."""
        return {k.name: k.W_all for k in self.kernels}
