"""The end-to-end job behind ``bayesblup fit`` and the demo: files in, a fitted model and outputs out.

Each phase is timed and reported through ``say``, so the command line can print progress lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..names import GBLUP_NAME, MBLUP_NAME, MODELS

__all__ = ["FitJob", "FitOutcome", "format_fit_table", "run_fit"]


@dataclass
class FitJob:
    """What to fit: every option of ``bayesblup fit``."""

    genotypes: object  # a path, or Genotypes already read
    phenotypes: object  # a path, or a DataFrame already read
    trait: str | list[str]  # one trait, or several fitted jointly
    model: str = "gblup"
    scaling: str = "standardized"
    prior: str = "default"
    method: str = "nuts"
    form: str | None = None  # None: marginal for a Gaussian trait, latent (the only form) for a threshold family
    family: str | None = None  # gaussian, binary or ordinal (models.threshold); None: binary for a PLINK case/control
    # trait (a .fam's phenotype), else gaussian
    prevalence: float | None = None  # a binary trait's population prevalence, for h2_observed_population
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float | None = None  # None: the model's default
    nuts_sampler: str | None = None  # pymc, nutpie, numpyro or blackjax; None: pymc
    cores: int | None = None  # processes for the chains (None: one per chain up to the CPUs); draws do not depend on it
    seed: int | None = None
    coding: str = "auto"
    vcf_field: str = "auto"  # a VCF's calls: auto, GT or DS (bayesblup.genotypes.vcf)
    qc: dict = field(default_factory=dict)
    predict: object = None  # a path, or Genotypes of new individuals
    fixed: tuple[str, ...] = ()  # phenotype-table columns entered as fixed effects
    missing_codes: tuple[float, ...] = ()  # values of the phenotype file that mean "no record"
    weights: str | None = None  # phenotype-table column of residual weights (Var(e) = sigma2_e / w)
    repeated: bool = False  # allow several records per individual
    permanent_environment: bool = False  # iid effect per individual over its records (implies repeated)
    folds: str | None = None  # phenotype-table column of cross-validation folds
    sets: object = None  # a CSV path 'marker,set', or {set: markers}: one genetic term per marker set
    sets_path: str = "auto"  # the multi-set likelihood path: auto, woodbury or dense
    path: str = "auto"  # one kernel's path: auto (low-rank when m < n), low-rank or dense
    relationships: tuple = ()  # a user's relationship files (or Relationship objects): one genetic term each
    progressbar: bool = False  # PyMC's progress bar while sampling (the command line shows it on a terminal)
    prior_sensitivity: bool = False  # also refit under the default set of priors (bayesblup.analyses.sensitivity)
    top: int | None = None  # list the best N candidates with P(in the top top_fraction): selection.csv
    top_fraction: float | None = None  # the top fraction of --top (None: 0.1)
    marker_map: object = None  # M-BLUP: a map (.bim, CSV marker,chromosome,position, or DataFrame); None: the
    # genotypes' own positions (a PLINK .bim, a VCF's CHROM and POS). The marker effects gain chromosome and position
    # the pointwise log-likelihood (az.loo) in posterior.nc: asked for, as it holds records x draws numbers (the API's
    # fit computes it where cheap, in memory; a saved file of every CLI run need not carry 19-60 MB more)
    log_likelihood: bool = False
    posterior_predictive: bool = False  # replicated records per draw (az.plot_ppc_dist)


@dataclass
class FitOutcome:
    """What :func:`run_fit` produced."""

    fit: object
    timings: dict
    predictions: object = None  # DataFrame id, mean, sd of new individuals
    cv: object = None  # CVResult
    prior_sensitivity: object = None  # DataFrame, one row per prior (bayesblup.analyses.sensitivity)
    selection: object = None  # DataFrame of fit.top (--top)
    marker_map: object = None  # DataFrame marker, chromosome, position of the fit's markers (M-BLUP with a map)


def run_fit(job: FitJob, say=print):
    """Read, QC, build W or G, fit, predict new individuals, cross-validate; returns a FitOutcome.

    Raises
    ------
    InputError
        On any problem with the inputs or options, before sampling where possible.
    """
    from .. import GBLUP, MBLUP, MultiGBLUP, MultiMBLUP
    from ..genotypes.qc import check_dosage_r2_applies, quality_control
    from ..genotypes.readers import read_genotypes
    from ..genotypes.relationship import genomic_relationship
    from ..genotypes.scaling import genotype_matrix
    from ..phenotypes import match_records, match_traits, read_phenotypes, trait_values

    if job.model not in MODELS:
        raise InputError(f"model must be gblup or mblup; got {job.model!r}.")
    if job.sets is not None and job.predict is not None:
        raise InputError(
            "--predict is not available with --sets yet: put the new individuals in the genotype file without a "
            "phenotype; their genetic values are then in genetic_values.csv (phenotyped = false)."
        )
    _check_sampling_options(job)
    _check_relationship_options(job)
    fraction = _check_top_options(job)
    _check_vcf_field(job)
    check_qc_options(job.genotypes, vcf_field=job.vcf_field, **job.qc)
    marker_map = _marker_map_of(job)  # read and checked now; its markers are matched after QC
    timings: dict[str, float] = {}
    t = time.perf_counter()
    users = _read_user_relationships(job.relationships)  # a user's own matrices, refused now if unreadable
    geno = None
    if job.genotypes is not None:
        geno = job.genotypes
        if not hasattr(geno, "calls"):
            geno = read_genotypes(geno, coding=job.coding, vcf_field=_vcf_field(job, geno))
        # Genotypes given, or a VCF read as counts (GT by auto, DS all whole): refused now, before the phenotypes
        if job.qc.get("min_dosage_r2") is not None:
            check_dosage_r2_applies(geno)
    if hasattr(job.phenotypes, "columns"):
        table = job.phenotypes
    else:
        table = read_phenotypes(job.phenotypes, missing_codes=job.missing_codes)
    traits = [job.trait] if isinstance(job.trait, str) else list(job.trait)
    if len(traits) > 1:
        _check_multitrait_options(job, traits)
        y = pd.concat([trait_values(table, trait) for trait in traits], axis=1)
        y.attrs["source"] = table.attrs.get("source")
    else:
        y = trait_values(table, traits[0])
    family = job.family
    if family is None:  # a PLINK .fam's case/control phenotype is a binary trait; anything else Gaussian
        case_control = len(traits) == 1 and traits[0] in table.attrs.get("case_control", [])
        family = "binary" if case_control else "gaussian"
        if case_control:
            say(
                f"trait {traits[0]}: PLINK case/control (1 = control, 2 = case) read as 0/1 and fitted as a binary "
                "trait (give --family gaussian for the observed 0/1 scale)"
            )
    folds = _fold_labels_of(job, table)  # a phenotype column, or a separate id,fold CSV
    named = [*job.fixed, *(c for c in (job.weights, job.folds if folds is None else None) if c)]
    reused = [c for c in named if c in traits]
    if reused:  # the trait explaining itself: h2 near 1 and a meaningless fit
        raise InputError(
            f"column {reused[0]} is the trait being fitted and cannot also be a fixed effect, weight or fold column "
            "(--fixed, --weights, --folds): name other columns."
        )
    missing = [c for c in named if c not in table.columns]
    if missing:
        source = table.attrs.get("source")
        raise InputError(
            f"no column {', '.join(missing)} in the phenotypes{f' {source}' if source else ''}; the columns are "
            f"{', '.join(map(str, table.columns))}: check the names given to --fixed, --weights and --folds."
        )
    new = None  # new individuals to predict, read now so that a bad file fails before the fit
    if job.predict is not None:
        new = job.predict
        if not hasattr(new, "calls"):
            new = read_genotypes(new, coding=geno.coding, vcf_field=_vcf_field(job, new))
    timings["read_s"] = time.perf_counter() - t

    t = time.perf_counter()
    report = None
    if geno is not None:
        geno, report = quality_control(geno, **job.qc)
        timings["qc_s"] = time.perf_counter() - t
        for line in report.lines():
            say(line)
    if new is not None:  # what fit.predict would refuse after sampling, refused now
        _check_new_individuals(new, geno)
    if marker_map is None and job.model == MBLUP_NAME and geno is not None:
        marker_map = _own_marker_map(geno, say)
    if marker_map is not None:  # every marker kept by QC must be on the map: refused now, not after sampling
        from ..genotypes.markers import place_markers

        marker_map = place_markers(geno.markers, marker_map)
    # the individuals of the fit: the genotyped ones, or those of the first relationship matrix given
    ids = geno.ids if geno is not None else users[0][1].ids
    users = [(name, _on_individuals(name, relationship, ids)) for name, relationship in users]
    for name, relationship in users:
        say(_relationship_line(name, relationship))
    fixed = table[list(job.fixed)] if job.fixed else None
    weights = table[job.weights] if job.weights else None
    repeated = job.repeated or job.permanent_environment

    def records_of(y_fit):
        if isinstance(y_fit, pd.DataFrame):  # several traits
            return match_traits(y_fit, ids, fixed=fixed)
        return match_records(y_fit, ids, fixed=fixed, weights=weights, repeated=repeated)

    records = records_of(y)
    # matched to the genotypes' IDs, or (given only a user's matrices) to those matrices' IDs
    of = "genotyped individuals" if geno is not None else "individuals of the relationship matrix"
    for line in records.lines(of=of):
        say(line)
    low_rank = geno is not None and not users and _check_fit_memory(job, geno, records, several_traits=len(traits) > 1)
    if family == "gaussian" and len(traits) == 1:
        values = np.unique(records.y)
        if values.size == 2:  # fitted as given, but not silently: the liability model is one option away
            say(
                f"warning: trait {traits[0]} takes two values ({values[0]:g}, {values[1]:g}): fitted as Gaussian, "
                "whose h2 is on the observed 0/1 scale; for the threshold model and h2 on the liability scale give "
                "--family binary"
            )
    if job.folds:  # check the folds now, not after the main fit
        from ..analyses.cv import fold_labels

        folds = table[job.folds] if folds is None else folds
        fold_labels(y, folds)

    t = time.perf_counter()
    if users:  # a user's matrices, with the genotypes' G when genotypes are given too: one genetic term each
        kernels = dict(users)
        if geno is not None:
            kernels = {"genomic": genomic_relationship(geno, scaling=job.scaling)} | kernels
            timings["relationship_s"] = time.perf_counter() - t
            n = geno.n_individuals
            say(f"G ({job.scaling}): {n} x {n} from {geno.n_markers} markers, the term 'genomic'")
        if len(kernels) == 1:
            (kernel,) = kernels.values()
            Model = GBLUP
        else:
            kernel, Model = kernels, MultiGBLUP
            say(f"genetic terms: {', '.join(kernels)} (h2 and genetic values per term: h2_<term>)")
    elif job.sets is not None:
        from ..genotypes.marker_sets import genotype_matrices_by_set, marker_sets, relationships_by_set

        dropped = [name for names in report.dropped_markers.values() for name in names]
        sets = marker_sets(job.sets, geno.markers, dropped=dropped)
        sizes = ", ".join(f"{name} {m}" for name, m in sets.sizes.items())
        qc_note = f"; {sets.dropped.size} markers named in the sets were dropped by QC" if sets.dropped.size else ""
        say(f"marker sets: {sizes} markers{qc_note}")
        relationship = job.model == GBLUP_NAME  # G_k (relationships) or W_k (marker effects) per set
        build_sets = relationships_by_set if relationship else genotype_matrices_by_set
        kernel = build_sets(geno, sets, scaling=job.scaling)
        timings["relationship_s" if relationship else "genotype_matrix_s"] = time.perf_counter() - t
        what = "G_k" if relationship else "W_k"
        say(f"{what} per set ({job.scaling}): {len(kernel)} sets ({time.perf_counter() - t:.2f} s)")
        Model = MultiGBLUP if relationship else MultiMBLUP
    elif job.model == GBLUP_NAME and low_rank:  # G's factor W: G = WW'/denominator is never formed
        kernel = genotype_matrix(geno, scaling=job.scaling)
        timings["genotype_matrix_s"] = time.perf_counter() - t
        say(
            f"W ({job.scaling}): {geno.n_individuals} x {geno.n_markers}, the factor of G = WW'/"
            f"{kernel.scaling.denominator:g}; G itself is not formed ({timings['genotype_matrix_s']:.2f} s)"
        )
        Model = GBLUP
    elif job.model == GBLUP_NAME:
        kernel = genomic_relationship(geno, scaling=job.scaling)
        timings["relationship_s"] = time.perf_counter() - t
        n = kernel.n_individuals
        say(f"G ({job.scaling}): {n} x {n} from {geno.n_markers} markers ({timings['relationship_s']:.2f} s)")
        Model = GBLUP
    else:
        kernel = genotype_matrix(geno, scaling=job.scaling)
        timings["genotype_matrix_s"] = time.perf_counter() - t
        say(f"W ({job.scaling}): {geno.n_individuals} x {geno.n_markers} ({timings['genotype_matrix_s']:.2f} s)")
        Model = MBLUP
    model_options = {"form": job.form, "prior": job.prior, "permanent_environment": job.permanent_environment}
    if family != "gaussian" or job.prevalence is not None:  # the model refuses a prevalence without binary
        model_options |= {"family": family, "prevalence": job.prevalence}
    several = job.sets is not None or isinstance(kernel, dict)
    model_options["path"] = job.sets_path if several else job.path
    model = Model(records, kernel, **model_options)
    if several and model.form == "marginal":
        ranks = ", ".join(f"{name} {r}" for name, r in model.widths.items())
        say(f"likelihood path: {model.path} (ranks: {ranks}; background {model.background})")
        if model.path == "woodbury":
            sp = model.spectral
            seconds = model.timings["eigendecomposition_s"]
            say(f"eigendecomposition of the background: rank {sp.rank} of {sp.n} ({seconds:.2f} s)")
    elif model.path == "low-rank":
        sp = model.spectral
        m_w = model.kernels[0].n_markers
        say(
            f"likelihood path: low-rank (rank {sp.rank} of {sp.n} through the {m_w} x {m_w} W'W; no n x n matrix) "
            f"({model.timings['eigendecomposition_s']:.2f} s)"
        )
    elif model.form == "marginal":
        sp = model.spectral
        say(f"eigendecomposition: rank {sp.rank} of {sp.n} ({model.timings['eigendecomposition_s']:.2f} s)")
    if model.samples_excess:
        say(
            "permanent environment with unequal total record weights: g and p are integrated out, and each "
            "individual's residual excess over the best-recorded one is sampled explicitly"
        )
    if job.top is not None:  # what fit.top would refuse after sampling, refused now
        from ..results.selection import check_top

        check_top(model, job.top, fraction, method=job.method)
    from ..results.loo import refuse_pointwise

    if job.log_likelihood:  # refused before sampling where not available (several traits, MAP)
        refuse_pointwise(model, job.method, "--log-likelihood")
    if job.posterior_predictive:
        refuse_pointwise(model, job.method, "--posterior-predictive")
    if job.method != "quadrature":  # quadrature needs no pm.Model
        model.model  # noqa: B018 - build now, so that the build time is reported before sampling
    what = f"NUTS, {job.chains} chains x {job.draws} draws (+{job.tune} tuning)" if job.method == "nuts" else "MAP"
    if job.method == "map" and model.threshold:
        what = "MAP: the Laplace approximation's marginal mode (g integrated out)"
    if job.method == "quadrature":
        what = f"quadrature over the variance components, {job.chains} x {job.draws} independent draws"
    family = "" if model.family == "gaussian" else f", {model.family} trait (probit liability)"
    say(f"fitting {job.model} ({model.form} form{family}, prior {model.priors[0]}) by {what} ...")
    options = {
        "method": job.method,
        "chains": job.chains,
        "draws": job.draws,
        "tune": job.tune,
        "seed": job.seed,
        "target_accept": job.target_accept,
        "nuts_sampler": job.nuts_sampler,
        "cores": job.cores,
    }
    if job.method == "nuts":
        say("compiling the log-density and its gradient (PyTensor), then sampling ...")
    # the pointwise log-likelihood for the main fit only: cross-validation and prior sensitivity refit with options
    fit = model.fit(**options, log_likelihood=bool(job.log_likelihood), progressbar=job.progressbar)
    if report is not None:
        fit.settings["qc"] = report.to_dict()
    if job.relationships:
        fit.settings["relationships"] = [
            "(given in Python)" if hasattr(r, "matrix") else str(r) for r in job.relationships
        ]
    timings.update(fit.timings)
    say(_sampling_line(fit.timings))
    if marker_map is not None and fit.marker_effects is not None:
        fit.marker_effects = _with_positions(fit.marker_effects, marker_map)
        fit.settings["marker_map"] = marker_map.attrs.get("source")
    _say_pointwise(fit, job, say)
    timings.update(fit.timings)  # with the posterior predictive's
    predictions = None
    if job.predict is not None:
        t = time.perf_counter()
        predictions = fit.predict(new, training=geno)
        timings["prediction_s"] = time.perf_counter() - t
        say(f"predicted {len(predictions)} new individuals from {new.source} ({timings['prediction_s']:.2f} s)")
    selection = None
    if job.top is not None:
        t = time.perf_counter()
        selection = fit.top(job.top, fraction=fraction)
        timings["selection_s"] = time.perf_counter() - t
    cv = None
    if job.folds:
        from ..analyses.cv import cross_validate

        t = time.perf_counter()
        say(f"cross-validation over the folds of {folds.attrs.get('source') or f'column {job.folds}'} ...")

        def build(y_train):
            return Model(records_of(y_train), kernel, **model_options)

        cv = cross_validate(build, y, folds, say=say, **options)
        timings["cross_validation_s"] = time.perf_counter() - t
        say(f"mean predictive correlation {cv.mean_correlation:.3f} ({timings['cross_validation_s']:.1f} s)")
    sensitivity = None
    if job.prior_sensitivity:
        from ..analyses.sensitivity import default_priors, prior_sensitivity

        t = time.perf_counter()
        say("prior sensitivity: refitting under the default set of priors ...")
        sensitivity = prior_sensitivity(
            model.with_prior,  # the main fit's decompositions serve every prior
            default_priors(model),
            fitted={job.prior: fit},  # the main fit is one of them
            say=say,
            **options,
        )
        timings["prior_sensitivity_s"] = time.perf_counter() - t
    return FitOutcome(
        fit=fit,
        timings=timings,
        predictions=predictions,
        cv=cv,
        prior_sensitivity=sensitivity,
        selection=selection,
        marker_map=marker_map,
    )


def _check_vcf_field(job: FitJob) -> None:
    """``--vcf-field GT/DS`` needs a VCF among the genotype files (--genotypes, --predict), as --coding needs a CSV."""
    from ..genotypes.vcf import is_vcf

    files = [f for f in (job.genotypes, job.predict) if f is not None and not hasattr(f, "calls")]
    if job.vcf_field != "auto" and not any(is_vcf(f) for f in files):
        raise InputError(
            f"--vcf-field {job.vcf_field} chooses a VCF's GT calls or DS dosages, and no genotype file here is a .vcf, "
            ".vcf.gz or .bcf: drop --vcf-field."
        )


def check_qc_options(genotypes, *, vcf_field: str = "auto", **thresholds) -> None:
    """The QC thresholds, and ``--min-dosage-r2`` for genotypes of hard calls, refused before anything is read.

    ``genotypes``: a path, Genotypes, or None. What a file holds is told here by its kind; Genotypes already read,
    and a VCF read with ``--vcf-field auto`` or ``DS`` (whole DS values are held as counts), are checked once read.
    """
    from ..genotypes.qc import check_thresholds, refuse_dosage_r2
    from ..genotypes.readers import is_csv, is_plink
    from ..genotypes.vcf import is_vcf

    *_, min_dosage_r2 = check_thresholds(**thresholds)
    if min_dosage_r2 is None or genotypes is None or hasattr(genotypes, "calls"):
        return
    if is_vcf(genotypes):
        held = "the VCF's GT calls, read with --vcf-field GT" if vcf_field == "GT" else None
    elif is_plink(genotypes):
        held = "0/1/2 allele counts of a PLINK .bed"
    elif is_csv(Path(genotypes)):
        held = "allele counts of a CSV, which holds no fractional dosages"
    else:
        held = None  # not a genotype file: the reader says so
    if held is not None:
        raise refuse_dosage_r2(str(genotypes), held)


def _vcf_field(job: FitJob, path) -> str:
    """The job's --vcf-field for a VCF (checked by :func:`_check_vcf_field`); "auto" for the other formats."""
    from ..genotypes.vcf import is_vcf

    return job.vcf_field if is_vcf(path) else "auto"


