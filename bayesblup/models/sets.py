"""Several marker sets: ``y = mu + sum_k g_k + e`` with ``g_k ~ N(0, K_k sigma2_k)``, one term per set.

G-BLUP with several kernels (:class:`MultiGBLUP`, GFBLUP with a feature set and the rest) has
``K_k = G_k`` and ``sigma2_k = sigma2_g_<set>``; M-BLUP with several marker matrices
(:class:`MultiMBLUP`) has ``K_k = W_k W_k'`` and ``sigma2_k = sigma2_b_<set>``, with ``sigma2_g_equiv_<set> =
c_k sigma2_b_<set>`` (``c_k``: m_k, or the set's nu_p under ``centered``). With ``G_k = W_k W_k' / c_k``
the two are the same model, set by set.

One eigendecomposition no longer diagonalises the likelihood, since two kernels and the identity
have no common eigenbasis. The marginal form takes one of two exact paths (``path``, chosen per
problem by ``"auto"`` and recorded in the fit):

``"woodbury"``
    One kernel, the *background* (the one of largest rank), is eigendecomposed once, ``S K_b S =
    U diag(lam) U'``; the others enter as a low-rank update through factors ``F_k`` with ``F_k F_k' =
    S K_k S`` (``W_k`` itself for a small M-BLUP set; the eigenvectors of G_k for G-BLUP). In U's
    basis ``V = D + A Sigma A'`` with ``D = diag(sigma2_b lam + nu)``, ``A = U' F``, ``Sigma`` the sets'
    variances; the Woodbury identity and the matrix determinant lemma give the log-likelihood from
    the R x R matrix ``I + Sigma^1/2 A' D^-1 A`` (R the total rank of the small sets): O(n R + R^3)
    per gradient (:class:`~bayesblup.models.ops.Resolvent`). With a single small set, the
    GFBLUP case, that R x R work depends on theta only through two variance ratios and is
    interpolated once (:class:`~bayesblup.models.ops.Surface`): O(n) per gradient. Chosen
    when R <= n / 2, for one large background set and small feature sets (``m_small < n``), and when
    the noise is one number in U's basis.
``"dense"``
    ``V = sum_k sigma2_k S K_k S + diag(noise)`` and its Cholesky factor per gradient: O(n^3), for
    moderate n and any number of large sets, unequal record weights with a permanent environment
    included.

Records are reduced to weighted means per individual with the within-individual scatter as a
``pm.Potential`` exactly as in the single-kernel model (:mod:`bayesblup.models.base`). The
``latent`` form is the textbook one with explicit non-centred effects per set.

Genetic values per set and in total (and M-BLUP's marker effects) follow from the marginal form by
Matheron's rule, draw by draw (:mod:`bayesblup.inference.posterior_sets`).
"""

from __future__ import annotations

import time
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import InputError
from ..genotypes.relationship import Relationship, check_relationship
from ..genotypes.scaling import GenotypeMatrix
from ..linalg.spectral import DEFAULT_EIGEN_RTOL, RankDeficiencyWarning, Spectral, eigendecompose
from ..names import INDIVIDUAL, KERNEL, MARKER
from ..phenotypes import Records
from .base import BLUPModel, add_within_potential, as_records, within_terms
from .ops import Resolvent, Surface, dense_logp, surface_logp, woodbury_logp
from .priors import Prior, resolve_set_priors

__all__ = ["PATHS", "MultiGBLUP", "MultiMBLUP", "SetsModel"]

PATHS = ("auto", "woodbury", "dense")


