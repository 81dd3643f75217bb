"""Several traits in one model: ``vec(g) ~ N(0, Sigma_g (x) G)``, ``vec(e) ~ N(0, Sigma_e (x) I)``.

The trait dimension of :class:`~bayesblup.models.model.BLUPModel`. With one kernel, in its eigenbasis
``K = U diag(lam) U'``, the rotated records of the n components are independent t-variate normals,

    y*_k ~ N(U'1 mu' + U'X B, lam_k Sigma_k + Sigma_e),

with ``Sigma_k`` the kernel's covariance (``Sigma_g`` for G-BLUP; ``Sigma_b = Sigma_g / c`` for M-BLUP,
so that the equivalence ``Sigma_g = c Sigma_b`` of eq 7 holds matrix-wise). The log-likelihood is a sum
of n t-variate normal densities, evaluated in the canonical basis of ``(Sigma_k, Sigma_e)``
(:func:`bayesblup.models.ops.canonical_mvn_logp`): a gradient costs O(n t^2) and no n x n work.

With several kernels (marker sets), ``vec(g_k) ~ N(0, Sigma_g,k (x) K_k)`` each: no one basis diagonalises
their sum, so the background (the kernel of largest rank) is integrated out as above and the others are
explicit and non-centred (:func:`explicit_effects`), entering the rotated records as ``U' L_k effects_k``
(docs/models.md, "Several kernels with several traits", for the alternatives and why not).

Records missing for one trait are unknowns of the model (``y_missing``), exactly as the missing data of
BGLR's Gibbs sampler: integrating them out would break the diagonal structure (the observed records'
covariance has no Kronecker form). They enter the rotated data as ``U[i, :]' y_ij``, O(n) each. ``fit()``
does not move them with NUTS: an exact Gibbs step draws them from their conditional given the variances
and the observed records (:mod:`bayesblup.inference.missing`), and NUTS moves the variances given the
completed records. Sampled jointly by NUTS instead (what ``pm.sample`` on this model does), 1200 unknowns
beside 15 variances at n = 2000 took 230 ms a draw with 171 divergences (``benchmarks/RESULTS.md``).

Priors (``prior=``):

``"default"``
    Per trait ``h2_t ~ Beta(1, 1)`` and ``sigma2_p_t ~ LogNormal(log var(y_t), 1)`` as for one trait,
    and correlation matrices ``R_g``, ``R_e ~ LKJ(1)`` (uniform over correlation matrices):
    ``Sigma_g = D_g R_g D_g`` with ``D_g = diag(sqrt(h2 sigma2_p))``, ``Sigma_e`` likewise with ``1 - h2``.
``"bglr"``
    BGLR's ``Multitrait`` defaults: inverse Wishart priors on ``Sigma_g`` and ``Sigma_e``
    (:func:`bayesblup.models.covariance.bglr_multitrait_priors`).
a dict of ``Prior``
    ``"default"``'s form with your priors on h2 and sigma2_p, or the variances themselves (``sigma2_g`` or
    ``sigma2_b``, and ``sigma2_e``), each per trait, and ``"R_g"``, ``"R_e"``: ``Prior("LKJCorr", eta=...)``
    (:func:`bayesblup.models.priors.resolve_multitrait_priors`).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import InputError
from ..names import TRAIT

__all__ = ["Z_MISSING", "batched_mvn_logp", "explicit_effects", "pairs", "variance_names"]

#: The free variable of the missing records (each in its trait's sd units); ``y_missing`` is on the records' scale.
Z_MISSING = "z_missing"


def pairs(traits) -> list[tuple[int, int]]:
    """Index pairs ``(a, b)``, a before b, in the order the traits were given."""
    return list(itertools.combinations(range(len(traits)), 2))


def variance_names(model) -> list[str]:
    """The summary's scalar parameters of a multi-trait model, in order.

    With several kernels the totals (``h2_<trait>``, ``r_g_<a>_<b>``, ``sigma2_g_<trait>``: the sum over the
    kernels) come first, each kernel's own follow with its name before the trait's: ``h2_<set>_<trait>``,
    ``r_g_<set>_<a>_<b>``, ``sigma2_g_<set>_<trait>`` (and ``sigma2_b_<set>_<trait>``,
    ``sigma2_g_equiv_<set>_<trait>`` for a marker set).
    """
    traits = model.traits
    kernels = model.kernels
    several = len(kernels) > 1
    pair_names = [f"{traits[a]}_{traits[b]}" for a, b in pairs(traits)]
    names = [f"h2_{t}" for t in traits]
    if several:
        names += [f"h2_{k.name}_{t}" for k in kernels for t in traits]
    names += [f"r_g_{p}" for p in pair_names]
    if several:
        names += [f"r_g_{k.name}_{p}" for k in kernels for p in pair_names]
    names += [f"r_e_{p}" for p in pair_names]
    names += [f"sigma2_g_{t}" for t in traits]
    if several:
        for k in kernels:
            names += [f"sigma2_g_{k.name}_{t}" for t in traits]
            if k.reports_equivalent:
                names += [f"{k.variance_name}_{t}" for t in traits] + [f"sigma2_g_equiv_{k.name}_{t}" for t in traits]
    elif kernels[0].reports_equivalent:
        names += [f"sigma2_b_{t}" for t in traits] + [f"sigma2_g_equiv_{t}" for t in traits]
    if model.has_enrichment:
        names += [f"enrichment_{k.name}_{t}" for k in kernels for t in traits]
    names += [f"sigma2_e_{t}" for t in traits]
    names += [f"mu_{t}" for t in traits]
    return names


def _cholesky_entries(V: dict, t: int) -> dict:
    """The lower Cholesky factor of a t x t matrix given by its entries ``V[(i, j)]``, i >= j, entry by entry.

    Each entry may be a scalar or a vector (then every element is its own matrix): only elementwise
    operations, so PyTensor differentiates it without a linear-algebra Op.
    """
    import pytensor.tensor as pt

    L: dict[tuple[int, int], object] = {}
    for j in range(t):
        L[(j, j)] = pt.sqrt(V[(j, j)] - sum((L[(j, k)] ** 2 for k in range(j)), start=0.0))
        for i in range(j + 1, t):
            L[(i, j)] = (V[(i, j)] - sum((L[(i, k)] * L[(j, k)] for k in range(j)), start=0.0)) / L[(j, j)]
    return L


def cholesky(S, t: int):
    """The lower Cholesky factor of a t x t covariance tensor, written out entry by entry."""
    import pytensor.tensor as pt

    L = _cholesky_entries({(i, j): S[i, j] for i in range(t) for j in range(i + 1)}, t)
    zero = pt.constant(0.0)
    return pt.stack([pt.stack([L[(i, j)] if j <= i else zero for j in range(t)]) for i in range(t)])


def batched_mvn_logp(lam, S_k, S_e, R):
    """``sum_k log N(R_k; 0, lam_k S_k + S_e)`` for R (n, t), in the canonical basis of ``(S_k, S_e)``.

    O(n t^2) and one t x t eigendecomposition per gradient, the gradient written by hand
    (:func:`bayesblup.models.ops.canonical_mvn_logp`). Writing the n t x t Cholesky factors out entry by
    entry instead cost 67 against 56 microseconds a gradient at n = 599, t = 4, and a graph that took
    several seconds to compile.
    """
    from .ops import canonical_mvn_logp

    return canonical_mvn_logp(lam, S_k, S_e, R)


def correlation(name: str, t: int, eta: float = 1.0):
    """A t x t correlation matrix with an LKJ(eta) prior, built from its canonical partial correlations.

    Lewandowski, Kurowicka and Joe (2009), the C-vine method: the partial correlations ``p_ki`` (k < i) of
    a C-vine, independent with ``(p_ki + 1) / 2 ~ Beta(b_k, b_k)``, ``b_k = eta + (t - 2 - k) / 2`` (k from 0),
    make the correlation matrix LKJ(eta); its Cholesky factor follows entry by entry, ``L_ik = p_ki sqrt(1 -
    sum_{l<k} L_il^2)`` and ``L_ii = sqrt(1 - sum_{l<i} L_il^2)``. Written elementwise, the graph has no
    linear-algebra Op (PyMC's LKJCorr transform has, and makes PyTensor look for a BLAS library).
    """
    import pymc as pm
    import pytensor.tensor as pt

    vine = [(k, i) for k in range(t - 1) for i in range(k + 1, t)]  # (level, variable) of each partial correlation
    b = np.array([eta + (t - 2 - k) / 2 for k, _ in vine])
    u = pm.Beta(f"{name}_partial", alpha=b, beta=b, shape=len(vine))
    p = 2 * u - 1
    index = {pair: position for position, pair in enumerate(vine)}
    L = [[pt.constant(0.0)] * t for _ in range(t)]
    L[0][0] = pt.constant(1.0)
    for i in range(1, t):
        used = pt.constant(0.0)
        for k in range(i):
            L[i][k] = p[index[(k, i)]] * pt.sqrt(1 - used)
            used = used + L[i][k] ** 2
        L[i][i] = pt.sqrt(1 - used)
    rows = [[sum((L[i][k] * L[j][k] for k in range(min(i, j) + 1)), start=0.0) for j in range(t)] for i in range(t)]
    return pt.stack([pt.stack(row) for row in rows])


def _per_trait_sd(model, name: str, prior):
    """``sqrt`` of a per-trait variance with a user's prior (dims trait)."""
    import pytensor.tensor as pt

    return pt.sqrt(prior.create(name, dims=TRAIT))


def variance_block(model, label: str, priors: dict):
    """``([Sigma_k of each kernel], Sigma_e)`` with the reporting Deterministics (h2, correlations, variances).

    One kernel: ``Sigma_g = D_g R_g D_g`` (``"default"``: ``D_g = diag(sqrt(h2 sigma2_p))``), ``Sigma_k =
    Sigma_g / c``. Several: each kernel its own ``Sigma_g,k`` (``"default"``: each trait's genetic variance
    ``h2 sigma2_p`` split over the kernels by a Dirichlet(1) share, and an LKJ(1) correlation ``R_g_<set>``
    per kernel), and the totals ``Sigma_g = sum_k Sigma_g,k`` reported beside them.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from ..names import KERNEL, SET_SHARE

    traits = model.traits
    t = len(traits)
    kernels = model.kernels
    several = len(kernels) > 1
    c = [float(k.c) for k in kernels]

    def suffix(k) -> str:
        return f"_{k.name}" if several else ""

    if label == "default" or (label == "custom" and priors["style"] == "h2"):
        h2_prior, p_prior = priors.get("h2"), priors.get("sigma2_p")
        h2 = h2_prior.create("h2", dims=TRAIT) if h2_prior else pm.Beta("h2", alpha=1.0, beta=1.0, dims=TRAIT)
        if p_prior:
            sigma2_p = p_prior.create("sigma2_p", dims=TRAIT)
        else:
            vy = np.array([np.var(model.records.trait_values(tr), ddof=1) for tr in traits])
            log_vy = model._constant("sigma2_p_prior_mu", np.log(vy), dims=TRAIT)
            sigma2_p = pm.LogNormal("sigma2_p", mu=log_vy, sigma=1.0, dims=TRAIT)
        genetic = h2 * sigma2_p
        if several:  # each trait's genetic variance split over the kernels, as one trait's set_share
            pm.modelcontext(None).add_coord(KERNEL, [k.name for k in kernels])
            share = pm.Dirichlet(SET_SHARE, a=np.ones((t, len(kernels))), dims=(TRAIT, KERNEL))
            sd_k = [pt.sqrt(genetic * share[:, r]) for r in range(len(kernels))]
        else:
            sd_k = [pt.sqrt(genetic)]
        sd_e = pt.sqrt((1 - h2) * sigma2_p)
        Sigma_g = [
            sd[:, None] * correlation(f"R_g{suffix(k)}", t, priors.get("eta_g", 1.0)) * sd[None, :]
            for k, sd in zip(kernels, sd_k, strict=True)
        ]
        R_e = correlation("R_e", t, priors.get("eta_e", 1.0))
        Sigma_e = sd_e[:, None] * R_e * sd_e[None, :]
    elif label == "custom":
        # each kernel's variance per trait (sigma2_g on G, sigma2_b on the marker effects), as for one trait
        Sigma_g = []
        for k, ck in zip(kernels, c, strict=True):
            sd = _per_trait_sd(model, k.variance_name, priors[k.variance_name])
            Sigma_g.append(ck * (sd[:, None] * correlation(f"R_g{suffix(k)}", t, priors["eta_g"]) * sd[None, :]))
        sd_e = _per_trait_sd(model, "sigma2_e", priors["sigma2_e"])
        Sigma_e = sd_e[:, None] * correlation("R_e", t, priors["eta_e"]) * sd_e[None, :]
    elif label == "bglr":
        from .covariance import inverse_wishart

        # On each kernel's own scale, as BGLR puts it on its K (RKHS) or on the marker effects (BRR).
        Sigma_g = []
        for k, ck in zip(kernels, c, strict=True):
            df_k, S_k = priors["Sigma_k"][k.variance_name]
            name = ("Sigma_b" if k.reports_equivalent else "Sigma_g") + suffix(k)
            Sigma_g.append(ck * inverse_wishart(name, df_k, S_k))
        df_e, S_e = priors["Sigma_e"]
        Sigma_e = inverse_wishart("Sigma_e", df_e, S_e)
    else:
        raise InputError(f"prior {label!r} is not available with several traits; use 'default', 'bglr' or a dict.")
    Sigma_k = [S / ck for S, ck in zip(Sigma_g, c, strict=True)]
    total = Sigma_g[0] if not several else pt.add(*Sigma_g)
    _report(model, total, Sigma_g, Sigma_k, Sigma_e)
    return Sigma_k, Sigma_e


def _report(model, total, Sigma_g: list, Sigma_k: list, Sigma_e) -> None:
    """The Deterministics of :func:`variance_names`: per trait, per pair, per kernel."""
    import pymc as pm
    import pytensor.tensor as pt

    traits = model.traits
    kernels = model.kernels
    several = len(kernels) > 1
    sd_g = pt.sqrt(pt.diag(total))
    sd_e = pt.sqrt(pt.diag(Sigma_e))
    for j, tr in enumerate(traits):
        phenotypic = total[j, j] + Sigma_e[j, j]
        pm.Deterministic(f"h2_{tr}", total[j, j] / phenotypic)
        pm.Deterministic(f"sigma2_g_{tr}", total[j, j])
        pm.Deterministic(f"sigma2_e_{tr}", Sigma_e[j, j])
        for k, S_g, S_k in zip(kernels, Sigma_g, Sigma_k, strict=True):
            if several:
                pm.Deterministic(f"h2_{k.name}_{tr}", S_g[j, j] / phenotypic)
                pm.Deterministic(f"sigma2_g_{k.name}_{tr}", S_g[j, j])
            if k.reports_equivalent:
                pm.Deterministic(f"{k.variance_name}_{tr}", S_k[j, j])
                pm.Deterministic(f"sigma2_g_equiv{'_' + k.name if several else ''}_{tr}", k.c * S_k[j, j])
    if model.has_enrichment:  # marker sets: each set's genetic variance per marker over the other sets' pooled
        m_total = sum(k.n_markers for k in kernels)
        for j, tr in enumerate(traits):
            for k, S_g in zip(kernels, Sigma_g, strict=True):
                rest = total[j, j] - S_g[j, j]
                pm.Deterministic(
                    f"enrichment_{k.name}_{tr}", (S_g[j, j] / k.n_markers) / (rest / (m_total - k.n_markers))
                )
    for a, b in pairs(traits):
        pair = f"{traits[a]}_{traits[b]}"
        pm.Deterministic(f"r_g_{pair}", total[a, b] / (sd_g[a] * sd_g[b]))
        pm.Deterministic(f"r_e_{pair}", Sigma_e[a, b] / (sd_e[a] * sd_e[b]))
        if several:
            for k, S_g in zip(kernels, Sigma_g, strict=True):
                pm.Deterministic(f"r_g_{k.name}_{pair}", S_g[a, b] / pt.sqrt(S_g[a, a] * S_g[b, b]))


def _missing_records(model):
    """The missing records as unknowns of the model: ``y_missing`` (flat on each trait's scale), or None."""
    import pymc as pm

    data = model.multitrait_data
    if not data.missing_rows.size:
        return None
    pm.modelcontext(None).add_coord("missing_record", np.arange(data.missing_rows.size))
    # Each unknown record on its trait's scale, flat: p(y_missing, theta | y) integrates to p(theta | y); the
    # Jacobian of z -> y_missing is constant.
    z = pm.Flat(Z_MISSING, dims="missing_record")
    return pm.Deterministic(
        "y_missing", data.fill[data.missing_traits] + data.scale[data.missing_traits] * z, dims="missing_record"
    )


def explicit_effects(model, kernels, Sigma_k: dict) -> dict:
    """Kernels' genetic values made explicit, non-centred: ``effects = Z C'`` (``C C' = Sigma_k``), ``g = L effects``.

    ``L`` is the kernel's latent factor over every individual (records first; ``L L' = K``): W for a marker
    set, whose effects are then b, else G's eigen-factor. One kernel keeps the names ``z``, ``b``, ``g``;
    several name theirs ``z_<set>``, ``b_<set>``, ``g_<set>`` (a marker set's markers on dim ``marker_<set>``).
    Returns ``{name: (effects, g, L)}``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from ..names import INDIVIDUAL, MARKER, TRAIT

    t = len(model.traits)
    several = len(model.kernels) > 1
    ctx = pm.modelcontext(None)
    ctx.add_coord(INDIVIDUAL, model.individuals.astype(str))
    out = {}
    for k in kernels:
        dim, coord, L = k.latent_factor(None)
        if several and k.markers is not None:
            dim = f"{MARKER}_{k.name}"
        ctx.add_coord(dim, coord)
        suffix = f"_{k.name}" if several else ""
        z = pm.Normal(f"z{suffix}", 0.0, 1.0, dims=(dim, TRAIT))
        effects = pt.dot(z, cholesky(Sigma_k[k.name], t).T)  # rows ~ N(0, Sigma_k)
        if k.markers is not None:
            effects = pm.Deterministic(f"b{suffix}", effects, dims=(dim, TRAIT))
        g = pm.Deterministic(f"g{suffix}", pt.dot(L, effects), dims=(INDIVIDUAL, TRAIT))
        out[k.name] = (effects, g, L)
    return out


def latent_likelihood(model, mu, B, Sigma_k: list, Sigma_e) -> dict:
    """The latent form: every kernel's g explicit (:func:`explicit_effects`), the records given g.

    M-BLUP has ``b = Z C'`` over the markers and ``g = W b``. The residual rows ``y_i - mu - B'x_i - g_i``
    are t-variate normal with covariance ``Sigma_e``; a missing record is integrated out of its row exactly (no
    unknown: the observed traits' block of ``Sigma_e``). Returns ``{}`` (nothing for the Gibbs step).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from ..names import INDIVIDUAL, TRAIT

    explicit = explicit_effects(model, model.kernels, dict(zip(model.set_names, Sigma_k, strict=True)))
    parts = [g for _, g, _ in explicit.values()]
    g = parts[0] if len(parts) == 1 else pm.Deterministic("g", pt.add(*parts), dims=(INDIVIDUAL, TRAIT))
    observed = ~np.isnan(model.records.Y)
    R = np.where(observed, model.records.Y, 0.0) - mu[None, :] - g[: model.n]
    if B is not None:
        R = R - pt.sum(model.records.X[:, :, None] * B[None, :, :], axis=1)
    # Given g the individuals are independent: a missing record integrates out of its row exactly, leaving the
    # observed traits' normal density with Sigma_e's block of them, one term per pattern of observed traits.
    patterns, which = np.unique(observed, axis=0, return_inverse=True)
    terms = []
    for p, pattern in enumerate(patterns):
        rows, traits = np.flatnonzero(which.ravel() == p), np.flatnonzero(pattern)
        S = Sigma_e[traits][:, traits]
        terms.append(batched_mvn_logp(np.zeros(rows.size), S, S, R[rows][:, traits]))
    pm.Potential("y", pt.sum(pt.stack(terms)))
    return {}


def likelihood(model, mu, B, Sigma_k: list, Sigma_e) -> dict:
    """The rotated records' log-likelihood, with the missing records as unknowns (module docstring).

    With several kernels the background (the kernel of largest rank) is integrated out in its eigenbasis and
    the others are explicit (:func:`explicit_effects`), entering the rotated records as ``U'L_k effects_k``.
    Returns what the Gibbs step for the missing records conditions on besides mu, B and the covariances:
    ``{"offset": sum of the explicit g at the individuals with a record, "offset_rotated": U' offset}``, or
    ``{}`` with one kernel.
    """
    import pymc as pm
    import pytensor.tensor as pt

    data = model.multitrait_data
    # pm.Data in a reusable model (every record present): another data set of this structure swaps them
    Y = model._constant("Y_star", data.Y, dims=("component", TRAIT))
    one = model._constant("one_star", data.one, dims="component")
    lam = model._constant("eigenvalues", data.lam, dims="component")
    R = Y - one[:, None] * mu[None, :]
    if B is not None:
        X = model._constant("X_star", data.X, dims=("component", "covariate"))
        R = R - pt.sum(X[:, :, None] * B[None, :, :], axis=1)  # X B, elementwise (no BLAS call)
    by_name = dict(zip(model.set_names, Sigma_k, strict=True))
    extra = {}
    if len(model.kernels) > 1:
        others = [k for k in model.kernels if k.name != model.background]
        explicit = explicit_effects(model, others, by_name)
        rotated = [pt.dot(data.vectors.T @ L[: model.n], effects) for effects, _, L in explicit.values()]
        extra["offset_rotated"] = rotated[0] if len(rotated) == 1 else pt.add(*rotated)
        R = R - extra["offset_rotated"]
        offset = [g[: model.n] for _, g, _ in explicit.values()]
        extra["offset"] = offset[0] if len(offset) == 1 else pt.add(*offset)
    y_missing = _missing_records(model)
    if y_missing is not None:
        from .ops import missing_shift

        # U[row, :]' (y_ij - fill_j) summed over the unknowns of each trait, cached between gradients
        _, row_index, U_rows = data.incomplete
        R = R + missing_shift(
            U_rows, row_index, data.missing_traits, data.n_traits, y_missing - data.fill[data.missing_traits]
        )
    background = by_name[model.background] if len(model.kernels) > 1 else Sigma_k[0]
    pm.Potential("y_rotated", batched_mvn_logp(lam, background, Sigma_e, R))
    return extra