def _check_top_options(job: FitJob) -> float:
    """``--top N --top-fraction F``: the numbers, refused before anything is read; returns the fraction."""
    if job.top is None:
        if job.top_fraction is not None:
            raise InputError("--top-fraction sets the top fraction of --top N: add --top N, or drop --top-fraction.")
        return 0.1
    from ..results.selection import check_top_options

    fraction = 0.1 if job.top_fraction is None else job.top_fraction
    check_top_options(job.top, fraction)
    return fraction


def _marker_map_of(job: FitJob):
    """The job's marker map, read and checked; or None (then M-BLUP takes the genotypes' own, after reading them).

    Only M-BLUP estimates marker effects to place on the map: a map given to G-BLUP is refused.
    """
    from ..genotypes.markers import check_marker_map, read_marker_map

    if job.marker_map is None:
        return None
    if job.model != MBLUP_NAME:
        raise InputError(
            "--map places marker effects along the genome, and G-BLUP (--model gblup, the default) estimates none: "
            "add --model mblup, or drop --map."
        )
    if isinstance(job.marker_map, pd.DataFrame):
        return check_marker_map(job.marker_map)
    return read_marker_map(job.marker_map)


def _own_marker_map(geno, say):
    """The map a PLINK .bim or a VCF's CHROM and POS gave the genotypes, checked; None when they carry none.

    A map taken without being asked for that cannot serve (negative positions, say) is noted and left out, not fatal.
    """
    from ..genotypes.markers import check_marker_map

    if geno.marker_map is None:
        return None
    own = geno.marker_map[["chromosome", "position"]].rename_axis("marker").reset_index()
    try:
        placed = check_marker_map(own, source=f"the marker positions of {geno.source}")
    except InputError as exc:
        say(f"note: the marker effects are written without positions: {exc}")
        return None
    placed.attrs["source"] = str(geno.source)
    return placed


