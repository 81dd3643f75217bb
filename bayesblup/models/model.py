"""One model over a list of kernels: ``y = mu + X beta + sum_k g_k + e``, as a PyMC model.

Each kernel (:mod:`bayesblup.kernels`) adds ``g_k ~ N(0, sigma2_k K_k)``: ``K = G`` for G-BLUP,
``K = W W'`` for M-BLUP (``g = W b``, ``b ~ N(0, I sigma2_b)``), and ``c_k sigma2_k`` is the genetic
variance on G's scale (``sigma2_g_equiv`` for M-BLUP: with ``G = W W' / c`` the two are one model,
eq 7 of S. M. Høj-Edwards and P. Sørensen, "Linear Mixed Models used in Quantitative Genomics", 2022).
The model is built in one of two forms:

``marginal`` (default)
    g is integrated out. With **one kernel**, G is eigendecomposed once, y rotated, and the likelihood
    is diagonal (:class:`~bayesblup.models.data.SpectralData`): NUTS samples mu and two variances at
    O(n) per gradient. With **several kernels** no one eigenbasis diagonalises the likelihood; it
    takes one of two exact paths (``path``, chosen by ``"auto"`` and recorded in the fit):

    ``"woodbury"``
        The kernel of largest rank, the *background*, is eigendecomposed once; the others enter as
        a low-rank update through factors ``F_k`` with ``F_k F_k' = S K_k S``; the Woodbury identity
        and the matrix determinant lemma give the log-likelihood from an R x R matrix (R the total
        rank of the small kernels), O(n R + R^3) per gradient, or O(n) for a single small kernel
        (:mod:`bayesblup.linalg.woodbury`). Chosen when R <= n / 2 and the noise is one number in
        the background's basis.
    ``"dense"``
        ``V = sum_k sigma2_k S K_k S + diag(noise)`` and its Cholesky factor per gradient: O(n^3).

    With one kernel given as a factor W with fewer columns m than records n (M-BLUP's W, or G-BLUP's ``G =
    W W' / denominator`` given W), the path is ``"low-rank"`` by default: the decomposition goes through the m x m
    ``W'S^2W`` (:class:`~bayesblup.linalg.spectral.ThinSpectral`), the likelihood is diagonal over its r non-zero
    eigenvalues plus the null space's residual term (:class:`~bayesblup.models.data.SpectralData`), exactly the
    dense likelihood, and no n x n matrix is formed. ``path="dense"`` takes the full eigendecomposition instead.

    Genetic values (per kernel and in total) and marker effects follow exactly from ``g | y, theta``
    draw by draw (:mod:`bayesblup.inference.posterior`).
``latent``
    The textbook form with ``g`` (or ``b``) explicit and non-centred: the teaching view and the
    test oracle.

Records (:class:`~bayesblup.Records`) may be repeated (Z), weighted (``Var(e) = D sigma2_e``, ``D =
diag(1/w)``) and carry a permanent-environment effect ``p ~ N(0, I sigma2_pe)`` per individual. The
marginal form then works on sufficient statistics: per individual the weighted mean record ``ybar_i``
with total weight ``W_i``, for which

    Var(ybar) = sum_k sigma2_k K_k + sigma2_pe I + sigma2_e diag(1/W).

What the means leave out, the within-individual scatter ``sum_j w_j (y_j - ybar_i - (x_j - xbar_i)
beta)^2``, enters as a ``pm.Potential`` with its normalising constants, so the log-likelihood is that
of the records exactly. With one kernel, three cases (``pe_path``):

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

Several traits (:attr:`BLUPModel.traits`, a DataFrame of records) are :mod:`bayesblup.models.multitrait`'s: one
kernel spectral, several with the background integrated out and the others explicit (path ``"explicit"``).
``family`` is the likelihood: ``"gaussian"``, or the threshold (probit liability) model of a binary or ordinal
trait (:mod:`bayesblup.models.threshold`), which has no marginal form and samples g non-centred in the eigenbasis.
A model that can fit itself is :class:`bayesblup.fitting.BLUPModel`'s subclasses ``GBLUP`` and friends.
"""

from __future__ import annotations

import copy
import itertools
import time

import numpy as np

from ..errors import InputError
from ..kernels import Kernel, as_kernel, kernel_ids
from ..linalg.spectral import DEFAULT_EIGEN_RTOL, Spectral, ThinSpectral, eigendecompose, thin_eigendecompose
from ..linalg.woodbury import Resolvent
from ..names import (
    BETA,
    H2,
    INDIVIDUAL,
    KERNEL,
    MARKER,
    MU,
    PE_SHARE,
    PHENOTYPED,
    RECORD,
    REPEATABILITY,
    SET_SHARE,
    SIGMA2_E,
    SIGMA2_G_EQUIV,
    SIGMA2_P,
    SIGMA2_PE,
    TRAIT,
    B,
    G,
)
from ..phenotypes import Records, TraitRecords, as_records
from . import multitrait
from .data import (
    KernelsData,
    MarkerRows,
    MultiTraitData,
    SpectralData,
    add_within_potential,
    kernels_means,
    within_terms,
)
from .ops import dense_logp, surface_logp, woodbury_logp
from .priors import Prior, resolve_multitrait_priors, resolve_priors, resolve_threshold_priors

__all__ = ["FAMILIES", "FORMS", "METHODS", "PATHS", "BLUPModel"]

FORMS = ("marginal", "latent")
METHODS = ("nuts", "map", "quadrature")
PATHS = ("auto", "woodbury", "dense", "low-rank")
#: Likelihood families. The threshold models (binary, ordinal; :mod:`bayesblup.models.threshold`) have no
#: marginal form (no Gaussian integral removes g): they take the latent form, g non-centred in the eigenbasis.
FAMILIES = ("gaussian", "binary", "ordinal")
# A threshold model's gradient multiplies z by the n x rank factor of G (or W) and back: past this many entries
# the factor is held in float32, which halves the memory traffic that sets the cost of a gradient (measured at
# n = 2000: 1.6x faster draws); its relative error, ~1e-7, is far below any Monte Carlo error.
FLOAT32_FACTOR_SIZE = 1_000_000


