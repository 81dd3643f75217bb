"""The fit's ``observed_data``, ``log_likelihood`` and ``posterior_predictive`` groups: model comparison by LOO.

``observed_data`` holds the trait's records as given (dim ``record``, labelled by the individuals' IDs, or
``<id>#<k>`` for the k-th of several records of one individual), whatever the form. PyMC's own observed
variable of the marginal form, the rotated records ``y_rotated`` (dim ``component``), moves to ``constant_data``.

``log_likelihood`` holds, under the trait's name and with dims ``(chain, draw, record)``:

* the marginal form (g integrated out): ``log p(y_i | y_-i, theta)``, the density of record i given every other
  record and the parameters, which is what PSIS-LOO of a non-factorised model needs
  (:mod:`bayesblup.inference.pointwise` says why, and how it is computed on each path);
* the latent form, and binary and ordinal traits: ``log p(y_i | g, theta)`` with the posterior's g.

``az.loo(fit.datatree)`` then estimates each record's exact leave-one-out predictive density, and
``az.compare({"G-BLUP": a.datatree, "GFBLUP": b.datatree})`` compares models fitted to the same records: G-BLUP,
M-BLUP, marker sets, priors, forms.

It is computed by :meth:`~bayesblup.BLUPFit.compute_log_likelihood`, and by ``fit()`` itself where that is cheap
(:func:`default_log_likelihood`); ``posterior_predictive`` (``y_rep`` under the trait's name, on the records'
scale) by :meth:`~bayesblup.BLUPFit.sample_posterior_predictive`.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from ..names import MU, RECORD, SIGMA2_E, SIGMA2_PE
from .draws import beta_draws as _beta
from .draws import flat_draws as _flat

__all__ = [
    "LOG_LIKELIHOOD_ENTRIES",
    "LOG_LIKELIHOOD_FLOPS",
    "add_pointwise_groups",
    "check_pointwise",
    "compute_log_likelihood",
    "default_log_likelihood",
    "observed_dataset",
    "record_labels",
    "sample_posterior_predictive",
]

#: ``fit()`` computes the log-likelihood by default when it costs at most this many floating-point operations
#: (a few seconds; measured on 2 cores: 0.2 s for wheat's 599 records x 4000 draws, 0.9 s for 1814 records) ...
LOG_LIKELIHOOD_FLOPS = 1e11
#: ... and holds at most this many numbers (records x draws; 80 MB in posterior.nc).
LOG_LIKELIHOOD_ENTRIES = 1e7


def record_labels(records) -> np.ndarray:
    """The ``record`` coordinate: each record's individual ID, or ``<id>#<k>`` where an individual has several."""
    ids = np.asarray(records.record_ids).astype(str)
    if np.unique(ids).size == ids.size:
        return ids
    order = np.zeros(ids.size, dtype=np.int64)
    seen: dict[str, int] = {}
    for i, name in enumerate(ids):
        seen[name] = seen.get(name, 0) + 1
        order[i] = seen[name]
    return np.array([f"{name}#{k}" for name, k in zip(ids, order, strict=True)])


def observed_dataset(model):
    """The records as given, under the trait's name, dim ``record``."""
    import xarray as xr

    rec = model.records
    y = np.asarray(rec.y, dtype=np.float64)
    return xr.Dataset({rec.trait: ((RECORD,), y)}, coords={RECORD: record_labels(rec)})


def _set_observed(model, datatree) -> None:
    """``observed_data`` from the records; PyMC's ``y_rotated`` to ``constant_data``, its latent ``y`` replaced."""
    import xarray as xr

    observed = observed_dataset(model)
    old = datatree.children.get("observed_data")
    if old is not None:
        ds = old.to_dataset(inherit=False)
        if "y_rotated" in ds:  # the marginal form's rotated records: data the model was built on, kept
            rotated = ds[["y_rotated"]]
            constant = datatree.children.get("constant_data")
            merged = rotated if constant is None else xr.merge([constant.to_dataset(inherit=False), rotated])
            datatree["constant_data"] = xr.DataTree(merged)
        # the model's own observed variables (y_rotated, the latent form's y) give way to the records; a user's
        # extension may have added others, which stay (unless they are over the model's own record index)
        extra = [v for v in ds.data_vars if v not in ("y_rotated", "y") and RECORD not in ds[v].dims]
        if extra:
            observed = xr.merge([ds[extra], observed])
        del datatree["observed_data"]
    datatree["observed_data"] = xr.DataTree(observed)