def _with_positions(effects: pd.DataFrame, placed: pd.DataFrame) -> pd.DataFrame:
    """``effects`` with the map's ``chromosome`` and ``position`` after ``marker`` (rows per marker and trait kept)."""
    where = placed.set_index("marker")
    out = effects.copy()
    at = list(out.columns).index("marker") + 1
    out.insert(at, "chromosome", where["chromosome"].reindex(out["marker"]).to_numpy())
    out.insert(at + 1, "position", where["position"].reindex(out["marker"]).to_numpy())
    return out


def _say_pointwise(fit, job: FitJob, say) -> None:
    """The log-likelihood's line when asked for, and the posterior predictive if asked."""
    if fit.settings.get("log_likelihood"):
        seconds = fit.timings.get("log_likelihood_s", 0.0)
        say(f"pointwise log-likelihood of {fit.model.n_records} records in posterior.nc, for az.loo ({seconds:.2f} s)")
    if job.posterior_predictive:
        fit.sample_posterior_predictive()
        seconds = fit.timings.get("posterior_predictive_s", 0.0)
        say(f"posterior predictive draws of {fit.model.n_records} records in posterior.nc ({seconds:.2f} s)")


def _check_fit_memory(job: FitJob, geno, records, *, several_traits: bool) -> bool:
    """Refuse a fit that cannot fit in memory, naming the low-rank path where it would; returns whether it is taken.

    The low-rank path applies to one trait and one kernel with fewer markers than individuals with a record
    (:mod:`bayesblup.models.model`); ``--path dense`` declines it.
    """
    from ..resources import check_memory, fit_memory

    n, m, n_rec = geno.n_individuals, geno.n_markers, records.n_individuals
    possible = job.sets is None and not several_traits and m < n_rec
    low_rank = possible and job.path != "dense"
    instead = "run it on a machine with more memory, or fit a subset of the individuals"
    if low_rank:
        instead += " (the low-rank path holds W, n x m, and m x m matrices)."
    elif possible:  # the dense path was asked for: name the low-rank one, which may fit where it does not
        need = fit_memory(n, m, low_rank=True) / 2**30
        instead += f" (a fit needs n x n matrices; the low-rank path, --path low-rank, needs about {need:.1f} GiB)."
    elif m < n_rec:
        need = fit_memory(n, m, low_rank=True) / 2**30
        instead += (
            f" (a fit needs n x n matrices; one trait without --sets would take the low-rank path, about {need:.1f} "
            "GiB)."
        )
    else:
        instead += " (a fit needs n x n matrices)."
    what = f"a fit of {n} individuals ({m} markers)" + (" on the low-rank path" if low_rank else "")
    check_memory(fit_memory(n, m, low_rank=low_rank), what=what, instead=instead)
    return low_rank


