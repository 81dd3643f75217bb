"""A fitted model: PyMC's DataTree plus genetic values, a parameter table, diagnostics and outputs.

One class for every model: one kernel or several, G-BLUP or M-BLUP. The DataTree gains two groups:
``genetic_values`` (mean, sd, pev, reliability, phenotyped; dim ``individual``; with several kernels
also ``mean_<set>`` and ``sd_<set>``) and, for marker kernels, ``marker_effects`` (mean, sd; dim
``marker``; with several kernels also ``set``); with ``genetic_value_draws=True`` also
``genetic_value_draws`` (g per kept draw). Intervals are the central 90% (q05, q95). With several
kernels the summary holds ``h2``, ``h2_<set>``, the sets' variances and ``enrichment_<set>``, the
genetic variance per marker of a set over that of the other sets pooled; :meth:`BLUPFit.enrichment`
gives the posterior probability that a set explains more variance per marker than the rest.
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..inference.posterior import Moments, multitrait_moments, posterior_moments, set_moments
from ..linalg.spectral import ThinSpectral
from ..names import INDIVIDUAL, MARKER, MU, TRAIT
from .draws import beta_draws as _beta
from .draws import flat_draws as _flat
from .draws import theta_draws as _theta

__all__ = ["THRESHOLDS", "BLUPFit"]

#: Diagnostic thresholds: R-hat as Vehtari et al. (2021) recommend, and 100 bulk ESS per chain.
#: Where a diagnostic becomes a warning: R-hat above 1.01, bulk or tail ESS below 400 (Vehtari et al. 2021).
THRESHOLDS = {"r_hat": 1.01, "ess": 400}


def _mean_sd(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd over draws (rows); sd 0 for a single draw (MAP)."""
    return draws.mean(0), draws.std(0, ddof=1) if draws.shape[0] > 1 else np.zeros(draws.shape[1])


#: A relationship matrix whose mean diagonal is further than this from 1 puts h2 on another scale than the genetic
#: share of the variance: noted in the fit's diagnostics (and by the command line as the matrix is read).
DIAGONAL_NOTE = 0.1


def _latent_moments(post, name: str, columns: slice = slice(None)) -> Moments:
    x = np.asarray(post[name].values, dtype=np.float64)
    x = x.reshape(-1, x.shape[-1])[:, columns]
    return Moments(*_mean_sd(x))


def _genetic_moments(model, post, *, seed, keep):
    """``(total, {kernel: g_k} (several kernels), {kernel: b_k} (marker kernels))`` of the fitted model."""
    names = model.set_names
    markers = {}
    if model.form == "latent":
        total = _latent_moments(post, "g")
        per_kernel = {} if model.single else {name: _latent_moments(post, f"g_{name}") for name in names}
        start = 0
        for k in model.kernels:
            if k.markers is not None:  # one vector b over every marker kernel, in kernel order
                markers[k.name] = _latent_moments(post, "b", slice(start, start + k.n_markers))
                start += k.n_markers
        return total, per_kernel, markers
    if model.single:
        theta = _theta(post, model)
        g, extra = posterior_moments(
            model.spectral_data,
            theta.pop("mu"),
            theta.pop("sigma2_k"),
            theta.pop("sigma2_e"),
            **theta,
            targets=model.targets,
            keep_draws=keep,
            seed=seed,
        )
        others = extra.get("unphenotyped")
        total = Moments(
            np.concatenate([g.mean, others.mean if others else []]),
            np.concatenate([g.sd, others.sd if others else []]),
            g.draws,
        )
        if "markers" in extra:
            markers[names[0]] = extra["markers"]
        return total, {}, markers
    per_kernel, total, markers = set_moments(
        model.kernels_data,
        _flat(post, "mu"),
        {k.name: _flat(post, k.variance_name) for k in model.kernels},
        _flat(post, "sigma2_e"),
        beta=_beta(post, model),
        sigma2_pe=_flat(post, "sigma2_pe") if model.permanent_environment else None,
        seed=seed,
    )
    return total, per_kernel, markers


def _case_probability(model, post, variance: np.ndarray | None = None) -> np.ndarray:
    """A binary trait's posterior probability of the case for every individual: ``E[Phi(mu + x'beta + g_i) | y]``.

    ``P(y_i = 1 | mu, beta, g) = Phi(mu + x_i'beta + g_i)`` (the residual is N(0, 1)), averaged over the draws;
    an individual without a record at the covariates' mean over the records. With ``variance`` (the Laplace mode's
    ``Var(g_i | y)``, one draw), ``Phi((mu + x_i'beta + m_i) / sqrt(1 + v_i))``: the expectation under
    ``g_i ~ N(m_i, v_i)``, not Phi at the mode.
    """
    from scipy.special import ndtr

    g = np.asarray(post["g"].values, dtype=np.float64)
    g = g.reshape(-1, g.shape[-1])  # (draws, every individual)
    eta = g + _flat(post, "mu")[:, None]
    beta = _beta(post, model)
    X = model.records.X
    if beta is not None:
        n_u = g.shape[1] - model.n
        rows = np.vstack([X, np.repeat(X.mean(axis=0, keepdims=True), n_u, axis=0)])
        eta = eta + beta @ rows.T
    if variance is not None:
        eta = eta / np.sqrt(1.0 + variance)[None, :]
    return ndtr(eta).mean(axis=0)


def _covariances(post, model) -> tuple[list[np.ndarray], np.ndarray]:
    """Draws of each kernel's ``Sigma_k`` and of ``Sigma_e``, (D, t, t), from the variances and correlations."""
    traits = model.traits
    t = len(traits)
    several = not model.single

    def matrix(variance: str, correlation: str) -> np.ndarray:
        D = _flat(post, f"{variance}_{traits[0]}").size
        S = np.empty((D, t, t))
        for j, trait in enumerate(traits):
            S[:, j, j] = _flat(post, f"{variance}_{trait}")
        for a, b in itertools.combinations(range(t), 2):
            r = _flat(post, f"{correlation}_{traits[a]}_{traits[b]}")
            S[:, a, b] = S[:, b, a] = r * np.sqrt(S[:, a, a] * S[:, b, b])
        return S

    S_k = []
    for k in model.kernels:
        name = f"_{k.name}" if several else ""
        S_k.append(matrix(f"sigma2_g{name}", f"r_g{name}") / k.c)
    return S_k, matrix("sigma2_e", "r_e")


def _explicit(post, model) -> dict[str, np.ndarray]:
    """Draws of the explicit kernels' genetic values ``g_<set>`` (D, every individual, t): several kernels."""
    if model.single:
        return {}
    t = len(model.traits)
    names = model.set_names if model.form == "latent" else [n for n in model.set_names if n != model.background]
    return {
        n: np.asarray(post[f"g_{n}"].values, dtype=np.float64).reshape(-1, model.individuals.size, t) for n in names
    }