def check_pointwise(model, method: str, what: str = "log_likelihood") -> str | None:
    """Why ``what`` (the log-likelihood or the posterior predictive) is not available for this fit, or None."""
    if model.multi_trait:
        return (
            f"{what} is not available for several traits yet (the density of one record given all others of all "
            "traits); fit each trait alone to compare models by LOO"
        )
    if method == "map":
        if what.startswith("--"):  # the command line's spelling
            return f"{what} needs posterior draws and --method map gives one point; use --method nuts or quadrature"
        return (
            f"{what} needs posterior draws and method='map' gives one point; use method='nuts' (or 'quadrature' for "
            "one kernel)"
        )
    return None


def refuse_pointwise(model, method: str, what: str = "log_likelihood") -> None:
    """Raise :class:`InputError` when ``what`` is not available (before any sampling)."""
    why = check_pointwise(model, method, what)
    if why is not None:
        raise InputError(why + ".")


def _cost(model, draws: int) -> float:
    """Floating-point operations of the log-likelihood at ``draws`` draws (the dominant products)."""
    n, N = model.n, model.n_records
    if model.form == "latent":
        return 20.0 * N * draws
    if model.single:
        data = model.spectral_data
        if data.excess is not None:  # the dense path: a Cholesky factor and its inverse per draw
            return 2.0 * float(n) ** 3 * draws
        return 4.0 * n * data.lam.size * draws + 20.0 * N * draws  # two (n x r)(r x D) products
    data = model.kernels_data
    if data.path == "woodbury":
        R = data.A.shape[1]
        q = 32  # the typical rank of the draws' 1/d (the range finder's)
        return 4.0 * n * n * draws + 2.0 * n * R * (q + R) * draws + 2.0 * n * n * q * R
    return 2.0 * float(n) ** 3 * draws


def default_log_likelihood(model, method: str, draws: int) -> tuple[bool, str | None]:
    """``(compute, why not)``: whether ``fit()`` computes the log-likelihood unasked (cheap, see the limits)."""
    why = check_pointwise(model, method)
    if why is not None:
        return False, why
    entries = float(model.n_records) * draws
    flops = _cost(model, draws)
    if entries > LOG_LIKELIHOOD_ENTRIES or flops > LOG_LIKELIHOOD_FLOPS:
        return False, (
            f"not computed by default ({model.n_records} records x {draws} draws, about {flops:.1g} operations on "
            f"the {model.path} path): fit.compute_log_likelihood(), fit(..., log_likelihood=True) or "
            "--log-likelihood computes it"
        )
    return True, None


def _vector(post, name: str, width: int) -> np.ndarray:
    return np.asarray(post[name].values, dtype=np.float64).reshape(-1, width)


def _latent_mean(model, post) -> np.ndarray:
    """The records' means given g (D, N): ``mu + x'beta + g + pe`` (a threshold model's liability means)."""
    rec = model.records
    j = rec.record_index
    g = np.asarray(post["g"].values, dtype=np.float64)
    eta = g.reshape(-1, g.shape[-1])[:, : model.n][:, j]
    if MU in post:
        eta = eta + _flat(post, MU)[:, None]
    beta = _beta(post, model)
    if beta is not None:
        eta = eta + beta @ rec.X.T
    if "pe" in post and model.permanent_environment:
        eta = eta + _vector(post, "pe", model.n)[:, j]
    return eta


def _cutpoints(model, post) -> np.ndarray:
    """A threshold model's thresholds per draw (D, K - 1): 0 for a binary trait (its mu is in the mean)."""
    if model.family == "binary":
        return np.zeros((_flat(post, MU).size, 1))
    return _vector(post, "thresholds", model.categories.n_categories - 1)