def _fold_labels_of(job: FitJob, table: pd.DataFrame) -> pd.Series | None:
    """``--folds FILE``: a CSV of ID and fold label (its first two columns); None where --folds names a column.

    A value naming a column of the phenotypes is that column (checked later); one ending in .csv or .csv.gz, or
    naming an existing file, is read as its own table, so that the folds need not be merged into the phenotypes.
    """
    from ..genotypes.readers import is_csv

    if not job.folds or (job.folds in table.columns and not Path(job.folds).is_file()):
        return None
    path = Path(job.folds)
    if not (path.is_file() or is_csv(path)):
        return None
    if not path.is_file():
        raise InputError(f"fold file not found: {path}; give a CSV of ID and fold label, or a phenotype column name.")
    id_column = pd.read_csv(path, nrows=0).columns[0]
    frame = pd.read_csv(path, dtype={id_column: str})  # labels as a phenotype column reads them (numbers stay numbers)
    if frame.shape[1] < 2:
        raise InputError(f"{path}: a fold file has two columns, the ID and the fold label (e.g. id,fold).")
    labels = frame.iloc[:, 1]
    labels = labels.set_axis(frame.iloc[:, 0].astype(str).to_numpy()).rename(frame.columns[1])
    labels.attrs["source"] = f"{path} (column {frame.columns[1]})"
    return labels