def _multitrait_draws(model, post) -> dict:
    """Draws that :func:`multitrait_moments` conditions on: mu, Sigma_k, Sigma_e, B and the missing records.

    ``Sigma_k`` is the integrated kernel's (the background's with several kernels).
    """
    t = len(model.traits)
    S_k, S_e = _covariances(post, model)
    integrated = 0 if model.single else model.set_names.index(model.background)
    mu = np.asarray(post["mu"].values, dtype=np.float64).reshape(-1, t)
    out = {"mu": mu, "Sigma_k": S_k[integrated], "Sigma_e": S_e, "B": None, "missing": None}
    if model.records.X is not None:
        out["B"] = np.asarray(post["beta"].values, dtype=np.float64).reshape(-1, model.records.n_covariates, t)
    if "y_missing" in post:
        out["missing"] = np.asarray(post["y_missing"].values, dtype=np.float64).reshape(mu.shape[0], -1)
    return out


def _multitrait_target(model, post, M: np.ndarray, v: np.ndarray) -> list[Moments]:
    """Per trait, the moments of a target T with ``Cov(T_:,j, Y) = M Sigma_k`` (new individuals)."""
    draws = _multitrait_draws(model, post)
    _, extra = multitrait_moments(
        model.multitrait_data, draws.pop("mu"), draws.pop("Sigma_k"), draws.pop("Sigma_e"), **draws,
        targets={"target": (M, v)},
    )  # fmt: skip
    return extra["target"]