def _quiet_eigendecompose(K: np.ndarray, *, rtol: float, name: str) -> Spectral:
    """Eigendecompose a kernel whose rank deficiency is expected (a set with fewer markers than individuals)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        return eigendecompose(K, rtol=rtol, name=name)


class SetsModel(BLUPModel):
    """Base class of :class:`MultiGBLUP` and :class:`MultiMBLUP`; not used directly."""

    prefix: ClassVar[str]  # "sigma2_g" | "sigma2_b"
    supports_reuse: ClassVar[bool] = False  # the likelihood Ops hold their arrays: no pm.Data to swap
    # BLUPModel.default_target_accept = 0.9 serves here too: at 0.8 a set with little variance left 5
    # divergent transitions in 4 x 1000 iterations on a simulated GFBLUP (n = 1000, h2_rest = 0.1).

    def __init__(self, records: Records, set_names, *, form, prior, eigen_rtol, permanent_environment, path):
        super().__init__(
            records, form=form, prior=prior, eigen_rtol=eigen_rtol, permanent_environment=permanent_environment
        )
        if path not in PATHS:
            raise InputError(f"path must be one of {', '.join(PATHS)}; got {path!r}.")
        self.set_names = list(set_names)
        if len(self.set_names) < 2:
            raise InputError(f"several marker sets need at least two; got {len(self.set_names)}.")
        self._path_option = path
        self._factors: dict[str, np.ndarray] = {}
        self._kernels: dict[str, np.ndarray] = {}
        self._ranks: dict[str, int] = {}
        self._set_spectra: dict[str, Spectral] = {}  # eigendecompositions behind factors, over every individual
        self._arrays = None

    @property
    def nuts_init(self) -> str:  # type: ignore[override]
        """A dense mass matrix for the marginal form, a diagonal one for the latent form.

        The sets' variances and h2 are correlated a posteriori,
        and with a handful of parameters the full matrix is cheap (measured at n = 1000: 7 leapfrog steps
        per draw instead of 12). The latent form has a parameter per individual and set, where a dense
        matrix would cost O(n^2) per step and be estimated from too few draws.
        """
        return "jitter+adapt_full" if self.form == "marginal" else "jitter+adapt_diag"

    # --- what a subclass supplies ------------------------------------------------------------
    def set_factor(self, name: str) -> float:
        """``c_k`` with ``sigma2_g_equiv_k = c_k sigma2_k`` (1 for G-BLUP)."""
        raise NotImplementedError

    def set_markers(self, name: str) -> int | None:
        """``m_k``, the markers of the set, if known."""
        raise NotImplementedError

    def set_msx(self, name: str) -> float:
        """BGLR's MSx of the set's term."""
        raise NotImplementedError

    def _all_factor(self, name: str) -> np.ndarray:
        """``L_k`` over every individual (records first) with ``L_k L_k' = K_k``."""
        raise NotImplementedError

    def _phenotyped_kernel(self, name: str) -> np.ndarray:
        """``K_k`` over the individuals with a record (n x n)."""
        raise NotImplementedError

    # --- kernels -------------------------------------------------------------------------------
    def variance_name(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    @property
    def kernel_variance(self) -> str:  # type: ignore[override]
        return self.prefix

    @property
    def factor(self) -> None:
        """No single factor: each set has its own (:meth:`set_factor`)."""
        return None

    def factor_all(self, name: str) -> np.ndarray:
        """``L_k`` over every individual (records first), computed once."""
        if name not in self._factors:
            t0 = time.perf_counter()
            self._factors[name] = self._all_factor(name)
            self._ranks[name] = min(self._factors[name].shape)
            self.timings["factors_s"] = self.timings.get("factors_s", 0.0) + time.perf_counter() - t0
        return self._factors[name]

    def scaled_kernel(self, name: str) -> np.ndarray:
        """``S K_k S`` over the individuals with a record, computed once (the dense path)."""
        if name not in self._kernels:
            K = self._phenotyped_kernel(name)
            if self.scale is not None:
                K = self.scale[:, None] * K * self.scale[None, :]
            self._kernels[name] = K
        return self._kernels[name]

    @property
    def widths(self) -> dict[str, int]:
        """Columns of each set's factor: its rank (G-BLUP) or marker count, at most the individuals."""
        return {name: self.factor_all(name).shape[1] for name in self.set_names}

    @property
    def background(self) -> str:
        """The set of largest rank: eigendecomposed on the Woodbury path."""
        widths = self.widths
        return max(self.set_names, key=lambda name: widths[name])

    @property
    def path(self) -> str:
        """``"latent"``, ``"woodbury"`` or ``"dense"`` (module docstring)."""
        if self.form == "latent":
            return "latent"
        low = sum(w for name, w in self.widths.items() if name != self.background)
        woodbury_ok = self.pe_path != "augmented"
        if self._path_option == "woodbury":
            if not woodbury_ok:
                raise InputError(
                    "path='woodbury' needs the residual variance of every individual mean to be equal (no permanent "
                    "environment, or equal total record weights); use path='dense' or 'auto'."
                )
            return "woodbury"
        if self._path_option == "dense":
            return "dense"
        return "woodbury" if woodbury_ok and low <= self.n // 2 else "dense"

    @property
    def spectral(self) -> Spectral:
        """Eigendecomposition of the background's ``S K_b S`` (the Woodbury path), computed once."""
        if self._spectral is None:
            t0 = time.perf_counter()
            name = self.background
            L = self.factor_all(name)[: self.n]
            reuse = self._set_spectra.get(name)
            if reuse is not None and self.scale is None and not len(self.records.unphenotyped):
                # The factor came from eigendecomposing this very matrix (K_b over the same individuals).
                self._spectral = reuse
                self.timings["eigendecomposition_s"] = time.perf_counter() - t0
                return reuse
            s = np.ones(self.n) if self.scale is None else self.scale
            F = s[:, None] * L
            # F F' with F = S L: the same matrix as S K_b S, without a second n x n kernel in memory.
            self._spectral = eigendecompose(F @ F.T, rtol=self.eigen_rtol, name=f"the background kernel ({name})")
            self.timings["eigendecomposition_s"] = time.perf_counter() - t0
        return self._spectral

    @property
    def arrays(self) -> dict:
        """The data of the marginal form, in the scaled (and, for Woodbury, rotated) space; computed once."""
        if self._arrays is None:
            rec = self.records
            s = np.ones(self.n) if self.scale is None else self.scale
            collapse = not rec.is_collapsible
            ybar = rec.individual_means(rec.y) if collapse else rec.y
            Xbar = None if rec.X is None else (rec.individual_means(rec.X) if collapse else rec.X)
            W = rec.total_weight
            out = {
                "y": s * ybar,
                "one": s.copy(),
                "X": None if Xbar is None else s[:, None] * Xbar,
                "scale": s,
                # noise of each scaled mean: sigma2_e * a_i + sigma2_pe * b
                "noise": (np.ones(self.n), 0.0) if not self.permanent_environment else (1.0 / W, 1.0),
                "within": within_terms(rec, scaled=self.scale is not None),
            }
            if self.path == "woodbury":
                sp = self.spectral
                U = sp.vectors
                out["scaled"] = {key: out[key] for key in ("y", "one", "X")}  # before the rotation
                out["U"] = U
                out["lam"] = sp.values
                out["y"], out["one"] = U.T @ out["y"], U.T @ out["one"]
                out["X"] = None if out["X"] is None else U.T @ out["X"]
                low = [name for name in self.set_names if name != self.background]
                out["low"] = low
                out["A"] = np.hstack([U.T @ (s[:, None] * self.factor_all(name)[: self.n]) for name in low])
                out["blocks"] = [self.widths[name] for name in low]
                out["resolvent"] = Resolvent(out["lam"], out["A"])  # shared by the likelihood and the posterior
                a = out["noise"][0]
                out["noise"] = (float(a[0]), out["noise"][1])  # one number on this path (checked in path)
            self._arrays = out
        return self._arrays

    @property
    def surface(self) -> Surface:
        """The interpolated R x R work of a single small set on the Woodbury path (built lazily, kept)."""
        data = self.arrays
        if "surface" not in data:
            columns = [data["y"], data["one"]] + ([] if data["X"] is None else list(data["X"].T))
            data["surface"] = Surface(data["resolvent"], data["lam"], data["A"], np.column_stack(columns))
        return data["surface"]

    # --- priors and variances ------------------------------------------------------------------
    @property
    def priors(self) -> tuple[str, dict[str, Prior]]:
        pe_msx = None
        if self.permanent_environment:
            counts = np.bincount(self.records.record_index, minlength=self.n)
            pe_msx = 1.0 - float((counts.astype(float) ** 2).sum()) / self.n_records**2
        msx = {self.variance_name(name): self.set_msx(name) for name in self.set_names}
        return resolve_set_priors(self._prior_spec, self.y, msx=msx, pe_msx=pe_msx)

    def _variance_block(self, label, priors):
        """``{set: sigma2_k}``, sigma2_pe (None without it) and sigma2_e, with h2, h2_<set>, and the rest."""
        import pymc as pm
        import pytensor.tensor as pt

        names = self.set_names
        c = {name: self.set_factor(name) for name in names}
        model = pm.modelcontext(None)
        model.add_coord(KERNEL, names)
        sigma2_pe = None
        genetic = {}
        if label == "default":
            h2 = priors["h2"].create("h2")
            total = priors["sigma2_p"].create("sigma2_p")
            a = float(priors["set_share"].parameters.get("a", 1.0))
            share = pm.Dirichlet("set_share", a=np.full(len(names), a), dims=KERNEL)
            rest = (1 - h2) * total
            if self.permanent_environment:
                pe_share = priors["pe_share"].create("pe_share")
                sigma2_pe = pm.Deterministic("sigma2_pe", pe_share * rest)
                rest = (1 - pe_share) * rest
            sigma2_e = pm.Deterministic("sigma2_e", rest)
            sigma2 = {}
            for k, name in enumerate(names):
                genetic[name] = h2 * total * share[k]
                sigma2[name] = pm.Deterministic(self.variance_name(name), genetic[name] / c[name])
        else:
            sigma2 = {name: priors[self.variance_name(name)].create(self.variance_name(name)) for name in names}
            if self.permanent_environment:
                sigma2_pe = priors["sigma2_pe"].create("sigma2_pe")
            sigma2_e = priors["sigma2_e"].create("sigma2_e")
            genetic = {name: c[name] * sigma2[name] for name in names}
        total_g = pt.add(*genetic.values())
        other = sigma2_e if sigma2_pe is None else sigma2_pe + sigma2_e
        if label != "default":
            pm.Deterministic("h2", total_g / (total_g + other))
        for name in names:
            pm.Deterministic(f"h2_{name}", genetic[name] / (total_g + other))
        if self.name == "mblup":
            for name in names:
                pm.Deterministic(f"sigma2_g_equiv_{name}", genetic[name])
        if self.permanent_environment:
            pm.Deterministic("repeatability", (total_g + sigma2_pe) / (total_g + other))
        markers = {name: self.set_markers(name) for name in names}
        if all(m is not None for m in markers.values()):
            m_total = sum(markers.values())
            for name in names:
                # genetic variance per marker of the set over that of all the other sets pooled
                rest_g = total_g - genetic[name]
                pm.Deterministic(
                    f"enrichment_{name}", (genetic[name] / markers[name]) / (rest_g / (m_total - markers[name]))
                )
        return sigma2, sigma2_pe, sigma2_e

    @property
    def has_enrichment(self) -> bool:
        return all(self.set_markers(name) is not None for name in self.set_names)

    @property
    def parameter_names(self) -> list[str]:
        names = ["h2", *(f"h2_{k}" for k in self.set_names)]
        if self.permanent_environment:
            names.append("repeatability")
        names += [self.variance_name(k) for k in self.set_names]
        if self.name == "mblup":
            names += [f"sigma2_g_equiv_{k}" for k in self.set_names]
        if self.has_enrichment:
            names += [f"enrichment_{k}" for k in self.set_names]
        if self.permanent_environment:
            names.append("sigma2_pe")
        names += ["sigma2_e", "mu"]
        return [*names, "beta"] if self.records.X is not None else names

    @property
    def _samples_excess(self) -> bool:
        return False  # unequal weights with a permanent environment take the dense path instead

    # --- likelihoods ---------------------------------------------------------------------------
    def _marginal_likelihood(self, mu, beta, sigma2, sigma2_pe, sigma2_e) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        t0 = time.perf_counter()
        data = self.arrays
        mean = data["one"] * mu
        if beta is not None:
            mean = mean + pt.dot(data["X"], beta)
        a, b = data["noise"]
        noise = a * sigma2_e if sigma2_pe is None else a * sigma2_e + b * sigma2_pe
        r = data["y"] - mean
        if self.path == "woodbury":
            low = data["low"]
            s_low = [sigma2[k] for k in low]
            if len(low) == 1:
                # One small set: the R x R work is interpolated over two variance ratios (O(n) per gradient).
                fixed = pt.atleast_1d(mu) if beta is None else pt.concatenate([pt.atleast_1d(mu), beta])
                logp = surface_logp(self.surface, fixed, sigma2[self.background], s_low[0], noise)
            else:
                logp = woodbury_logp(
                    data["resolvent"], data["lam"], data["A"], data["blocks"], r, sigma2[self.background], s_low, noise
                )
        else:
            s = pt.stack([sigma2[name] for name in self.set_names])
            logp = dense_logp([self.scaled_kernel(name) for name in self.set_names], r, s, noise * np.ones(self.n))
        # A Potential, not an observed variable: the log-likelihood of the (scaled) individual means.
        pm.Potential("y_marginal", logp)
        if data["within"] is not None:
            add_within_potential(data["within"], beta, sigma2_e)
        self.timings["marginal_setup_s"] = time.perf_counter() - t0

    def _latent_genetic_values(self, sigma2):
        raise NotImplementedError

    def _result_class(self):
        from ..results.sets import SetsFit

        return SetsFit


def _common_ids(parts: dict, what: str, symbol: str) -> np.ndarray:
    """The individual IDs every set's matrix shares, in the same order; refused otherwise."""
    if not parts:
        raise InputError(f"several marker sets need at least two; got none ({symbol} per set is empty).")
    ids = next(iter(parts.values())).ids
    for name, part in parts.items():
        if part.ids.size != ids.size or (part.ids != ids).any():
            raise InputError(
                f"{what} of set {name!r} has other individuals (or another order) than the first set's; build "
                f"every set's {symbol} from the same genotypes."
            )
    return ids


class MultiGBLUP(SetsModel):
    """G-BLUP with one relationship matrix per marker set (GFBLUP for a feature set and the rest).

    Parameters
    ----------
    y : pandas.Series or Records
        Records indexed by individual ID (NA = no record).
    relationships : dict of str to Relationship
        ``{set: G_k}`` over the same individuals, from :func:`bayesblup.relationships_by_set`.
    path : {"auto", "woodbury", "dense"}
        The marginal form's exact path (module docstring); ``"auto"`` picks Woodbury for one large
        set plus small ones.
    form, prior, eigen_rtol, fixed, weights, permanent_environment, repeated
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

    name: ClassVar[str] = "gblup"
    prefix: ClassVar[str] = "sigma2_g"

    def __init__(
        self,
        y: pd.Series | Records,
        relationships: dict[str, Relationship],
        *,
        form: str = "marginal",
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
        permanent_environment: bool = False,
        repeated: bool = False,
        path: str = "auto",
    ):
        if not isinstance(relationships, dict) or not all(isinstance(G, Relationship) for G in relationships.values()):
            raise InputError("relationships must be {set: Relationship}, e.g. from bayesblup.relationships_by_set.")
        for name, G in relationships.items():
            check_relationship(G.matrix, G.ids, f"relationship matrix of set {name!r}")
        ids = _common_ids(relationships, "the relationship matrix", "G")
        first = next(iter(relationships.values()))
        records = as_records(y, ids, fixed=fixed, weights=weights, repeated=repeated or permanent_environment)
        super().__init__(
            records,
            list(relationships),
            form=form,
            prior=prior,
            eigen_rtol=eigen_rtol,
            permanent_environment=permanent_environment,
            path=path,
        )
        self.relationships = relationships
        self._p = first.index(records.ids)
        self._u = first.index(records.unphenotyped)
        self._every = np.concatenate([self._p, self._u])

    def set_factor(self, name: str) -> float:
        return 1.0

    def set_markers(self, name: str) -> int | None:
        return self.relationships[name].n_markers

    def set_msx(self, name: str) -> float:
        """BGLR RKHS's ``mean(d)``: trace(G_k) / rank(G_k) over the individuals with a record."""
        G = self.relationships[name].matrix[np.ix_(self._p, self._p)]
        return float(np.trace(G)) / max(self.widths[name], 1)

    def _all_factor(self, name: str) -> np.ndarray:
        G = np.asarray(self.relationships[name].matrix[np.ix_(self._every, self._every)], dtype=np.float64)
        sp = self._set_spectra[name] = _quiet_eigendecompose(G, rtol=self.eigen_rtol, name=f"G of set {name!r}")
        keep = sp.values > 0
        return sp.vectors[:, keep] * np.sqrt(sp.values[keep])

    def _phenotyped_kernel(self, name: str) -> np.ndarray:
        return np.asarray(self.relationships[name].matrix[np.ix_(self._p, self._p)], dtype=np.float64)

    @property
    def n_markers(self) -> int | None:
        counts = [self.set_markers(name) for name in self.set_names]
        return None if None in counts else int(sum(counts))

    @property
    def scaling(self) -> str:
        return next(iter(self.relationships.values())).scaling

    @property
    def denominator(self) -> dict:
        return {name: G.denominator for name, G in self.relationships.items()}

    @property
    def relationship_diagonal(self) -> np.ndarray:
        """``sum_k G_k,ii`` per individual is not used; see :meth:`set_diagonal`."""
        raise NotImplementedError

    def set_diagonal(self, name: str) -> np.ndarray:
        """``K_k,ii`` for every individual (records first)."""
        return np.diag(self.relationships[name].matrix)[self._every]

    def _latent_genetic_values(self, sigma2):
        import pymc as pm
        import pytensor.tensor as pt

        model = pm.modelcontext(None)
        parts = []
        for name in self.set_names:
            L = self.factor_all(name)
            model.add_coord(f"factor_{name}", np.arange(L.shape[1]))
            z = pm.Normal(f"z_{name}", 0.0, 1.0, dims=f"factor_{name}")
            parts.append(pm.Deterministic(f"g_{name}", pt.sqrt(sigma2[name]) * pt.dot(L, z), dims=INDIVIDUAL))
        return pm.Deterministic("g", pt.add(*parts), dims=INDIVIDUAL)


class MultiMBLUP(SetsModel):
    """M-BLUP with one marker matrix per set: ``y = mu + sum_k W_k b_k + e``, ``b_k ~ N(0, I sigma2_b_<set>)``.

    Parameters
    ----------
    y : pandas.Series or Records
        Records indexed by individual ID (NA = no record).
    genotypes : dict of str to GenotypeMatrix
        ``{set: W_k}`` over the same individuals, from :func:`bayesblup.genotype_matrices_by_set`.
    path, form, prior, eigen_rtol, fixed, weights, permanent_environment, repeated
        As for :class:`MultiGBLUP`.
    """

    name: ClassVar[str] = "mblup"
    prefix: ClassVar[str] = "sigma2_b"

    def __init__(
        self,
        y: pd.Series | Records,
        genotypes: dict[str, GenotypeMatrix],
        *,
        form: str = "marginal",
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed: pd.DataFrame | None = None,
        weights: pd.Series | None = None,
        permanent_environment: bool = False,
        repeated: bool = False,
        path: str = "auto",
    ):
        if not isinstance(genotypes, dict) or not all(isinstance(W, GenotypeMatrix) for W in genotypes.values()):
            raise InputError("genotypes must be {set: GenotypeMatrix}, e.g. from bayesblup.genotype_matrices_by_set.")
        ids = _common_ids(genotypes, "W", "W")
        records = as_records(y, ids, fixed=fixed, weights=weights, repeated=repeated or permanent_environment)
        super().__init__(
            records,
            list(genotypes),
            form=form,
            prior=prior,
            eigen_rtol=eigen_rtol,
            permanent_environment=permanent_environment,
            path=path,
        )
        position = {name: i for i, name in enumerate(ids)}
        every = np.array([position[i] for i in self.individuals], dtype=np.intp)
        self.genotypes = genotypes
        self.W = {name: np.ascontiguousarray(W.values[every], dtype=np.float64) for name, W in genotypes.items()}

    def set_factor(self, name: str) -> float:
        return float(self.genotypes[name].scaling.denominator)

    def set_markers(self, name: str) -> int:
        return int(self.genotypes[name].values.shape[1])

    def set_msx(self, name: str) -> float:
        """Sum of the column variances of W_k (divisor n), BGLR BRR's MSx, over the individuals with a record."""
        W = self.W[name][: self.n]
        return float(((W**2).mean(0) - W.mean(0) ** 2).sum())

    def _all_factor(self, name: str) -> np.ndarray:
        W = self.W[name]
        if W.shape[1] <= W.shape[0]:
            return W  # b_k itself is the factor's coefficient vector
        # More markers than individuals: the same kernel from an n x n eigendecomposition of W W'.
        sp = self._set_spectra[name] = _quiet_eigendecompose(
            W @ W.T, rtol=self.eigen_rtol, name=f"W W' of set {name!r}"
        )
        keep = sp.values > 0
        return sp.vectors[:, keep] * np.sqrt(sp.values[keep])

    def _phenotyped_kernel(self, name: str) -> np.ndarray:
        W = self.W[name][: self.n]
        return W @ W.T

    @property
    def n_markers(self) -> int:
        return int(sum(self.set_markers(name) for name in self.set_names))

    @property
    def scaling(self) -> str:
        return next(iter(self.genotypes.values())).scaling.scaling

    @property
    def denominator(self) -> dict:
        return {name: self.set_factor(name) for name in self.set_names}

    @property
    def relationship_diagonal(self) -> np.ndarray:
        raise NotImplementedError

    def set_diagonal(self, name: str) -> np.ndarray:
        """``K_k,ii = sum_j W_k,ij^2`` for every individual (records first)."""
        return (self.W[name] ** 2).sum(1)

    def _latent_genetic_values(self, sigma2):
        import pymc as pm
        import pytensor.tensor as pt

        model = pm.modelcontext(None)
        markers = np.concatenate([self.genotypes[name].markers.astype(str) for name in self.set_names])
        model.add_coord(MARKER, markers)
        z = pm.Normal("z", 0.0, 1.0, dims=MARKER)
        sd = pt.concatenate([pt.repeat(pt.sqrt(sigma2[name])[None], self.set_markers(name)) for name in self.set_names])
        b = pm.Deterministic("b", sd * z, dims=MARKER)
        parts, start = [], 0
        for name in self.set_names:
            stop = start + self.set_markers(name)
            parts.append(pm.Deterministic(f"g_{name}", pt.dot(self.W[name], b[start:stop]), dims=INDIVIDUAL))
            start = stop
        return pm.Deterministic("g", pt.add(*parts), dims=INDIVIDUAL)