def _check_relationship_options(job: FitJob) -> None:
    """What a user's relationship matrices cannot be fitted with, refused before anything is read."""
    if job.genotypes is None and not job.relationships:
        raise InputError("give the genotypes (--genotypes), a relationship matrix (--relationship), or both.")
    if not job.relationships:
        return
    if job.model != GBLUP_NAME:
        raise InputError(
            "--relationship gives G-BLUP terms (genetic values through a relationship matrix); --model mblup needs "
            "marker effects from --genotypes: drop --relationship, or use --model gblup."
        )
    if job.sets is not None:
        raise InputError("--relationship and --sets together are not available yet: give the sets or the matrices.")
    if job.predict is not None:
        raise InputError(
            "--predict places new genotypes on a genomic G's scale, which a relationship file does not carry: put the "
            "new individuals in the relationship matrix without a record; their genetic values are then in "
            "genetic_values.csv (phenotyped = false)."
        )


def _read_user_relationships(sources) -> list[tuple[str, object]]:
    """``[(name, Relationship)]`` from files (named by their stem) or Relationship objects (named K1, K2, ...)."""
    import re

    from ..genotypes.readers import read_relationship

    out: list[tuple[str, object]] = []
    for k, source in enumerate(sources, start=1):
        if hasattr(source, "matrix"):
            name, relationship = f"K{k}", source
        else:
            path = Path(source)
            stem = path.name.split(".")[0] or f"K{k}"
            name = re.sub(r"\W", "_", stem)
            name = name if name[0].isalpha() else f"K_{name}"
            relationship = read_relationship(path)
        if name in {n for n, _ in out} or name == "genomic":
            raise InputError(
                f"two genetic terms would be called {name!r} (a relationship file's name, without its extension, "
                "names its term; 'genomic' is the genotypes' G): rename a file."
            )
        out.append((name, relationship))
    return out