def _draw_moments(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd over the first axis (sd 0 from a single draw: MAP)."""
    sd = draws.std(0, ddof=1) if draws.shape[0] > 1 else np.zeros(draws.shape[1:])
    return draws.mean(0), sd


def _stack(moments: list[Moments]) -> tuple[np.ndarray, np.ndarray]:
    """Per-trait Moments to (len, t) mean and sd."""
    return np.column_stack([m.mean for m in moments]), np.column_stack([m.sd for m in moments])


def _multitrait_tables(model, datatree) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Genetic values (one row per individual and trait) and marker effects of a multi-trait fit.

    With several kernels the columns ``mean_<set>`` and ``sd_<set>`` give each kernel's part, as for one trait:
    the integrated kernel's from its conditional given each draw, the explicit ones' from their draws.
    """
    import xarray as xr

    post = datatree["posterior"]
    traits = list(model.traits)
    t = len(traits)
    n = model.n
    draws = _multitrait_draws(model, post)
    S_k, _ = _covariances(post, model)
    ids = model.individuals.astype(str)
    explicit = _explicit(post, model)
    per_kernel: dict[str, tuple[np.ndarray, np.ndarray]] = {name: _draw_moments(g) for name, g in explicit.items()}
    markers_by_kernel: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    several = not model.single
    for k in model.kernels:  # marker effects drawn by the sampler: the latent form, and explicit marker sets
        b_name = f"b_{k.name}" if several else "b"
        if k.markers is not None and b_name in post:
            b = np.asarray(post[b_name].values, dtype=np.float64).reshape(-1, k.n_markers, t)
            markers_by_kernel[k.name] = _draw_moments(b)
    if model.form == "latent":  # g is the sampler's draws
        g_draws = np.asarray(post["g"].values, dtype=np.float64).reshape(-1, ids.size, t)
        mean, sd = _draw_moments(g_draws)
    else:
        kernel = model.kernels[0] if model.single else model.kernel(model.background)
        targets = kernel.targets()
        offsets = None
        if explicit:
            total = sum(explicit.values())  # (D, every individual, t)
            offsets = {"g": total[:, :n]} | ({"unphenotyped": total[:, n:]} if "unphenotyped" in targets else {})
        g, extra = multitrait_moments(
            model.multitrait_data, draws.pop("mu"), draws.pop("Sigma_k"), draws.pop("Sigma_e"), **draws,
            targets=targets, offsets=offsets,
        )  # fmt: skip
        others = extra.get("unphenotyped")
        mean = np.column_stack([np.concatenate([g[j].mean, others[j].mean if others else []]) for j in range(t)])
        sd = np.column_stack([np.concatenate([g[j].sd, others[j].sd if others else []]) for j in range(t)])
        if explicit:
            own, own_u = extra["integrated"], extra.get("unphenotyped_integrated")
            per_kernel[kernel.name] = (
                np.column_stack([np.concatenate([own[j].mean, own_u[j].mean if own_u else []]) for j in range(t)]),
                np.column_stack([np.concatenate([own[j].sd, own_u[j].sd if own_u else []]) for j in range(t)]),
            )
        if "markers" in extra:
            markers_by_kernel[kernel.name] = _stack(extra["markers"])
    # reliability: 1 - PEV / prior variance, the prior variance sum_k K_k,ii Sigma_k,jj at the posterior means
    prior = sum(
        k.diagonal()[:, None] * np.diag(S.mean(axis=0))[None, :] for k, S in zip(model.kernels, S_k, strict=True)
    )
    pev = sd**2
    reliability = 1.0 - pev / prior
    observed = np.zeros((ids.size, t), dtype=bool)
    observed[:n] = model.records.observed
    columns = {"mean": mean, "sd": sd, "pev": pev, "reliability": reliability, "phenotyped": observed}
    if several:
        for name in model.set_names:
            columns[f"mean_{name}"], columns[f"sd_{name}"] = per_kernel[name]
    datatree["genetic_values"] = xr.DataTree(
        xr.Dataset({k: ((INDIVIDUAL, TRAIT), v) for k, v in columns.items()}, coords={INDIVIDUAL: ids, TRAIT: traits})
    )
    table = pd.DataFrame(
        {"id": np.repeat(ids, t), "trait": np.tile(traits, ids.size)} | {k: v.reshape(-1) for k, v in columns.items()}
    )
    markers = None
    kernels = [k for k in model.kernels if k.name in markers_by_kernel]
    if kernels:
        labels = np.concatenate([k.markers.astype(str) for k in kernels])
        b_mean = np.vstack([markers_by_kernel[k.name][0] for k in kernels])
        b_sd = np.vstack([markers_by_kernel[k.name][1] for k in kernels])
        data = {"mean": ((MARKER, TRAIT), b_mean), "sd": ((MARKER, TRAIT), b_sd)}
        frame = {"marker": np.repeat(labels, t), "trait": np.tile(traits, labels.size)}
        if several:
            sets = np.concatenate([np.full(k.n_markers, k.name, dtype=object) for k in kernels])
            data["set"] = (MARKER, sets.astype(str))
            frame["set"] = np.repeat(sets, t)
        datatree["marker_effects"] = xr.DataTree(xr.Dataset(data, coords={MARKER: labels, TRAIT: traits}))
        markers = pd.DataFrame(frame | {"mean": b_mean.reshape(-1), "sd": b_sd.reshape(-1)})
    return table, markers


@dataclass
class BLUPFit:
    """Result of :meth:`GBLUP.fit` (and of every model's ``fit``), or of :func:`bayesblup.load_fit`.

    Attributes
    ----------
    model : BLUPModel or None
        The model that was fitted (None for a fit loaded without its model).
    datatree : xarray.DataTree
        PyMC's result with the added groups.
    method, sampler : str
        ``"nuts"`` or ``"map"``, and what ran it (``"pymc"``, ``"nutpie"``, ``"find_MAP"``).
    genetic_values : pandas.DataFrame
        Columns ``id, mean, sd, pev, reliability, phenotyped``: the posterior of each individual's
        genetic value; with several kernels also ``mean_<set>`` and ``sd_<set>``.
    marker_effects : pandas.DataFrame or None
        Columns ``marker, mean, sd`` (M-BLUP; with several kernels also ``set``).
    timings : dict
        Seconds per phase.
    settings : dict
        How the fit ran (form, seed, chains, ...); ``extensions`` names what a user added to the model.
    stored : dict or None
        For a fit read back by :func:`bayesblup.load_fit`: its summary.json (and under ``"tables"``
        the further CSV files of the folder); its diagnostics and parameter names come from here,
        and ``model`` is None unless one was passed.
    """

    model: object
    datatree: object
    method: str
    sampler: str
    genetic_values: pd.DataFrame
    marker_effects: pd.DataFrame | None
    timings: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)  # summary and diagnostics: the draws never change
    stored: dict | None = field(default=None, repr=False)  # summary.json of a fit read back by load_fit

    @classmethod
    def from_datatree(
        cls, model, datatree, *, method, sampler, genetic_value_draws=False, thin=1, log_likelihood=None, **settings
    ):
        """Add genetic values (per kernel and in total) and marker effects to PyMC's result.

        ``settings`` are recorded in the fit (and summary.json); ``settings["seed"]`` also seeds
        the optional draws of g and the Matheron draws of several kernels. ``log_likelihood``: the
        ``observed_data`` and ``log_likelihood`` groups (:func:`bayesblup.results.loo.add_pointwise_groups`).
        """
        import xarray as xr

        from .loo import add_pointwise_groups

        t0 = time.perf_counter()
        if model.multi_trait:
            if genetic_value_draws:
                raise InputError("genetic_value_draws is not available for several traits yet.")
            genetic_values, marker_effects = _multitrait_tables(model, datatree)
            timings = dict(model.timings) | {"genetic_values_s": time.perf_counter() - t0}
            settings = settings | {"genetic_value_draws": False, "thin": thin}
            fit = cls(model, datatree, method, sampler, genetic_values, marker_effects, timings, settings)
            return add_pointwise_groups(fit, log_likelihood)
        post = datatree["posterior"]
        ids = model.individuals.astype(str)
        n_p = model.n
        keep = None
        if genetic_value_draws and model.form == "marginal":
            keep = np.zeros((post.sizes["chain"], post.sizes["draw"]), dtype=bool)
            keep[:, ::thin] = True
            keep = keep.reshape(-1)
        total, per_kernel, markers = _genetic_moments(model, post, seed=settings.get("seed"), keep=keep)
        laplace = datatree["laplace"] if "laplace" in datatree.children else None
        if laplace is not None:  # a threshold model's Laplace mode: g's mean at the mode, Laplace's sd there
            total = Moments(total.mean, np.asarray(laplace["g_sd"].values, dtype=np.float64))
            if "b_sd" in laplace:
                name = model.kernels[0].name
                markers[name] = Moments(markers[name].mean, np.asarray(laplace["b_sd"].values, dtype=np.float64))
        quadrature = datatree["quadrature"] if "quadrature" in datatree.children else None
        if quadrature is not None:  # the quadrature's exact posterior means; the sds from its independent draws
            total = Moments(np.asarray(quadrature["g_mean"].values, dtype=np.float64), total.sd, total.draws)
            if "b_mean" in quadrature:
                name = model.kernels[0].name
                markers[name] = Moments(np.asarray(quadrature["b_mean"].values, dtype=np.float64), markers[name].sd)
        if total.draws is not None:  # exact joint draws, for the individuals with a record
            draws = total.draws.reshape(post.sizes["chain"], -1, n_p)
            datatree["genetic_value_draws"] = xr.DataTree(
                xr.Dataset(
                    {"g": (("chain", "draw", INDIVIDUAL), draws)},
                    coords={"chain": post["chain"].values, "draw": post["draw"].values[::thin], INDIVIDUAL: ids[:n_p]},
                )
            )
        # PEV = posterior variance of g_i; reliability = 1 - PEV / prior variance, the prior variance
        # sum_k sigma2_k K_k,ii at the posterior means: the share of the prior variance the data removed.
        prior_var = sum(float(_flat(post, k.variance_name).mean()) * k.diagonal() for k in model.kernels)
        pev = total.sd**2
        with np.errstate(invalid="ignore", divide="ignore"):  # no genetic variance (a mode at 0): NaN, not a warning
            reliability = np.where(prior_var > 0, 1.0 - pev / prior_var, np.nan)
        columns = {
            "mean": total.mean,
            "sd": total.sd,
            "pev": pev,
            "reliability": reliability,
            "phenotyped": np.arange(len(ids)) < n_p,
        }
        for name, moments in per_kernel.items():
            columns[f"mean_{name}"] = moments.mean
            columns[f"sd_{name}"] = moments.sd
        if model.family == "binary":
            columns["probability"] = _case_probability(model, post, None if laplace is None else pev)
        datatree["genetic_values"] = xr.DataTree(
            xr.Dataset({k: (INDIVIDUAL, v) for k, v in columns.items()}, coords={INDIVIDUAL: ids})
        )
        genetic_values = pd.DataFrame({"id": ids} | columns)
        marker_effects = None
        if markers:
            kernels = [k for k in model.kernels if k.name in markers]
            labels = np.concatenate([k.markers.astype(str) for k in kernels])
            data = {
                "mean": np.concatenate([markers[k.name].mean for k in kernels]),
                "sd": np.concatenate([markers[k.name].sd for k in kernels]),
            }
            if not model.single:
                data = {"set": np.concatenate([np.full(k.n_markers, k.name, dtype=object) for k in kernels])} | data
            datatree["marker_effects"] = xr.DataTree(
                xr.Dataset(
                    {key: (MARKER, value.astype(str) if key == "set" else value) for key, value in data.items()},
                    coords={MARKER: labels},
                )
            )
            marker_effects = pd.DataFrame({"marker": labels} | data)
        timings = dict(model.timings) | {"genetic_values_s": time.perf_counter() - t0}
        settings = settings | {"genetic_value_draws": genetic_value_draws, "thin": thin}
        fit = cls(model, datatree, method, sampler, genetic_values, marker_effects, timings, settings)
        return add_pointwise_groups(fit, log_likelihood)

    def compute_log_likelihood(self):
        """Add the ``log_likelihood`` group (per record and draw) to :attr:`datatree`: ``az.loo``, ``az.compare``.

        The marginal form's is ``log p(y_i | y_-i, theta)``, each record given every other (g integrated out: the
        density PSIS-LOO needs for a model whose records are not independent given its parameters); the latent
        form's ``log p(y_i | g, theta)``. :mod:`bayesblup.results.loo` and docs/compare.md say more. ``fit()``
        computes it itself where it is cheap (``log_likelihood=None``). Returns the DataTree, as
        ``pymc.compute_log_likelihood`` returns its result.
        """
        from .loo import compute_log_likelihood

        return compute_log_likelihood(self)

    def sample_posterior_predictive(self, *, seed: int | None = None):
        """Add ``posterior_predictive``: replicated records per draw, on the records' scale (``az.plot_ppc_dist``).

        The marginal form draws ``y_rep ~ N(mu 1 + X beta, V)`` given each draw of the parameters (new genetic
        values and residuals); the latent form ``p(y | g, theta)`` with the posterior's g. ``seed``: by default the
        fit's. Returns the DataTree.
        """
        from .loo import sample_posterior_predictive

        return sample_posterior_predictive(self, seed=seed)

    def _require_model(self, what: str):
        if self.model is None:
            raise InputError(
                f"{what} needs the model: this fit was loaded from files; pass the model built on the same inputs, "
                "bayesblup.load_fit(path, model=bb.GBLUP(...))."
            )
        return self.model

    def top(self, n: int = 20, *, fraction: float = 0.10, candidates="all", draws: int = 1000, seed=None):
        """The n best candidates by posterior mean, with the probability that each is in the top ``fraction``.

        ``p_top`` is the share of joint posterior draws of the candidates' genetic values in which the individual is
        among the ``ceil(fraction x candidates)`` best (:mod:`bayesblup.results.selection`): exact draws of g given
        each of at most ``draws`` draws of the parameters (MAP: given the mode), so its Monte Carlo sd is at most
        ``0.5 / sqrt(D)`` for D independent draws. Not for several traits, nor the Laplace mode of a binary or
        ordinal trait; a fit loaded from files needs its model (``load_fit(path, model=...)``).

        Parameters
        ----------
        n : int
            Rows to return: the n candidates of highest posterior mean.
        fraction : float
            The top fraction, in (0, 1): 0.10 for the top 10%.
        candidates : {"all", "unphenotyped"} or list of str
            Every individual of the fit, those without a record (``phenotyped`` False), or these IDs.
        draws : int
            Parameter draws used at most (evenly spaced); with fewer, several draws of g at each, for ``draws`` in
            all.
        seed : int, optional
            Seed of the draws of g (the fit's seed when None).

        Returns
        -------
        pandas.DataFrame
            Columns ``rank, id, mean, sd, reliability, phenotyped, p_top``, by posterior mean, descending; ``attrs``
            holds ``fraction``, ``n_candidates``, ``n_top`` (the top's size), ``n_draws``, ``n_theta`` and
            ``mc_sd_max``.
        """
        from .selection import top_table

        return top_table(self, n, fraction=fraction, candidates=candidates, draws=draws, seed=seed)

    def _one_kernel(self, what: str):
        """The fit's one kernel, or a refusal that says why several kernels cannot do ``what``."""
        model = self._require_model(what)
        if not model.single:
            raise InputError(
                f"{what} is not available for several marker sets: it needs one cross-relationship per set and a "
                "joint draw of every set's effects for the new rows, which bayesblup does not compute yet. Include "
                "the new individuals in the genotypes without a record: their genetic values (per set and in total) "
                "are then in fit.genetic_values (phenotyped = False)."
            )
        return model.kernels[0]

    def predict(self, genotypes, *, training=None) -> pd.DataFrame:
        """Genetic values of individuals genotyped after the fit: posterior mean and sd.

        The new calls are put on the training scale (training allele frequencies, centring, scaling
        and imputation; :class:`~bayesblup.MarkerScaling`), and ``g_new`` follows from the
        cross-relationship with the fitted individuals, ``G_21 G_11^-1 g``, draw by draw (exactly;
        see :mod:`bayesblup.inference.posterior`).

        Parameters
        ----------
        genotypes : Genotypes
            The new individuals; they must cover every marker kept at training.
        training : Genotypes, optional
            For G-BLUP: the training genotypes (after QC), from which G was built; M-BLUP holds W.

        Returns
        -------
        pandas.DataFrame
            Columns ``id, mean, sd, pev, reliability`` (as ``genetic_values``; with several traits ``trait`` after
            ``id``; for a binary trait ``probability`` last).
        """
        kernel = self._one_kernel("predict")
        scaling, W_fit, divisor = kernel.training_scale(training)
        again = sorted(set(genotypes.ids) & set(self.model.individuals.astype(str)))
        if again:
            raise InputError(
                f"{len(again)} individuals to predict are already in the fit: {preview(again, 10)}; their genetic "
                "values are in fit.genetic_values."
            )
        W_new = scaling.transform_block(scaling.align(genotypes), slice(None))
        M, v = W_new @ W_fit.T / divisor, (W_new**2).sum(1) / divisor
        table = self._target_table("id", genotypes.ids.astype(str), M, v)
        return self._with_reliability(table, kernel, v)

    def _with_reliability(self, table: pd.DataFrame, kernel, v: np.ndarray) -> pd.DataFrame:
        """``pev`` and ``reliability`` beside a prediction's mean and sd, defined as for ``genetic_values``.

        PEV is the posterior variance; reliability ``1 - PEV / prior variance``, the prior variance ``sigma2_k v``
        at the posterior mean of the kernel's variance (per trait with several).
        """
        post = self.datatree["posterior"]
        table = table.copy()
        table["pev"] = table["sd"] ** 2
        if "trait" in table.columns:
            names = [f"{kernel.variance_name}_{t}" for t in table["trait"]]
            scale = np.array([float(_flat(post, n).mean()) if n in post else np.nan for n in names])
            prior = scale * np.repeat(v, len(self.model.traits))
        else:
            prior = float(_flat(post, kernel.variance_name).mean()) * v
        with np.errstate(invalid="ignore", divide="ignore"):
            table["reliability"] = np.where(prior > 0, 1.0 - table["pev"] / prior, np.nan)
        order = [c for c in table.columns if c not in ("pev", "reliability", "probability")]
        order += ["pev", "reliability"] + (["probability"] if "probability" in table.columns else [])
        return table[order]

    def back_solve_markers(self, training) -> pd.DataFrame:
        """Marker effects from a G-BLUP fit: posterior mean and sd of b, with ``g = W b``.

        With ``G = WW'/c`` (c = m for the standardised scalings, nu_p for ``centered``), G-BLUP is M-BLUP
        with ``b ~ N(0, I sigma2_g / c)``, so ``Cov(b, y) = sigma2_g W'/c`` and b follows exactly, draw
        by draw, as any other target (:mod:`bayesblup.inference.posterior`): the lecture notes' relation
        ``sigma2_b = sigma2_g / m``, put to work.

        Parameters
        ----------
        training : Genotypes
            The genotypes (after QC) from which G was built.

        Returns
        -------
        pandas.DataFrame
            Columns ``marker, mean, sd``, as M-BLUP's ``marker_effects``.
        """
        kernel = self._one_kernel("back_solve_markers")
        if kernel.markers is not None:
            raise InputError("back_solve_markers is for G-BLUP fits; an M-BLUP fit has them in fit.marker_effects.")
        scaling, W_fit, c = kernel.training_scale(training)
        M, v = W_fit.T / c, np.full(W_fit.shape[1], 1.0 / c)
        return self._target_table("marker", scaling.markers.astype(str), M, v)

    def _target_table(self, key: str, labels: np.ndarray, M: np.ndarray, v: np.ndarray) -> pd.DataFrame:
        """Mean and sd of a target (``Cov(T, y) = sigma2_k M``), one row per label (and per trait with several)."""
        if self.model.threshold:
            return self._threshold_target(key, labels, M, v)
        if not self.model.multi_trait:
            moments = self._target_moments(M, v)
            return pd.DataFrame({key: labels, "mean": moments.mean, "sd": moments.sd})
        per_trait = _multitrait_target(self.model, self.datatree["posterior"], M, v)
        traits = list(self.model.traits)
        return pd.DataFrame(
            {
                key: np.repeat(labels, len(traits)),
                "trait": np.tile(traits, labels.size),
                "mean": np.column_stack([m.mean for m in per_trait]).reshape(-1),
                "sd": np.column_stack([m.sd for m in per_trait]).reshape(-1),
            }
        )

    def _threshold_target(self, key: str, labels: np.ndarray, M: np.ndarray, v: np.ndarray) -> pd.DataFrame:
        """New individuals of a binary or ordinal trait, from the draws of g (the sampler's; no marginal form).

        With ``Cov(T, g) = sigma2_k M`` and ``Var(g) = sigma2_k K`` (the individuals with a record),
        ``T | g, sigma2_k ~ N(M K^+ g, sigma2_k (v - diag(M K^+ M')))``: its mean and variance per draw, combined by
        the laws of total expectation and variance. A binary trait adds ``probability``, ``E[Phi(mu + x'beta + T)]``
        with x at the covariates' mean, per draw ``Phi((mu + x'beta + m) / sqrt(1 + s^2))`` for T ~ N(m, s^2). The
        Laplace mode (``method="map"``) has one draw, g at the mode, and T's variance adds that of g under Laplace's
        approximation (:func:`bayesblup.inference.laplace.target_variance`).
        """
        from scipy.special import ndtr

        model = self.model
        post = self.datatree["posterior"]
        kernel = model.kernels[0]
        sp = model.spectral  # of K / c over the individuals with a record
        if isinstance(sp, ThinSpectral):  # the low-rank path: U of the r non-zero eigenvalues (n x r), whole here
            U, lam = sp.vectors(), kernel.c * sp.values
        else:
            keep = sp.values > 0
            U, lam = sp.vectors[:, keep], kernel.c * sp.values[keep]
        MUk = M @ U
        cond = v - (MUk**2 / lam[None, :]).sum(axis=1)  # v - diag(M K^+ M')
        g = np.asarray(post["g"].values, dtype=np.float64)
        g = g.reshape(-1, g.shape[-1])[:, : model.n]
        m = (g @ U / lam[None, :]) @ MUk.T  # (draws, new): M K^+ g
        var = _flat(post, kernel.variance_name)[:, None] * np.maximum(cond, 0.0)[None, :]
        if self.sampler == "laplace":
            # g ~ N(g^, Var(g | y)) at the mode: Var(T) = sigma2 v - sigma2^2 diag(A W^1/2 B^-1 W^1/2 A'), A = M K^+ K
            from ..inference.laplace import target_variance

            w = np.asarray(self.datatree["laplace"]["curvature"].values, dtype=np.float64)
            index = model.records.record_index
            K0 = (U * lam[None, :]) @ U.T
            sigma2 = float(_flat(post, kernel.variance_name)[0])
            var = target_variance(K0[np.ix_(index, index)], sigma2, w, (U @ MUk.T)[index], v)[None, :]
        mean = m.mean(axis=0)
        table = {key: labels, "mean": mean, "sd": np.sqrt(var.mean(axis=0) + ((m - mean) ** 2).mean(axis=0))}
        if model.family == "binary":
            location = _flat(post, MU)
            beta = _beta(post, model)
            if beta is not None:
                location = location + beta @ model.records.X.mean(axis=0)
            table["probability"] = ndtr((location[:, None] + m) / np.sqrt(1.0 + var)).mean(axis=0)
        return pd.DataFrame(table)

    def _target_moments(self, M: np.ndarray, v: np.ndarray):
        post = self.datatree["posterior"]
        theta = _theta(post, self.model)
        _, extra = posterior_moments(
            self.model.spectral_data,
            theta.pop("mu"),
            theta.pop("sigma2_k"),
            theta.pop("sigma2_e"),
            **theta,
            targets={"target": (M, v)},
        )
        quadrature = self.datatree["quadrature"] if "quadrature" in self.datatree.children else None
        if quadrature is not None and "target_weights" in quadrature:  # the exact mean; the sd from the draws
            from ..inference.quadrature import exact_target_means

            weights = np.asarray(quadrature["target_weights"].values, dtype=np.float64)
            mean = exact_target_means(self.model.spectral_data, weights, M)
            return type(extra["target"])(mean, extra["target"].sd)
        return extra["target"]

    def enrichment(self) -> pd.DataFrame:
        """Per set: markers, h2_<set>, its genetic variance per marker over the rest's, and P(more per marker).

        The ratio is led by its posterior median (``enrichment_median``): its mean is dominated by the draws in
        which the other sets' variance is near zero.

        With several traits, one row per set and trait (``<set>_<trait>``, with columns ``set`` and ``trait``).
        ``prob_more_per_marker`` is the share of posterior draws in which the set's genetic variance per
        marker exceeds that of the other sets pooled.
        """
        if self.stored is not None and "enrichment" in self.stored:  # read back: as computed at fit time
            return pd.DataFrame.from_dict(self.stored["enrichment"], orient="index")
        model = self._require_model("enrichment")
        if model.single:
            raise InputError("enrichment compares marker sets: fit several (MultiGBLUP, MultiMBLUP, --sets).")
        post = self.datatree["posterior"]
        rows = {}
        # several traits: one row per set and trait, named <set>_<trait>
        traits = [(f"_{t}", {"set": None, "trait": t}) for t in model.traits] if model.multi_trait else [("", {})]
        for k in model.kernels:
            for suffix, labels in traits:
                h2 = _flat(post, f"h2_{k.name}{suffix}")
                row = {key: (k.name if key == "set" else value) for key, value in labels.items()}
                row |= {"n_markers": k.n_markers, "h2_mean": float(h2.mean())}
                if model.has_enrichment:
                    ratio = _flat(post, f"enrichment_{k.name}{suffix}")
                    row |= {
                        # the median first: the ratio's mean explodes when the rest's h2 nears 0 (a mean of 126
                        # against a truth of 24 was seen), its median does not
                        "enrichment_median": float(np.median(ratio)),
                        "enrichment_mean": float(ratio.mean()),
                        "prob_more_per_marker": float((ratio > 1).mean()),
                    }
                rows[f"{k.name}{suffix}"] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    # --- tables --------------------------------------------------------------------------
    @property
    def parameter_names(self) -> list[str]:
        if self.model is None:  # read back by load_fit: summary.json's rows, beta[a], beta[b] as beta
            return list(dict.fromkeys(name.split("[", 1)[0] for name in self.stored["parameters"]))
        return self.model.parameter_names

    def summary(self) -> pd.DataFrame:
        """Mean, sd, 90% interval, bulk and tail ESS, R-hat and MC error of each parameter.

        Under MAP only ``mean`` (the MAP value) is filled; the rest is NaN. Under quadrature mean, sd, q05 and q95
        are the quadrature's (exact to its error estimate, ``settings["quadrature"]``) and the MCMC columns NaN.
        """
        if "summary" in self._cache:
            return self._cache["summary"].copy()
        if self.method == "quadrature":
            quad = self.datatree["quadrature"]
            table = pd.DataFrame(
                {key: np.asarray(quad[key].values, dtype=np.float64) for key in ("mean", "sd", "q05", "q95")},
                index=quad["parameter"].values.astype(str),
            )
            for key in ("ess_bulk", "ess_tail", "r_hat", "mcse_mean"):
                table[key] = np.nan
            self._cache["summary"] = table
            return table.copy()
        from .convergence import ess_bulk, ess_tail, rhat

        post = self.datatree["posterior"]
        rows = {}
        for name, x in self._parameter_draws(post):
            flat = x.reshape(-1)
            if self.method == "map":
                rows[name] = {"mean": float(flat[0])} | dict.fromkeys(
                    ("sd", "q05", "q95", "ess_bulk", "ess_tail", "r_hat", "mcse_mean"), np.nan
                )
                continue
            sd = float(flat.std(ddof=1))
            bulk = ess_bulk(x)
            rows[name] = {
                "mean": float(flat.mean()),
                "sd": sd,
                "q05": float(np.quantile(flat, 0.05)),
                "q95": float(np.quantile(flat, 0.95)),
                "ess_bulk": bulk,
                "ess_tail": ess_tail(x, (0.05, 0.95)),  # at the 90% interval's ends
                "r_hat": rhat(x),  # NaN for one chain
                "mcse_mean": sd / np.sqrt(bulk),
            }
        self._cache["summary"] = pd.DataFrame.from_dict(rows, orient="index")
        return self._cache["summary"].copy()

    def _parameter_draws(self, post):
        """(label, (chain, draw) array) per scalar parameter; vectors such as beta as beta[name]."""
        for name in self.parameter_names:
            x = np.asarray(post[name].values, dtype=np.float64)
            if x.ndim == 2:
                yield name, x
            else:  # one row per element, labelled by its coordinates: beta[age] or, per trait, beta[age, y1]
                coords = [post[name].coords[dim].values for dim in post[name].dims[2:]]
                for index in np.ndindex(*x.shape[2:]):
                    label = ", ".join(str(c[i]) for c, i in zip(coords, index, strict=True))
                    yield f"{name}[{label}]", x[(slice(None), slice(None), *index)]

    def diagnostics(self) -> dict:
        """Divergences, worst R-hat and ESS over the parameters, and warnings in plain words."""
        if self.stored is not None:  # read back: as computed at fit time (the model's eigenvalues included)
            return copy.deepcopy(self.stored["diagnostics"])
        if "diagnostics" not in self._cache:
            self._cache["diagnostics"] = self._diagnostics()
        return copy.deepcopy(self._cache["diagnostics"])

    def _prior_dominance(self) -> list[str]:
        """A warning when the prior, not the data, sets h2: its posterior mean moved by more than one posterior sd.

        The reference is the same model under a uniform prior on h2 (the ``"default"`` set: h2 ~ Beta(1, 1)),
        integrated exactly by quadrature (:mod:`bayesblup.inference.quadrature`; a few tenths of a second, the
        eigendecomposition shared). Where the two posterior means of h2 differ by more than the reference's sd, the
        fitted prior dominates the data: BGLR's own prior (``"bglr"``, implying h2 ~ Beta(2.5, 2.5)) gave 90%
        intervals covering a simulated h2 of 0.1 in 0 of 10 fits at n = 1000 (issue 19). One Gaussian trait and
        kernel in the marginal form (what the quadrature integrates), sampled by NUTS or by quadrature.
        """
        model = self.model
        if self.method == "map" or model is None or self.settings.get("extensions"):
            return []
        if not isinstance(model._prior_spec, (str, dict)) or model._prior_spec == "default":
            return []
        from ..inference.quadrature import check_quadrature, quadrature

        try:
            check_quadrature(model)
        except InputError:
            return []
        try:
            # the same data and eigendecomposition under the uniform prior on h2; a thousandth of an sd is ample for
            # a one-sd test: one grid level instead of two (0.09 s against 0.21 s at n = 1814)
            h2 = quadrature(model.with_prior("default"), tolerance=1e-3).table["h2"]
        except (InputError, ValueError, FloatingPointError):  # no reference: nothing to say
            return []
        mean = float(self.summary().loc["h2", "mean"])
        gap = abs(mean - h2["mean"]) / h2["sd"]
        if gap <= 1.0:
            return []
        return [
            f"the prior dominates h2: its posterior mean {mean:.3f} lies {gap:.1f} posterior sd from its mean under a "
            f"uniform prior on h2 ({h2['mean']:.3f}, sd {h2['sd']:.3f}; exact, by quadrature). Report the prior, and "
            "compare priors (--prior-sensitivity); prior='default' is the calibrated choice"
        ]

    def _diagonal_notes(self) -> list[str]:
        """A relationship matrix whose mean diagonal is far from 1 puts h2 on another scale than the genetic share.

        ``Var(g_i) = G_ii sigma2_g``, so the genetic share of the phenotypic variance is ``d sigma2_g / (d sigma2_g +
        sigma2_e)`` with ``d`` the mean diagonal over the individuals with a record; h2 is that only when d = 1 (a
        genomic G under the standardised scalings). Both figures are given for one Gaussian trait and kernel.
        """
        model = self.model
        out = []
        for kernel in model.kernels:
            # marker kernels (W W'/c) and G given by its factor W are a genomic G's scale by construction (and asking
            # the latter for its relationship matrix would build the n x n G the low-rank path avoids)
            if kernel.model_label != "gblup" or getattr(kernel, "from_factor", False):
                continue
            d = float(np.mean(kernel.diagonal()[: model.n]))
            if abs(d - 1.0) <= DIAGONAL_NOTE:
                continue
            name = "G" if kernel.name is None else f"the relationship matrix of term {kernel.name!r}"
            text = f"{name} has mean diagonal {d:.3g} over the individuals with a record"
            post = self.datatree["posterior"]
            if model.single and not model.multi_trait and model.family == "gaussian" and "sigma2_e" in post:
                sg, se = _flat(post, kernel.variance_name), _flat(post, "sigma2_e")
                share = float(np.mean(d * sg / (d * sg + se)))
                h2 = float(self.summary().loc["h2", "mean"])  # the table's figure (exact under quadrature)
                text += (
                    f": h2 = sigma2_g / (sigma2_g + sigma2_e) = {h2:.3f} is on G's scale; "
                    f"the genetic share of the phenotypic variance, {d:.3g} sigma2_g / ({d:.3g} sigma2_g + sigma2_e), "
                    f"is {share:.3f}"
                )
            else:
                text += ": its h2 is on G's scale, not the genetic share of the variance (mean diagonal x sigma2_g)"
            out.append(text)
        return out

    def _diagnostics(self) -> dict:
        """Warnings (something to act on, each with advice; ``--strict`` fails on them) and notes (facts)."""
        warnings: list[str] = []
        notes: list[str] = []
        sp = self.model._spectral  # computed whenever the fitted form needed it
        eigenvalues = None if sp is None else sp.to_dict()
        if self.settings.get("extensions"):
            how = (
                "the genetic values are the sampler's draws of g"
                if self.model.form == "latent"
                else "g is integrated out and your additions cannot involve it, so the genetic values are exact "
                "given each draw of the parameters"
            )
            notes.append(
                f"the model was extended with {', '.join(self.settings['extensions'])}: sampled with it; {how}"
            )
        if sp is not None and getattr(sp, "factor", None) is not None:  # the low-rank path's thin decomposition
            m = sp.factor.shape[1]
            notes.append(
                f"G has rank {sp.rank} of {sp.n}, from {m} marker columns for {sp.n} individuals with a record: the "
                f"low-rank path decomposed the {m} x {m} W'W, and the other {sp.n_clipped} eigenvalues are exactly zero"
            )
        elif sp is not None and sp.n_clipped:
            markers = getattr(self.model, "n_markers", None) if self.model.single else None
            if sp.n_clipped == 1:
                why = " (one rank is what centring W removes)"
            elif markers is not None and markers < sp.n:  # m markers give at most m ranks (m - 1 once centred)
                why = f" ({markers} markers for {sp.n} individuals: at most {markers} ranks)"
            else:
                why = " (individuals with identical genotypes, or markers that are combinations of others)"
            notes.append(
                f"G has rank {sp.rank} of {sp.n}: {sp.n_clipped} eigenvalue(s) below tol = {sp.tol:.3g} treated as "
                f"zero, the smallest {sp.min_raw:.3g}{why}"
            )
        notes += self._diagonal_notes()
        warnings += self._prior_dominance()
        if self.method == "map" and self.sampler == "laplace":
            location = "mu" if self.model.family == "binary" else "the thresholds"
            notes.append(
                "the Laplace approximation's marginal mode: g integrated out by Laplace's method, point estimates of "
                f"h2 and {location} at the mode of their marginal posterior; genetic values are Laplace's mean and sd "
                "given that mode (no uncertainty of the hyperparameters)"
            )
            if not self.settings.get("laplace", {}).get("converged", True):
                warnings.append(
                    "the optimiser of the Laplace marginal mode reported no convergence: the hyperparameters may not "
                    "be at the mode; compare with method='nuts'"
                )
        elif self.method == "map":
            notes.append("MAP gives point estimates: no posterior uncertainty for the variance components")
        if self.method == "quadrature":
            q = self.settings.get("quadrature", {})
            notes.append(
                "independent draws: quadrature. The summary's mean, sd and quantiles and the posterior means of the "
                f"genetic values are exact to the quadrature's error estimate ({q.get('error_estimate', np.nan):.1g} "
                f"of each sd, grid {q.get('grid')}); the draws ({self.datatree['posterior'].sizes['draw']} per chain) "
                "are independent, so no R-hat or ESS is needed"
            )
            if not q.get("converged", True):
                warnings.append(
                    f"the quadrature did not reach its tolerance ({q.get('tolerance')}): error estimate "
                    f"{q.get('error_estimate'):.2g}; compare with method='nuts'"
                )
            if q.get("at_limit"):
                warnings.append(
                    "the quadrature's grid reached its limit with posterior mass at the edge "
                    f"({', '.join(q['at_limit'])}): the variance components are barely identified; compare with "
                    "method='nuts'"
                )
            return {
                "divergences": None, "max_r_hat": None, "min_ess_bulk": None, "min_ess_tail": None,
                "warnings": warnings, "notes": notes, "eigenvalues": eigenvalues,
            }  # fmt: skip
        if self.method == "map":
            # A mode where a variance vanishes is no estimate: a prior whose density is unbounded at zero (Gamma
            # with alpha < 1, as the half-normal on the sd) or a joint mode over latent effects puts it there.
            table = self.summary()
            edge = [p for p in table.index if p.startswith("h2") and not p.startswith("h2_observed")]
            edge = [p for p in edge if not 1e-4 < table.loc[p, "mean"] < 1 - 1e-4]
            if edge:
                shown = ", ".join(f"{p} = {table.loc[p, 'mean']:.4f}" for p in edge)
                warnings.append(
                    f"the mode lies on the boundary ({shown}): a variance component went to zero, where a prior "
                    "with unbounded density at zero (e.g. the half-normal on the sd) or a joint mode over latent "
                    "effects puts the mode; the posterior is not there: use method='nuts'"
                )
            if self.model.multi_trait and self.model.multitrait_data.missing_rows.size:
                warnings.append(
                    "MAP also maximises over the missing records (sampled as unknowns with several traits), so its "
                    "variance components are those of the joint mode, not of the marginal one: use NUTS for this model"
                )
            if self.model.samples_excess:
                warnings.append(
                    "MAP also maximises over the sampled residual excess (unequal record weights with a permanent "
                    "environment), so its variance components are approximate: use NUTS for this model"
                )
            return {
                "divergences": None, "max_r_hat": None, "min_ess_bulk": None, "min_ess_tail": None,
                "warnings": warnings, "notes": notes, "eigenvalues": eigenvalues,
            }  # fmt: skip
        table = self.summary()
        stats = self.datatree.get("sample_stats") if hasattr(self.datatree, "get") else None
        divergences = (
            int(np.asarray(stats["diverging"].values).sum()) if stats is not None and "diverging" in stats else 0
        )
        max_r_hat = float(np.nanmax(table["r_hat"])) if table["r_hat"].notna().any() else None
        min_ess = float(table["ess_bulk"].min())
        min_tail = float(table["ess_tail"].min())
        chains = self.datatree["posterior"].sizes["chain"]
        if divergences:
            warnings.append(
                f"{divergences} divergent transitions: the posterior may be biased. Raise target_accept (e.g. "
                "--target-accept 0.95); if they persist, a variance near zero may be weakly identified: compare "
                "with prior='default' and look at the trace plot (--plots)"
            )
        if max_r_hat is not None and max_r_hat > THRESHOLDS["r_hat"]:
            worst = table["r_hat"].idxmax()
            warnings.append(
                f"R-hat {max_r_hat:.3f} > {THRESHOLDS['r_hat']} for {worst}: the chains disagree. Run longer "
                "(more --draws and --tune) and look at the trace plot (--plots)"
            )
        if min_ess < THRESHOLDS["ess"]:
            worst = table["ess_bulk"].idxmin()
            warnings.append(
                f"bulk ESS {min_ess:.0f} < {THRESHOLDS['ess']} for {worst}: too few effective draws for a stable "
                "posterior mean. Run more draws (e.g. --draws 2000) or more chains"
            )
        if min_tail < THRESHOLDS["ess"]:
            worst = table["ess_tail"].idxmin()
            warnings.append(
                f"tail ESS {min_tail:.0f} < {THRESHOLDS['ess']} for {worst}: too few effective draws at the ends of "
                "the 90% interval. Run more draws (e.g. --draws 2000) or more chains"
            )
        if chains == 1:
            warnings.append("one chain: R-hat cannot be computed; run 4 chains to check convergence")
        return {
            "divergences": divergences, "max_r_hat": max_r_hat, "min_ess_bulk": min_ess, "min_ess_tail": min_tail,
            "warnings": warnings, "notes": notes, "eigenvalues": eigenvalues,
        }  # fmt: skip

    def to_dict(self) -> dict:
        """The content of ``summary.json``."""
        model = self.model
        table = self.summary()
        parameters = {
            name: {k: (None if pd.isna(v) else float(v)) for k, v in row.items() if k in _JSON_FIELDS}
            for name, row in table.iterrows()
        }
        if self.stored is not None:  # read back: summary.json as written, with the table from the draws
            return copy.deepcopy({k: v for k, v in self.stored.items() if k != "tables"}) | {"parameters": parameters}
        label, priors = model.priors
        sp = model._spectral
        out = {
            "model": model.name,
            "form": model.form,
            "trait": model.traits[0] if not model.multi_trait else list(model.traits),
            "n_records": int(model.n_records),
            "n_individuals": int(model.n),
            "n_unphenotyped": len(model.records.unphenotyped),
            "weights": getattr(model.records, "weights", None) is not None,
            "permanent_environment": model.pe_path if model.permanent_environment else None,
            "n_markers": model.n_markers,
            "scaling": model.scaling,
            "g_denominator": model.denominator,
            "equivalence_factor": model.factor if model.single and model.kernels[0].reports_equivalent else None,
            "prior": label,
            "prior_details": {k: _prior_details(v) for k, v in priors.items()},
            "method": self.method,
            "sampler": self.sampler,
            "settings": self.settings,
            "kernel": sp.to_dict() if sp is not None else None,
            "parameters": parameters,
            "diagnostics": self.diagnostics(),
            "timings": dict(self.timings),
            "versions": {p: version(p) for p in ("bayesblup", "pymc", "pytensor", "arviz", "numpy")},
            "specification": model.describe(),
        }
        if not model.single:
            widths = model.widths
            woodbury = model.path in ("woodbury", "explicit")  # a background kernel and the others
            out["path"] = model.path
            out["sets"] = {
                k.name: {
                    "n_markers": k.n_markers,
                    "rank": int(widths[k.name]),
                    "equivalence_factor": k.c if k.reports_equivalent else None,
                    "role": (
                        "background"
                        if k.name == model.background
                        else "explicit"
                        if model.path == "explicit"
                        else "low-rank"
                    )
                    if woodbury
                    else None,
                }
                for k in model.kernels
            }
            out["enrichment"] = self.enrichment().to_dict(orient="index")
        return out

    def save(self, out_dir, **options):
        """Write the fit to ``out_dir``: see :func:`bayesblup.results.store.save`."""
        from .store import save

        return save(self, out_dir, **options)


def _prior_details(prior) -> dict:
    """A prior as summary.json records it: a Prior's own dict, or an inverse Wishart's (df, scale)."""
    if isinstance(prior, tuple):  # (df, scale) of an inverse Wishart (several traits, prior="bglr")
        df, scale = prior
        return {"distribution": "InverseWishart", "df": float(df), "scale": np.asarray(scale).tolist()}
    if prior is None or isinstance(prior, str | float):  # several traits, a dict: its style, LKJ etas, defaults
        return prior
    return prior.to_dict()


_JSON_FIELDS = ("mean", "sd", "q05", "q95", "ess_bulk", "ess_tail", "r_hat", "mcse_mean")