class BLUPModel:
    """One model over a list of kernels (module docstring); build it through GBLUP, MBLUP, MultiGBLUP, MultiMBLUP.

    Parameters
    ----------
    y : pandas.Series, pandas.DataFrame, Records or TraitRecords
        Records indexed by individual ID (NA = no record), or records already matched; a DataFrame of
        several traits (one column each) fits them jointly (:mod:`bayesblup.models.multitrait`).
    kernels : list of Kernel, Relationship or GenotypeMatrix, or dict of str to them
        One genetic term each; a dict names them (marker sets). Every kernel must hold the same
        individuals in the same order.
    form : {"marginal", "latent"}, optional
        By default ``"marginal"`` for a Gaussian trait and ``"latent"`` (the only form) for a binary or ordinal one.
    prior : {"default", "bglr"} or dict
        See :mod:`bayesblup.models.priors`.
    eigen_rtol : float
        Eigenvalues below this fraction of the largest are treated as zero.
    fixed, weights, permanent_environment, repeated
        As for :class:`~bayesblup.GBLUP`.
    path : {"auto", "woodbury", "dense", "low-rank"}
        The marginal form's path: with several kernels ``"woodbury"`` or ``"dense"``; with one kernel given as a
        factor W of fewer columns than records ``"low-rank"`` (``"auto"`` takes it) or ``"dense"`` (the full
        eigendecomposition).
    family : {"gaussian", "binary", "ordinal"}
        The likelihood: Gaussian records, or the threshold (probit liability) model of a binary or ordinal
        trait (:mod:`bayesblup.models.threshold`).
    prevalence : float, optional
        A binary trait's population prevalence: ``h2_observed_population`` reports the observed-scale
        heritability at it, beside ``h2_observed`` at the sample's.
    """

    #: NUTS's target acceptance. 0.9 rather than PyMC's 0.8: when the posterior of h2 has mass near 0 the
    #: curvature in logit(h2) changes along the chain, and 0.8 left a divergent transition in 4 x 1000 draws
    #: of a simulated n = 80 fit (none at 0.9, for a few percent more gradient evaluations). Several kernels
    #: (a set with little variance narrows the posterior's neck; 5 divergences at 0.8 on a simulated GFBLUP)
    #: and a sampled residual excess (pe_path == "augmented") need the same.
    default_target_accept: float = 0.9
    #: The threshold models' (binary, ordinal) target acceptance: PyMC's 0.8. Their gradient costs O(n^2) (G's
    #: factor), and 0.9 doubled the leapfrog steps a draw (31 against 15 at n = 2000) for no divergence that
    #: 0.8 showed (wheat's binary and ordinal cuts; simulated n = 1500 at h2 0.2 and 0.5, tests/models/
    #: test_threshold_coverage_slow.py).
    threshold_target_accept: float = 0.8

    def __init__(
        self,
        y,
        kernels,
        *,
        form: str | None = None,
        prior="default",
        eigen_rtol: float = DEFAULT_EIGEN_RTOL,
        fixed=None,
        weights=None,
        permanent_environment: bool = False,
        repeated: bool = False,
        path: str = "auto",
        family: str = "gaussian",
        prevalence: float | None = None,
    ):
        if family not in FAMILIES:
            raise InputError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}.")
        if form is None:
            form = "marginal" if family == "gaussian" else "latent"
        if form not in FORMS:
            raise InputError(f"form must be one of {', '.join(FORMS)}; got {form!r}.")
        if family != "gaussian" and form != "latent":
            raise InputError(
                f"family={family!r} has no marginal form (no Gaussian integral removes g from a threshold model): "
                "leave form unset, or give form='latent'."
            )
        if not 0 < eigen_rtol < 1:
            raise InputError(f"eigen_rtol must lie in (0, 1), got {eigen_rtol}.")
        if path not in PATHS:
            raise InputError(f"path must be one of {', '.join(PATHS)}; got {path!r}.")
        sources = _kernel_list(kernels)
        ids = kernel_ids(sources)
        records = as_records(y, ids, fixed=fixed, weights=weights, repeated=repeated or permanent_environment)
        if not isinstance(records, Records | TraitRecords):
            raise InputError("records must come from bayesblup.match_records(...) (IDs matched to genotypes).")
        if isinstance(records, TraitRecords):
            _check_multitrait(records, sources, permanent_environment=permanent_environment, path=path)
        self._categories = None
        if family != "gaussian":
            self._categories = _check_threshold(records, sources, family, prevalence=prevalence)
        elif prevalence is not None:
            raise InputError("prevalence applies to family='binary' (the observed-scale h2 of a 0/1 trait).")
        self.prevalence = None if prevalence is None else float(prevalence)
        self.records = records
        self.form = form
        self.eigen_rtol = eigen_rtol
        self.family = family
        self.permanent_environment = bool(permanent_environment)
        if self.permanent_environment and records.individual is None:
            raise InputError(
                "permanent_environment (--permanent-environment) needs repeated records (several per individual); "
                "with one record each it cannot be told apart from the residual. Drop the option, or give the "
                "repeated records (repeated=True; --repeated-records) of a file with several rows per individual."
            )
        self.kernels: list[Kernel] = [k.bind(records.ids, records.unphenotyped, eigen_rtol=eigen_rtol) for k in sources]
        self._path_option = path
        if path == "low-rank":
            why = self._low_rank_refusal()
            if why:
                raise InputError(f"path='low-rank' is not available here: {why}; use path='auto' or 'dense'.")
        self._prior_spec = prior
        self._spectral: Spectral | None = None
        self._spectral_data: SpectralData | None = None
        self._kernels_data: KernelsData | None = None
        self._multitrait_data: MultiTraitData | None = None
        self.multitrait_parameters: dict | None = None  # set by the multi-trait build: mu, B, Sigma_k, Sigma_e tensors
        self._model = None
        self._built_names: frozenset[str] | None = None
        self.prior_label: str | None = None
        self.timings: dict[str, float] = {}

    # --- what the model is ----------------------------------------------------------------------
    @property
    def single(self) -> bool:
        """One kernel: the spectral path."""
        return len(self.kernels) == 1

    @property
    def name(self) -> str:
        """``"gblup"``, ``"mblup"`` (every kernel of that kind) or ``"mixed"``."""
        labels = {k.model_label for k in self.kernels}
        return labels.pop() if len(labels) == 1 else "mixed"

    @property
    def traits(self) -> tuple[str, ...]:
        """The traits: one, or several for a multi-trait model (:mod:`bayesblup.models.multitrait`)."""
        if isinstance(self.records, TraitRecords):
            return self.records.traits
        return (self.records.trait,)

    @property
    def multi_trait(self) -> bool:
        return len(self.traits) > 1

    @property
    def threshold(self) -> bool:
        """A binary or ordinal trait: the threshold model (:mod:`bayesblup.models.threshold`)."""
        return self.family != "gaussian"

    @property
    def categories(self):
        """A threshold family's records as categories (:class:`~bayesblup.models.threshold.Categories`), else None."""
        return self._categories

    @property
    def set_names(self) -> list[str]:
        return [k.name for k in self.kernels]

    def kernel(self, name: str) -> Kernel:
        for k in self.kernels:
            if k.name == name:
                return k
        raise KeyError(name)

    def variance_name(self, name: str) -> str:
        return self.kernel(name).variance_name

    def set_factor(self, name: str) -> float:
        """``c_k`` with ``sigma2_g_equiv_k = c_k sigma2_k`` (1 for a relationship)."""
        return self.kernel(name).c

    def set_msx(self, name: str) -> float:
        """BGLR's MSx of the kernel ``name``."""
        return self._msx(self.kernel(name))

    def set_markers(self, name: str) -> int | None:
        return self.kernel(name).n_markers

    @property
    def only(self) -> Kernel:
        """The model's one kernel; refused with several."""
        if not self.single:
            raise InputError(f"this model has {len(self.kernels)} kernels ({', '.join(self.set_names)}); name one.")
        return self.kernels[0]

    @property
    def kernel_variance(self) -> str:
        """``sigma2_g`` or ``sigma2_b`` (the base name shared by the kernels' variances)."""
        return self.kernels[0].variance_base

    @property
    def factor(self) -> float:
        """The one kernel's ``c`` (``K = c G``, ``sigma2_g_equiv = c sigma2_k``)."""
        return self.only.c

    @property
    def msx(self) -> float:
        """BGLR's MSx of the one kernel."""
        return self._msx(self.only)

    def _msx(self, kernel: Kernel) -> float:
        if self.single:
            sp = self.spectral
            return kernel.msx(sp.rank, sp if self.scale is None else None)
        return kernel.msx(self.widths[kernel.name])

    @property
    def relationship_matrix(self) -> np.ndarray:
        """G of the one kernel over the individuals with a record (``K / c``)."""
        return self.only.relationship_matrix()

    @property
    def targets(self) -> dict[str, tuple[np.ndarray | MarkerRows, np.ndarray]]:
        """The one kernel's targets ``{name: (M, v)}`` (Kernel.targets); in marker space on the low-rank path."""
        if self.form == "marginal" and self.low_rank:
            return {name: (MarkerRows(R), v) for name, (R, v) in self.only.thin_targets().items()}
        return self.only.targets()

    @property
    def n_markers(self) -> int | None:
        counts = [k.n_markers for k in self.kernels]
        return None if None in counts else int(sum(counts))

    @property
    def scaling(self) -> str:
        return self.kernels[0].scaling

    @property
    def denominator(self):
        if self.single:
            return self.kernels[0].denominator
        return {k.name: k.denominator for k in self.kernels}

    @property
    def has_enrichment(self) -> bool:
        return not self.single and all(k.n_markers is not None for k in self.kernels)

    # --- records -------------------------------------------------------------------------------
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
        """``sqrt(W_i)``, by which the kernels are rescaled (module docstring); None where they are not."""
        if self.multi_trait or self.records.is_collapsible or self.permanent_environment:
            return None  # with p, S would put sigma2_pe diag(W) in the kernel's basis: not diagonal
        return np.sqrt(self.records.total_weight)

    @property
    def pe_path(self) -> str:
        """``"none"``, ``"diagonal"`` or ``"augmented"`` (module docstring)."""
        if not self.permanent_environment:
            return "none"
        W = self.records.total_weight
        return "diagonal" if np.allclose(W, W[0], rtol=1e-12, atol=0) else "augmented"

    # --- linear algebra, once per model ----------------------------------------------------------
    @property
    def widths(self) -> dict[str, int]:
        """Columns of each kernel's factor: its rank (G) or marker count, at most the individuals."""
        out = {}
        for k in self.kernels:
            t0 = time.perf_counter()
            fresh = "L" not in k._cache
            out[k.name] = k.factor_all().shape[1]
            if fresh:
                self.timings["factors_s"] = self.timings.get("factors_s", 0.0) + time.perf_counter() - t0
        return out

    @property
    def background(self) -> str:
        """The kernel of largest rank: eigendecomposed on the Woodbury path."""
        widths = self.widths
        return max(self.set_names, key=lambda name: widths[name])

    def _low_rank_refusal(self) -> str | None:
        """Why the low-rank path cannot be taken (None where it can)."""
        if not self.single:
            return "it is the one-kernel path (several kernels take the Woodbury or dense path)"
        if self.multi_trait:
            return "several traits take the dense eigendecomposition"
        factor = self.kernels[0].thin_factor()
        if factor is None:
            return "the kernel is a relationship matrix; give G's factor W instead (bayesblup.genotype_matrix)"
        if factor[0].shape[1] >= self.n:
            return f"W has {factor[0].shape[1]} markers, not fewer than the {self.n} individuals with a record"
        if self.pe_path == "augmented":
            return "a permanent environment with unequal total record weights samples an n-vector (dense path)"
        return None

    @property
    def low_rank(self) -> bool:
        """Whether the one kernel is decomposed thin, through ``W'S^2W`` (m x m; module docstring)."""
        return self._path_option in ("auto", "low-rank") and self._low_rank_refusal() is None

    @property
    def path(self) -> str:
        """``"spectral"`` or ``"low-rank"`` (one kernel), ``"latent"``, ``"woodbury"``, ``"dense"`` (module doc)."""
        if self.form == "latent":
            return "latent"
        if self.single:
            return "low-rank" if self.low_rank else "spectral"
        if self.multi_trait:  # the background kernel integrated out, the others explicit (_check_multitrait)
            return "explicit"
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
    def spectral(self) -> Spectral | ThinSpectral:
        """The eigendecomposition behind the marginal form, computed once.

        One kernel: ``S K S`` (K itself with one unweighted record per individual), thin on the low-rank path.
        Several: the background's ``S K_b S`` (the Woodbury path).
        """
        if self._spectral is None:
            t0 = time.perf_counter()
            self._spectral = self._decompose()
            self.timings["eigendecomposition_s"] = time.perf_counter() - t0
        return self._spectral

    def _decompose(self) -> Spectral:
        if self.single and self.low_rank:
            kernel = self.kernels[0]
            W, a = kernel.thin_factor()
            label = "G" if kernel.markers is None else "W W' / c"
            if self.scale is not None:
                label = f"S {label} S (rescaled by the root total record weights)"
            return thin_eigendecompose(W, row_scale=self.scale, coef=a, rtol=self.eigen_rtol, name=label)
        if self.single:
            kernel = self.kernels[0]
            K, label = kernel.relationship_matrix(), kernel.label
            if self.scale is not None:  # S K S: the weights rescale K before the eigendecomposition
                K = self.scale[:, None] * K * self.scale[None, :]
                label = f"S {label} S (G rescaled by the root total record weights)"
            return eigendecompose(K, rtol=self.eigen_rtol, name=label)
        background = self.kernel(self.background)
        L = background.factor_all()[: self.n]
        if background.spectrum is not None and self.scale is None and not len(self.records.unphenotyped):
            # The factor came from eigendecomposing this very matrix (K_b over the same individuals).
            return background.spectrum
        s = np.ones(self.n) if self.scale is None else self.scale
        F = s[:, None] * L
        # F F' with F = S L: the same matrix as S K_b S, without a second n x n kernel in memory.
        return eigendecompose(F @ F.T, rtol=self.eigen_rtol, name=f"the background kernel ({self.background})")

    @property
    def spectral_data(self) -> SpectralData:
        """One kernel's marginal form in the eigenbasis (:class:`SpectralData`), computed once."""
        if self._spectral_data is None:
            self._spectral_data = SpectralData.build(
                self.records, self.spectral, c=self.factor, scale=self.scale, pe_path=self.pe_path
            )
        return self._spectral_data

    @property
    def kernels_data(self) -> KernelsData:
        """Several kernels' marginal form (:class:`KernelsData`), computed once."""
        if self._kernels_data is None:
            y, one, X, s, noise = kernels_means(self.records, self.scale, self.permanent_environment)
            path = self.path
            data = KernelsData(
                path=path,
                names=self.set_names,
                y=y,
                one=one,
                X=X,
                scale=s,
                noise=noise,
                within=None,
                effects={k.name: k.effects_factor() for k in self.kernels},
                marker_effects=[k.name for k in self.kernels if k.markers is not None],
            )
            data.within = within_terms(self.records, scaled=self.scale is not None)
            if path == "woodbury":
                sp = self.spectral
                data.background = self.background
                data.low = [name for name in self.set_names if name != self.background]
                data.U, data.lam = sp.vectors, sp.values
                data.A = np.hstack(
                    [sp.vectors.T @ (s[:, None] * self.kernel(n).factor_all()[: self.n]) for n in data.low]
                )
                data.blocks = [self.widths[name] for name in data.low]
                data.resolvent = Resolvent(data.lam, data.A)  # shared by the likelihood and the posterior
            else:
                for k in self.kernels:
                    K = k.matrix()
                    data.kernels[k.name] = K if self.scale is None else self.scale[:, None] * K * self.scale[None, :]
            self._kernels_data = data
        return self._kernels_data

    @property
    def multitrait_data(self) -> MultiTraitData:
        """Several traits' marginal form in the kernel's eigenbasis (:class:`MultiTraitData`), computed once."""
        if self._multitrait_data is None:
            # one kernel: the eigenvalues of G, times c; several: the background's own decomposition, on its K
            c = self.factor if self.single else 1.0
            self._multitrait_data = MultiTraitData.build(self.records, self.spectral, c=c)
        return self._multitrait_data

    @property
    def posterior_data(self) -> SpectralData | KernelsData | MultiTraitData:
        """What :mod:`bayesblup.inference.posterior` needs of the marginal form."""
        if self.multi_trait:
            return self.multitrait_data
        return self.spectral_data if self.single else self.kernels_data

    # --- priors ------------------------------------------------------------------------------------
    def with_prior(self, prior) -> BLUPModel:
        """A copy of the model under another prior: the same records, kernels and decompositions (nothing recomputed).

        The copy builds its own ``pm.Model`` when asked: what you added to this one's is not carried over.
        """
        other = copy.copy(self)  # the decompositions are shared: they do not depend on the prior
        other._prior_spec = prior
        other._model, other._built_names, other.prior_label, other.multitrait_parameters = None, None, None, None
        other.timings = {}
        return other

    @property
    def priors(self) -> tuple[str, dict[str, Prior]]:
        """(label, priors) after resolving the preset against the data."""
        pe_msx = None
        if self.permanent_environment:  # BGLR's MSx of the incidence matrix Z: 1 - sum(n_i^2) / N^2
            counts = np.bincount(self.records.record_index, minlength=self.n)
            pe_msx = 1.0 - float((counts.astype(float) ** 2).sum()) / self.n_records**2
        msx = {k.variance_name: self._msx(k) for k in self.kernels}
        if self.threshold:
            kernel = self.kernels[0]
            return resolve_threshold_priors(
                self._prior_spec, variance_name=kernel.variance_name, msx=msx[kernel.variance_name]
            )
        if self.multi_trait:
            msx = {k.variance_name: self._multitrait_msx(k) for k in self.kernels}
            return resolve_multitrait_priors(self._prior_spec, self.records.Y, msx=msx)
        return resolve_priors(self._prior_spec, self.y, msx=msx, pe_msx=pe_msx)

    def _multitrait_msx(self, kernel: Kernel) -> float:
        """BGLR ``Multitrait``'s MSx of a kernel: W's column variances, or ``tr(K+)/n - 1'K+1/n^2`` for a G.

        K+ keeps the eigenvalues above BGLR's 1e-10 (:func:`bayesblup.models.covariance.bglr_rkhs_msx`),
        here from the eigendecomposition the model has anyway (one kernel), or from the kernel's own.
        """
        from .covariance import BGLR_EIGEN_TOL, bglr_rkhs_msx

        if kernel.markers is not None:
            return kernel.msx()
        if not self.single:
            return bglr_rkhs_msx(kernel.relationship_matrix())
        sp = self.spectral
        keep = sp.values > BGLR_EIGEN_TOL
        ones = sp.rotate(np.ones(self.n))
        return float(sp.values[keep].sum() / self.n - (sp.values[keep] * ones[keep] ** 2).sum() / self.n**2)

    # --- the PyMC model ------------------------------------------------------------------------------
    @property
    def nuts_init(self) -> str:
        """PyMC's NUTS initialisation: a dense mass matrix for the marginal form's few parameters, else diagonal.

        With several kernels the variances and h2 are correlated a posteriori, and with a handful of
        parameters the full matrix is cheap (measured at n = 1000: 7 leapfrog steps per draw instead of
        12). Several traits' variances likewise: on wheat's four traits (``prior="bglr"``, 24 parameters,
        1000 tuning draws) 7.0 leapfrog steps a draw instead of 11.6 and a lowest bulk ESS of 5144
        instead of 3546 over 4000 draws, R-hat 1.003 either way. The latent form has a parameter per
        individual, where a dense matrix would cost O(n^2) per step and be estimated from too few draws;
        so do several traits with several kernels (the explicit kernels' effects). Missing records of
        several traits take the Gibbs step's own diagonal one
        (:func:`bayesblup.inference.missing.gibbs_sample_kwargs`).
        """
        # several traits with several kernels have explicit effects (n x t parameters and more): diagonal
        dense = self.form == "marginal" and (self.single == self.multi_trait)
        return "jitter+adapt_full" if dense else "jitter+adapt_diag"

    @property
    def reusable(self) -> bool:
        """Whether fits of the same structure can share one compiled model.

        The single-kernel marginal form: every number its graph reads (rotated data, eigenvalues,
        prior parameters) is a ``pm.Data`` container, so another trait, another CV fold or another
        data set of the same structure only swaps data (:mod:`bayesblup.inference.compiled`). Not the
        latent form, whose free variables grow with n, nor the augmented path, nor several kernels
        (their likelihood Ops hold their arrays). Several traits' marginal form likewise, with every record
        present and a prior other than ``"bglr"`` (whose inverse Wishart scales are graph constants).
        """
        if self.threshold:  # the latent form: free variables per individual
            return False
        if self.multi_trait:
            # one kernel, every record present (missing ones are drawn by a step that holds U's rows), and
            # priors whose numbers are pm.Data (BGLR's inverse Wishart scales are constants of the graph)
            bglr = isinstance(self._prior_spec, str) and self._prior_spec == "bglr"
            return self.single and self.form == "marginal" and not bglr and not self.gibbs_missing
        return self.single and self.form == "marginal" and not self.samples_excess

    @property
    def gibbs_missing(self) -> bool:
        """Whether ``fit()`` draws missing records of several traits by an exact Gibbs step beside PyMC's NUTS.

        The marginal form only (:mod:`bayesblup.inference.missing`); the latent form, nutpie and the JAX
        samplers move them with NUTS, as ``pm.sample`` on :attr:`model` does.
        """
        return self.multi_trait and self.form == "marginal" and bool(self.multitrait_data.missing_rows.size)

    @property
    def samples_excess(self) -> bool:
        """Whether NUTS samples the residual excess (one kernel, marginal form, ``pe_path == "augmented"``).

        Several kernels with unequal weights and a permanent environment take the dense path instead.
        """
        return self.single and self.form == "marginal" and self.pe_path == "augmented"

    @property
    def model(self):
        """The ``pm.Model``, built on first use: inspect it, extend it, or sample it with any PyMC sampler.

        :meth:`bayesblup.fitting.BLUPModel.fit` samples this very model, with whatever you added to it.
        """
        if self._model is None:
            t0 = time.perf_counter()  # includes importing PyMC (a first build pays it) and the eigendecomposition
            self._model = self.build()
            self._built_names = frozenset(self._model.named_vars)
            self.timings["build_s"] = time.perf_counter() - t0
        return self._model

    @property
    def extensions(self) -> list[str]:
        """Names a user added to :attr:`model` after it was built (empty if it was not extended)."""
        if self._model is None:
            return []
        return sorted(set(self._model.named_vars) - self._built_names)

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
    def beta_prior_scale(self) -> np.ndarray:
        """The sd of each fixed effect's ``Normal(0, sd)`` prior (one trait).

        Effectively flat: 10 sd(y) per sd of the covariate, so any plausible effect is inside.
        """
        return 10 * np.std(self.y, ddof=1) / self.records.X.std(axis=0)

    def build(self):
        """Build and return a new PyMC model in the configured form (:attr:`model` is the one to extend)."""
        import pymc as pm
        import pytensor.tensor as pt

        label, priors = self.priors
        if self.multi_trait:
            return self._build_multitrait(label, priors)
        if self.threshold:
            return self._build_threshold(label, priors)
        rec = self.records
        coords = {INDIVIDUAL: self.individuals.astype(str)}
        if self.reusable:  # nothing in the marginal graph is per individual: keep them out of the shared model
            del coords[INDIVIDUAL]
        if self.form == "marginal" and self.single:
            coords["component"] = np.arange(self.spectral_data.lam.size)
        if rec.X is not None:
            coords["covariate"] = list(rec.covariates)
        if self.permanent_environment and (self.form == "latent" or self.samples_excess):
            # p (latent form) or the residual excess (augmented path) lives here
            coords[PHENOTYPED] = self.ids.astype(str)
        with pm.Model(coords=coords) as model:
            mu = self._create_prior(priors, MU)
            sigma2, sigma2_pe, sigma2_e = self._variance_block(label, priors)
            beta = None
            if rec.X is not None:
                scale = self.beta_prior_scale
                beta = pm.Normal(BETA, 0.0, self._constant("beta_scale", scale, dims="covariate"), dims="covariate")
            if self.form == "marginal" and self.single:
                self._spectral_likelihood(mu, beta, sigma2[0], sigma2_pe, sigma2_e)
            elif self.form == "marginal":
                self._kernels_likelihood(mu, beta, sigma2, sigma2_pe, sigma2_e)
            else:
                pe = None
                if self.permanent_environment:  # explicit and non-centred, as g
                    z_pe = pm.Normal("z_pe", 0.0, 1.0, dims=PHENOTYPED)
                    pe = pm.Deterministic("pe", pt.sqrt(sigma2_pe) * z_pe, dims=PHENOTYPED)
                g = self._latent_genetic_values(sigma2)
                model.add_coord(RECORD, np.arange(self.n_records))
                # Individuals with a record come first; the rest are predicted through the kernels.
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

    def _build_multitrait(self, label: str, priors: dict):
        """Several traits (:mod:`bayesblup.models.multitrait`), one kernel or several, either form."""
        import pymc as pm

        rec = self.records
        coords = {TRAIT: list(self.traits)}
        if self.form == "marginal":
            coords["component"] = np.arange(self.n)
        if rec.X is not None:
            coords["covariate"] = list(rec.covariates)
        mean = np.nanmean(rec.Y, axis=0)
        sd = np.nanstd(rec.Y, axis=0, ddof=1)
        with pm.Model(coords=coords) as model:
            # Effectively flat, as for one trait: 10 sd(y_t) around the trait's mean, 10 sd(y_t) / sd(x) per covariate.
            mu = pm.Normal(
                MU, mu=self._constant("mu_prior_mean", mean, dims=TRAIT),
                sigma=self._constant("mu_prior_sd", 10 * sd, dims=TRAIT), dims=TRAIT,
            )  # fmt: skip
            Sigma_k, Sigma_e = multitrait.variance_block(self, label, priors)
            B = None
            if rec.X is not None:
                scale = 10 * sd[None, :] / rec.X.std(axis=0)[:, None]
                B = pm.Normal(
                    BETA, 0.0, self._constant("beta_scale", scale, dims=("covariate", TRAIT)), dims=("covariate", TRAIT)
                )
            for j, trait in enumerate(self.traits):
                pm.Deterministic(f"mu_{trait}", mu[j])
            if self.form == "latent":
                extra = multitrait.latent_likelihood(self, mu, B, Sigma_k, Sigma_e)
            else:
                extra = multitrait.likelihood(self, mu, B, Sigma_k, Sigma_e)
        # What the exact draw of the missing records conditions on (bayesblup.inference.missing): the integrated
        # kernel's covariance and, with several kernels, the explicit ones' genetic values
        integrated = Sigma_k[self.set_names.index(self.background)] if not self.single else Sigma_k[0]
        self.multitrait_parameters = {"mu": mu, "B": B, "Sigma_k": integrated, "Sigma_e": Sigma_e} | extra
        self.prior_label = label
        return model

    def _build_threshold(self, label: str, priors: dict):
        """A binary or ordinal trait: liabilities cut by thresholds, g sampled (:mod:`bayesblup.models.threshold`)."""
        import pymc as pm
        import pytensor.tensor as pt

        from .threshold import observed_scale_factor

        rec = self.records
        cats = self.categories
        kernel = self.kernels[0]
        binary = self.family == "binary"
        coords = {INDIVIDUAL: self.individuals.astype(str), RECORD: np.arange(self.n_records)}
        if rec.X is not None:
            coords["covariate"] = list(rec.covariates)
        if not binary:
            coords["threshold"] = np.arange(1, cats.n_categories)
        with pm.Model(coords=coords) as model:
            c = float(kernel.c)
            if H2 in priors:  # sigma2_g = h2 / (1 - h2): the residual variance is 1
                h2 = priors[H2].create(H2)
                sigma2_k = pm.Deterministic(kernel.variance_name, h2 / (1 - h2) / c)
            else:
                sigma2_k = priors[kernel.variance_name].create(kernel.variance_name)
                h2 = pm.Deterministic(H2, c * sigma2_k / (c * sigma2_k + 1))
            if kernel.reports_equivalent:
                pm.Deterministic(SIGMA2_G_EQUIV, c * sigma2_k)
            if binary:
                pm.Deterministic("h2_observed", h2 * observed_scale_factor(cats.prevalence))
                if self.prevalence is not None:
                    pm.Deterministic("h2_observed_population", h2 * observed_scale_factor(self.prevalence))
            # float32 factor past FLOAT32_FACTOR_SIZE entries (see _factor_dot)
            g = self._latent_genetic_values([sigma2_k], low_precision=True)
            eta = g[: self.n][rec.record_index]
            if rec.X is not None:
                # Effectively flat: 10 liability units per sd of the covariate.
                beta = pm.Normal(BETA, 0.0, 10.0 / rec.X.std(axis=0), dims="covariate")
                eta = eta + pt.dot(rec.X, beta)
            if binary:  # the one threshold at 0, mu free (effectively flat on the liability scale)
                start = -float(cats.initial_thresholds()[0])
                eta = eta + pm.Normal(MU, 0.0, 10.0, initval=start)
                cutpoints = pt.zeros(1)
            else:  # mu = 0 and K - 1 ordered thresholds, as BGLR
                cutpoints = pm.Normal(
                    "thresholds", 0.0, 10.0, dims="threshold", transform=pm.distributions.transforms.ordered,
                    initval=cats.initial_thresholds(),
                )  # fmt: skip
                for k in range(cats.n_categories - 1):
                    pm.Deterministic(f"threshold_{k + 1}", cutpoints[k])
            pm.OrderedProbit("y", eta=eta, cutpoints=cutpoints, compute_p=False, observed=cats.codes, dims=RECORD)
        self.prior_label = label
        return model

    def _variance_block(self, label: str, priors: dict[str, Prior]):
        """``[sigma2_k per kernel]``, sigma2_pe (None without it) and sigma2_e, with h2 and what derives from them."""
        import pymc as pm
        import pytensor.tensor as pt

        kernels = self.kernels
        if not self.single:
            pm.modelcontext(None).add_coord(KERNEL, self.set_names)
        c = [self._constant("factor_c", float(k.c)) if self.single else k.c for k in kernels]
        sigma2_pe = None
        if H2 in priors:  # the h2 parameterisation: "default", or a user's dict with "h2"
            h2 = self._create_prior(priors, H2)
            total = self._create_prior(priors, SIGMA2_P)
            share = None
            if not self.single:  # the kernels' shares of the genetic variance
                a = float(priors[SET_SHARE].parameters.get("a", 1.0))
                share = pm.Dirichlet(SET_SHARE, a=np.full(len(kernels), a), dims=KERNEL)
            rest = (1 - h2) * total
            if self.permanent_environment:  # the share of the non-genetic variance that is permanent
                pe_share = self._create_prior(priors, PE_SHARE)
                sigma2_pe = pm.Deterministic(SIGMA2_PE, pe_share * rest)
                rest = (1 - pe_share) * rest
            sigma2_e = pm.Deterministic(SIGMA2_E, rest)
            genetic = [h2 * total] if share is None else [h2 * total * share[i] for i in range(len(kernels))]
            sigma2 = [pm.Deterministic(k.variance_name, gk / ck) for k, gk, ck in zip(kernels, genetic, c, strict=True)]
        else:
            sigma2 = [self._create_prior(priors, k.variance_name) for k in kernels]
            if self.permanent_environment:
                sigma2_pe = self._create_prior(priors, SIGMA2_PE)
            sigma2_e = self._create_prior(priors, SIGMA2_E)
            genetic = [ck * sk for ck, sk in zip(c, sigma2, strict=True)]
        total_g = genetic[0] if self.single else pt.add(*genetic)
        other = sigma2_e if sigma2_pe is None else sigma2_pe + sigma2_e
        if H2 not in priors:
            pm.Deterministic(H2, total_g / (total_g + other))
        if not self.single:
            for k, gk in zip(kernels, genetic, strict=True):
                pm.Deterministic(f"h2_{k.name}", gk / (total_g + other))
        for k, gk in zip(kernels, genetic, strict=True):
            if k.reports_equivalent:
                pm.Deterministic(SIGMA2_G_EQUIV if self.single else f"sigma2_g_equiv_{k.name}", gk)
        if self.permanent_environment:
            pm.Deterministic(REPEATABILITY, (total_g + sigma2_pe) / (total_g + other))
        if self.has_enrichment:
            m_total = sum(k.n_markers for k in kernels)
            for k, gk in zip(kernels, genetic, strict=True):
                # genetic variance per marker of the set over that of all the other sets pooled
                rest_g = total_g - gk
                pm.Deterministic(f"enrichment_{k.name}", (gk / k.n_markers) / (rest_g / (m_total - k.n_markers)))
        return sigma2, sigma2_pe, sigma2_e

    def _spectral_likelihood(self, mu, beta, sigma2_k, sigma2_pe, sigma2_e) -> None:
        """``y_rotated`` (diagonal Gaussian) and, for repeated or weighted records, the record terms."""
        import pymc as pm
        import pytensor.tensor as pt

        data = self.spectral_data
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
        if data.null_dim:
            # The low-rank path's null space: n - r components of variance nu whose residuals enter through the
            # Gram matrix of their projected columns alone (SpectralData.null_terms, the same sum in numpy).
            gram = self._constant("null_gram", data.null_gram)
            dim = self._constant("null_dim", float(data.null_dim))
            coef = [pt.ones(1), -pt.atleast_1d(mu)] + ([] if beta is None else [-beta])
            coef = pt.concatenate(coef)
            quad = pt.dot(coef, pt.dot(gram, coef))
            pm.Potential("null_space", -0.5 * dim * pt.log(2 * np.pi * noise) - quad / (2 * noise))
        if data.within is not None:
            # log N(y) = log N(y_rotated) + what the weighted means leave out: the within-individual
            # scatter with its normalising constant, so logp is the records' exactly.
            names = ("within_a", "within_b", "within_C", "within_n_extra", "within_constant")
            within = tuple(v if v is None else self._constant(k, v) for k, v in zip(names, data.within, strict=True))
            add_within_potential(within, beta, sigma2_e)

    def _kernels_likelihood(self, mu, beta, sigma2, sigma2_pe, sigma2_e) -> None:
        """The exact Gaussian log-likelihood of several kernels (Woodbury or dense path) as a Potential."""
        import pymc as pm
        import pytensor.tensor as pt

        t0 = time.perf_counter()
        data = self.kernels_data
        by_name = dict(zip(self.set_names, sigma2, strict=True))
        a, b = data.noise
        if data.path == "woodbury":
            rot = data.rotated
            a = float(a[0])  # one number on this path (checked in path)
            y, one, X = rot["y"], rot["one"], rot["X"]
        else:
            y, one, X = data.y, data.one, data.X
        mean = one * mu
        if beta is not None:
            mean = mean + pt.dot(X, beta)
        noise = a * sigma2_e if sigma2_pe is None else a * sigma2_e + b * sigma2_pe
        r = y - mean
        if data.path == "woodbury":
            s_low = [by_name[k] for k in data.low]
            if len(data.low) == 1:
                # One small set: the R x R work is interpolated over two variance ratios (O(n) per gradient).
                fixed = pt.atleast_1d(mu) if beta is None else pt.concatenate([pt.atleast_1d(mu), beta])
                logp = surface_logp(data.surface, fixed, by_name[data.background], s_low[0], noise)
            else:
                logp = woodbury_logp(
                    data.resolvent, data.lam, data.A, data.blocks, r, by_name[data.background], s_low, noise
                )
        else:
            s = pt.stack(sigma2)
            logp = dense_logp([data.kernels[name] for name in self.set_names], r, s, noise * np.ones(self.n))
        # A Potential, not an observed variable: the log-likelihood of the (scaled) individual means.
        pm.Potential("y_marginal", logp)
        if data.within is not None:
            add_within_potential(data.within, beta, sigma2_e)
        self.timings["marginal_setup_s"] = time.perf_counter() - t0

    def _latent_genetic_values(self, sigma2, *, low_precision: bool = False):
        """Add the explicit genetic values (dims individual, every individual), per kernel and in total.

        ``low_precision``: hold a large factor (W or G's eigen-factor) in float32 (:func:`_factor_dot`).
        """
        import pymc as pm
        import pytensor.tensor as pt

        model = pm.modelcontext(None)
        single = self.single
        parts: dict[str, object] = {}
        markers = [k for k in self.kernels if k.markers is not None]
        if markers:  # one vector b over every marker kernel's markers, non-centred
            model.add_coord(MARKER, np.concatenate([k.markers.astype(str) for k in markers]))
            z = pm.Normal("z", 0.0, 1.0, dims=MARKER)
            by_kernel = dict(zip(self.kernels, sigma2, strict=True))
            sd = pt.concatenate([pt.repeat(pt.sqrt(by_kernel[k])[None], k.n_markers) for k in markers])
            b = pm.Deterministic(B, sd * z, dims=MARKER)
            start = 0
            for k in markers:
                stop = start + k.n_markers
                parts[k.name] = _factor_dot(k.W_all, b[start:stop], low_precision)
                start = stop
        for k, s2 in zip(self.kernels, sigma2, strict=True):
            if k.markers is not None:
                continue
            dim, coord, L = self.latent_factor(k)
            model.add_coord(dim, coord)
            z = pm.Normal("z" if single else f"z_{k.name}", 0.0, 1.0, dims=dim)
            parts[k.name] = pt.sqrt(s2) * _factor_dot(L, z, low_precision)
        if single:
            return pm.Deterministic(G, parts[self.kernels[0].name], dims=INDIVIDUAL)
        named = [pm.Deterministic(f"g_{k.name}", parts[k.name], dims=INDIVIDUAL) for k in self.kernels]
        return pm.Deterministic(G, pt.add(*named), dims=INDIVIDUAL)

    def latent_factor(self, kernel: Kernel) -> tuple[str, np.ndarray, np.ndarray]:
        """``(dim, coordinate, L)`` of a kernel's latent term, ``g_k = sqrt(sigma2_k) L z`` over every individual.

        G's own decomposition where the model has it (one kernel, every individual with a record, no rescaling),
        else the kernel's factor; W itself for a marker kernel. The latent form and the Laplace mode of a threshold
        model (:mod:`bayesblup.inference.laplace`) share it.
        """
        reuse = self.single and not len(self.records.unphenotyped) and self.scale is None
        return kernel.latent_factor(self.spectral if reuse and kernel.markers is None else None)

    @property
    def parameter_names(self) -> list[str]:
        """The scalar (and covariate) parameters of the summary table, in order."""
        if self.multi_trait:
            names = multitrait.variance_names(self)
            return [*names, BETA] if self.records.X is not None else names
        if self.threshold:
            kernel = self.kernels[0]
            names = [H2]
            if self.family == "binary":
                names += ["h2_observed"] + (["h2_observed_population"] if self.prevalence is not None else [])
            names.append(kernel.variance_name)
            if kernel.reports_equivalent:
                names.append(SIGMA2_G_EQUIV)
            if self.family == "binary":
                names.append(MU)
            else:
                names += [f"threshold_{k}" for k in range(1, self.categories.n_categories)]
            return [*names, BETA] if self.records.X is not None else names
        names = [H2]
        if not self.single:
            names += [f"h2_{k.name}" for k in self.kernels]
        if self.permanent_environment:
            names.append(REPEATABILITY)
        names += [k.variance_name for k in self.kernels]
        for k in self.kernels:
            if k.reports_equivalent:
                names.append(SIGMA2_G_EQUIV if self.single else f"sigma2_g_equiv_{k.name}")
        if self.has_enrichment:
            names += [f"enrichment_{k.name}" for k in self.kernels]
        if self.permanent_environment:
            names.append(SIGMA2_PE)
        names += [SIGMA2_E, MU]
        return [*names, BETA] if self.records.X is not None else names

    def describe(self) -> dict:
        """The model's specification, as summary.json records it."""
        out = {
            "family": self.family,
            "traits": list(self.traits),
            "form": self.form,
            "path": self.path,
            "kernels": [k.describe() | {"name": k.name} for k in self.kernels],
        }
        if self.threshold:  # the record values of the categories 0..K-1, and how many of each
            cats = self.categories
            out["categories"] = {
                f"{label:g}": int(count) for label, count in zip(cats.labels, cats.counts, strict=True)
            }
            out["liability"] = "probit: residual variance 1; h2 = sigma2_g / (sigma2_g + 1)"
            if self.prevalence is not None:
                out["prevalence"] = self.prevalence
        return out