def _on_individuals(name: str, relationship, ids):
    """The relationship matrix over ``ids`` (the genotyped individuals, or the first matrix's), in their order."""
    from ..genotypes.relationship import Relationship

    position = {i: k for k, i in enumerate(relationship.ids)}
    absent = [i for i in ids if i not in position]
    if absent:
        raise InputError(
            f"relationship matrix {name!r} lacks {len(absent)} of the individuals of the fit: {preview(absent)}; "
            "every genotyped individual (or, without --genotypes, every individual of the first matrix) must be in it."
        )
    rows = np.array([position[i] for i in ids], dtype=np.intp)
    if rows.size == relationship.ids.size and (rows == np.arange(rows.size)).all():
        return relationship
    return Relationship(
        matrix=relationship.matrix[np.ix_(rows, rows)], ids=np.asarray(ids), scaling=relationship.scaling,
        n_markers=relationship.n_markers, denominator=relationship.denominator,
    )  # fmt: skip


def _relationship_line(name: str, relationship) -> str:
    from ..results.fit import DIAGONAL_NOTE

    n = relationship.n_individuals
    diagonal = float(np.mean(np.diag(relationship.matrix)))
    line = f"relationship {name}: {n} x {n} ({relationship.scaling}), mean diagonal {diagonal:.3g}"
    if abs(diagonal - 1.0) > DIAGONAL_NOTE:
        line += (
            f"; note: h2 = sigma2_g / (sigma2_g + sigma2_e) is then not the genetic share of the variance, "
            f"{diagonal:.3g} sigma2_g / ({diagonal:.3g} sigma2_g + sigma2_e) (both in the fit's notes)"
        )
    return line