def _pointwise(model, post) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` or ``log p(y_i | g, theta)`` (D, N) from the posterior's draws."""
    from ..inference import pointwise

    rec = model.records
    if model.threshold:
        eta = _latent_mean(model, post)
        return pointwise.threshold_log_density(model.categories.codes, eta, _cutpoints(model, post))
    if model.form == "latent":
        return pointwise.latent_gaussian_log_density(rec, _latent_mean(model, post), _flat(post, SIGMA2_E))
    mu, beta, sigma2_e = _flat(post, MU), _beta(post, model), _flat(post, SIGMA2_E)
    sigma2_pe = _flat(post, SIGMA2_PE) if model.permanent_environment else None
    if model.single:
        data = model.spectral_data
        sigma2_k = _flat(post, model.kernels[0].variance_name)
        if data.excess is None:
            return pointwise.spectral_conditional(data, rec, mu, sigma2_k, sigma2_e, beta=beta, sigma2_pe=sigma2_pe)
        # unequal total weights with a permanent environment: the sampled residual excess is integrated out here,
        # and V is not diagonal in G's eigenbasis; G back from its eigendecomposition (S = I on this path)
        K = (data.vectors * data.lam[None, :]) @ data.vectors.T
        means = (rec.individual_means(rec.y), np.ones(model.n), None if rec.X is None else rec.individual_means(rec.X))
        noise = (1.0 / rec.total_weight, 1.0)
        return pointwise.dense_conditional(
            rec, means, np.ones(model.n), [K], [sigma2_k], noise, mu, sigma2_e, beta=beta, sigma2_pe=sigma2_pe
        )
    sigma2 = {k.name: _flat(post, k.variance_name) for k in model.kernels}
    return pointwise.kernels_conditional(
        model.kernels_data, rec, mu, sigma2, sigma2_e, beta=beta, sigma2_pe=sigma2_pe
    )  # fmt: skip


def _per_draw(model, post, values: np.ndarray, attrs: dict):
    """(D, N) values as a Dataset under the trait's name, dims (chain, draw, record) as the posterior's."""
    import xarray as xr

    chains, draws = post.sizes["chain"], post.sizes["draw"]
    return xr.Dataset(
        {model.records.trait: (("chain", "draw", RECORD), values.reshape(chains, draws, -1))},
        coords={"chain": post["chain"].values, "draw": post["draw"].values, RECORD: record_labels(model.records)},
        attrs=attrs,
    )


def _what(model) -> str:
    if model.form == "latent":
        return "log p(y_i | g, theta): each record given the posterior's genetic values and the parameters"
    return "log p(y_i | y_-i, theta): each record given every other record and the parameters, g integrated out"


def compute_log_likelihood(fit):
    """Add the ``log_likelihood`` group to the fit's DataTree (module docstring) and return the DataTree."""
    import xarray as xr

    model = fit._require_model("compute_log_likelihood")
    refuse_pointwise(model, fit.method)
    t0 = time.perf_counter()
    post = fit.datatree["posterior"]
    values = _pointwise(model, post)
    attrs = {"density": _what(model), "scale": "the records as given (observed_data)"}
    if "log_likelihood" in fit.datatree.children:
        del fit.datatree["log_likelihood"]
    fit.datatree["log_likelihood"] = xr.DataTree(_per_draw(model, post, values, attrs))
    fit.timings["log_likelihood_s"] = time.perf_counter() - t0
    fit.settings["log_likelihood"] = True
    fit.settings.pop("log_likelihood_note", None)
    return fit.datatree


def sample_posterior_predictive(fit, *, seed: int | None = None):
    """Add ``posterior_predictive`` (replicated records, per draw) to the fit's DataTree and return the DataTree.

    The marginal form draws ``y_rep ~ N(mu 1 + X beta, V)`` given each draw of theta (new genetic values, permanent
    effects and residuals: the model that was fitted, g integrated out); the latent form ``y_rep ~ p(y | g,
    theta)`` with the posterior's g; a binary or ordinal trait its categories, as the record values.
    """
    import xarray as xr

    from ..inference import pointwise

    model = fit._require_model("sample_posterior_predictive")
    refuse_pointwise(model, fit.method, "posterior_predictive")
    t0 = time.perf_counter()
    if seed is None:
        seed = fit.settings.get("seed")
    rng = np.random.default_rng(None if seed is None else [int(seed), 20261204])  # apart from the fit's own streams
    post = fit.datatree["posterior"]
    rec = model.records
    if model.threshold:
        codes = pointwise.threshold_predictive(_latent_mean(model, post), _cutpoints(model, post), rng)
        values = np.asarray(model.categories.labels, dtype=np.float64)[codes]
        how = "the probit threshold model given the posterior's g: a liability drawn and cut at the thresholds"
    elif model.form == "latent":
        eta = _latent_mean(model, post)
        sd = np.sqrt(_flat(post, SIGMA2_E)[:, None] / rec.record_weights[None, :])
        values = eta + sd * rng.standard_normal(eta.shape)
        how = "p(y | g, theta) with the posterior's g"
    else:
        values = pointwise.marginal_predictive(
            rec, _flat(post, MU), _beta(post, model), _flat(post, SIGMA2_E), _genetic_prior(model, post), rng,
            sigma2_pe=_flat(post, SIGMA2_PE) if model.permanent_environment else None,
        )  # fmt: skip
        how = "N(mu 1 + X beta, V) given each draw of theta: new genetic values and residuals (g integrated out)"
    attrs = {"draws": how, "seed": -1 if seed is None else int(seed)}
    if "posterior_predictive" in fit.datatree.children:
        del fit.datatree["posterior_predictive"]
    fit.datatree["posterior_predictive"] = xr.DataTree(_per_draw(model, post, values, attrs))
    fit.timings["posterior_predictive_s"] = time.perf_counter() - t0
    return fit.datatree


def _genetic_prior(model, post):
    """``genetic(sl, rng)``: prior draws (n, c) of ``sum_k g_k ~ N(0, sum_k sigma2_k K_k)`` at the draws ``sl``."""
    if model.single:
        data = model.spectral_data
        sigma2_k = _flat(post, model.kernels[0].variance_name)
        root = np.sqrt(np.maximum(data.lam, 0.0))

        def genetic(sl, rng):  # S^-1 U diag(sqrt(sigma2_k lam)) xi: covariance sigma2_k K
            z = root[:, None] * np.sqrt(sigma2_k[sl])[None, :] * rng.standard_normal((root.size, sl.stop - sl.start))
            return data.genetic_dot(z)

        return genetic
    data = model.kernels_data
    factors = {k.name: data.effects[k.name][: model.n] for k in model.kernels}  # F_k F_k' = K_k
    sigma2 = {k.name: _flat(post, k.variance_name) for k in model.kernels}

    def genetic(sl, rng):
        c = sl.stop - sl.start
        return sum(
            F @ (np.sqrt(sigma2[name][sl])[None, :] * rng.standard_normal((F.shape[1], c)))
            for name, F in factors.items()
        )

    return genetic


def add_pointwise_groups(fit, log_likelihood: bool | None = None):
    """What ``fit()`` adds: ``observed_data`` (one trait), and ``log_likelihood`` when asked or cheap; the fit back.

    ``log_likelihood``: True computes it (refused, before sampling, where it is not available), False leaves it
    out, None (the default) computes it where :func:`default_log_likelihood` finds it cheap and records why not
    otherwise (``fit.settings["log_likelihood_note"]``).
    """
    model = fit.model
    if model.multi_trait:
        fit.settings["log_likelihood"] = False
        if log_likelihood is None:
            fit.settings["log_likelihood_note"] = check_pointwise(model, fit.method)
        return fit
    _set_observed(model, fit.datatree)
    if log_likelihood is None:
        post = fit.datatree["posterior"]
        log_likelihood, note = default_log_likelihood(model, fit.method, post.sizes["chain"] * post.sizes["draw"])
        if note is not None:
            fit.settings["log_likelihood_note"] = note
    if log_likelihood:
        compute_log_likelihood(fit)
    else:
        fit.settings["log_likelihood"] = False
    return fit