def _factor_dot(factor: np.ndarray, v, low_precision: bool):
    """``factor @ v`` in the graph; with ``low_precision`` and a large factor, in float32 (FLOAT32_FACTOR_SIZE)."""
    import pytensor.tensor as pt

    if not low_precision or factor.size <= FLOAT32_FACTOR_SIZE:
        return pt.dot(factor, v)
    return pt.cast(pt.dot(factor.astype(np.float32), pt.cast(v, "float32")), "float64")


def _kernel_list(kernels) -> list[Kernel]:
    """Kernels from a list, or a dict naming them (marker sets); at least one, and named when several."""
    if isinstance(kernels, dict):
        out = [as_kernel(source, name=name) for name, source in kernels.items()]
        if len(out) < 2:
            raise InputError(f"several marker sets need at least two; got {len(out)}.")
        return out
    if not isinstance(kernels, list | tuple) or not kernels:
        raise InputError("kernels must be a non-empty list (or a dict of named marker sets).")
    out = [as_kernel(source) for source in kernels]
    if len(out) > 1 and any(k.name is None for k in out):
        raise InputError("with several kernels, name each one (a dict {name: G or W}, or Kernel(..., name=...)).")
    return out


def _check_multitrait(
    records: TraitRecords, kernels: list[Kernel], *, permanent_environment: bool, path: str = "auto"
) -> None:
    """Refuse, with what to do instead, what the multi-trait model does not do yet."""
    if path in ("woodbury", "dense") and len(kernels) > 1:
        raise InputError(
            f"path={path!r} is the single-trait marginal form's; several traits with several kernels take the "
            "explicit path (the background kernel integrated out, the others explicit): leave path at 'auto'."
        )
    if permanent_environment:
        raise InputError(
            "a permanent environment needs repeated records, which are not available with several traits yet: fit "
            "each trait alone with --repeated-records --permanent-environment."
        )
    if len(kernels) > 1:
        # the summary's names join kernel and trait names with "_": two parameters must not read the same
        names = [f"{k.name}_{t}" for k in kernels for t in records.traits] + list(records.traits)
        names += [f"{k.name}_{a}_{b}" for k in kernels for a, b in itertools.combinations(records.traits, 2)]
        names += [f"{a}_{b}" for a, b in itertools.combinations(records.traits, 2)]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InputError(
                    f"the marker set and trait names give two parameters the name ..._{name}: rename a set or a "
                    "trait so that no set name joined to a trait name with '_' reads as another trait's."
                )
            seen.add(name)


def _check_threshold(records, kernels: list[Kernel], family: str, *, prevalence: float | None):
    """A binary or ordinal trait's records as categories, and what its model does not do yet refused."""
    from .threshold import categories, observed_scale_factor

    if isinstance(records, TraitRecords):
        raise InputError(f"family={family!r} takes one trait; fit each binary or ordinal trait alone.")
    if len(kernels) > 1:
        raise InputError(f"family={family!r} takes one kernel (G or W); several marker sets are not available yet.")
    if records.weights is not None or records.individual is not None:
        raise InputError(
            f"family={family!r} takes one unweighted record per individual; repeated or weighted records of a "
            "binary or ordinal trait are not available yet."
        )
    if prevalence is not None:
        if family != "binary":
            raise InputError("prevalence applies to family='binary' (the observed-scale h2 of a 0/1 trait).")
        observed_scale_factor(prevalence)  # refused there unless 0 < K < 1
    return categories(records.y, family, trait=records.trait)