def _check_multitrait_options(job: FitJob, traits: list[str]) -> None:
    """What several traits cannot do yet, refused before any fitting."""
    twice = sorted({t for t in traits if traits.count(t) > 1})
    if twice:
        raise InputError(f"--trait names {', '.join(twice)} twice; give each trait once.")
    options = {
        "--folds": bool(job.folds),
        "--prior-sensitivity": job.prior_sensitivity,
        "--weights": bool(job.weights),
        "--repeated-records": job.repeated,
        "--permanent-environment": job.permanent_environment,
    }
    refused = [name for name, given in options.items() if given]
    if refused:
        raise InputError(
            f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not available with several traits yet: fit "
            "the traits one at a time for that, or drop the option."
        )


def _check_sampling_options(job: FitJob) -> None:
    """Chains, draws and tuning steps, refused before any file is read (the model checks them again)."""
    for name, value, least, what in (
        ("chains", job.chains, 1, "the number of MCMC chains, e.g. 4"),
        ("draws", job.draws, 1, "draws per chain after tuning, e.g. 1000"),
        ("tune", job.tune, 0, "tuning steps per chain, e.g. 1000"),
    ):
        if int(value) < least:
            raise InputError(f"{name} must be at least {least}, got {value}: give {what} (--{name}, {name}=).")


def _sampling_line(timings: dict) -> str:
    """The phases of ``fit``: compilation and NUTS initialisation, the draws, the genetic values."""
    if "quadrature_s" in timings:
        head = f"done: quadrature {timings['quadrature_s']:.2f} s, draws {timings['quadrature_draws_s']:.2f} s"
    elif "draws_s" in timings:
        compile_s = timings["sampling_s"] - timings["draws_s"]
        head = f"done: compile and initialise {compile_s:.2f} s, draws {timings['draws_s']:.2f} s"
    else:
        head = f"done: optimisation {timings['sampling_s']:.2f} s"
    return f"{head}, genetic values {timings['genetic_values_s']:.2f} s"


def _table_of(fit) -> dict:
    """What the end-of-fit table needs, in summary.json's shape (so a finished folder prints the same)."""
    table = fit.summary()
    parameters = {
        name: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()} for name, row in table.iterrows()
    }
    return {"method": fit.method, "parameters": parameters, "diagnostics": fit.diagnostics(), "settings": fit.settings}


def format_fit_table(fit) -> list[str]:
    """A compact table of the parameters and diagnostics, for the end of a fit."""
    return format_summary_table(_table_of(fit))


def format_summary_table(summary: dict) -> list[str]:
    """The end-of-fit table from a ``summary.json`` dict (``bayesblup summary DIR``)."""
    parameters, method = summary["parameters"], summary["method"]
    w = max(16, *(len(str(name)) + 2 for name in parameters))  # long names with several marker sets
    if method == "map":  # point estimates: no sd, quantiles or MCMC columns to head
        lines = [f"{'parameter':<{w}}{'mean':>10}   (MAP point estimates)"]
    else:
        lines = [f"{'parameter':<{w}}{'mean':>10}{'sd':>9}{'q05':>10}{'q95':>10}{'ess_bulk':>10}{'r_hat':>8}"]
    for name, row in parameters.items():
        if method == "map":
            lines.append(f"{name:<{w}}{row['mean']:>10.4f}")
            continue
        if method == "quadrature":  # exact: no effective sample size, no R-hat
            lines.append(f"{name:<{w}}{row['mean']:>10.4f}{row['sd']:>9.4f}{row['q05']:>10.4f}{row['q95']:>10.4f}"
                         f"{'exact':>10}{'':>8}")  # fmt: skip
            continue
        r_hat = "     n/a" if row.get("r_hat") is None else f"{row['r_hat']:>8.3f}"
        lines.append(
            f"{name:<{w}}{row['mean']:>10.4f}{row['sd']:>9.4f}{row['q05']:>10.4f}{row['q95']:>10.4f}"
            f"{row['ess_bulk']:>10.0f}{r_hat}"
        )
    d = summary["diagnostics"]
    if method == "nuts":
        r_hat = "n/a (one chain)" if d["max_r_hat"] is None else f"{d['max_r_hat']:.3f}"
        lines.append(
            f"diagnostics: {d['divergences']} divergences, max R-hat {r_hat}, min bulk ESS {d['min_ess_bulk']:.0f}"
            + ("" if d.get("min_ess_tail") is None else f", min tail ESS {d['min_ess_tail']:.0f}")
        )
    if method == "quadrature":
        q = summary.get("settings", {}).get("quadrature", {})
        lines.append(
            f"diagnostics: independent draws (quadrature), error estimate {q.get('error_estimate', float('nan')):.1g} "
            f"of an sd, grid {' x '.join(map(str, q.get('grid', [])))}"
        )
    lines.extend(f"warning: {w}" for w in d["warnings"])
    lines.extend(f"note: {n}" for n in d.get("notes", []))  # folders written before notes existed have none
    return lines


def h2_line(fit) -> str:
    return summary_h2_line(_table_of(fit))


def summary_h2_line(summary: dict) -> str:
    """``h2 = ...`` with its interval; one line per trait (``h2_<trait> = ...``) for several traits."""
    names = ["h2"] if "h2" in summary["parameters"] else [n for n in summary["parameters"] if n.startswith("h2_")]
    lines = []
    for name in names:
        row = summary["parameters"][name]
        if summary["method"] == "map":
            lines.append(f"{name} = {row['mean']:.3f} (MAP)")
        else:
            lines.append(
                f"{name} = {row['mean']:.3f} (sd {row['sd']:.3f}), 90% interval [{row['q05']:.3f}, {row['q95']:.3f}]"
            )
    return "\n".join(lines)


def _check_new_individuals(new, geno) -> None:
    """The new genotypes (--predict) must hold every marker kept at training and no individual of the fit."""
    again = sorted(set(new.ids.astype(str)) & set(geno.ids.astype(str)))
    if again:
        raise InputError(
            f"{new.source}: {len(again)} individuals to predict are already in the genotypes of the fit: "
            f"{preview(again)}; their genetic values are in genetic_values.csv: drop them from the --predict file."
        )
    have = set(new.markers.astype(str))
    absent = [name for name in geno.markers.astype(str) if name not in have]
    if absent:
        raise InputError(
            f"{new.source}: {len(absent)} markers of the fit (after QC) are absent: {preview(absent)}. The genotypes "
            "to predict must hold every marker the fit keeps, under the same names."
        )
