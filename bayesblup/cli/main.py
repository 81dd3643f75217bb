"""The ``bayesblup`` command line.

Bad input ends with exit code 2 and one line on stderr saying what to fix, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError

_GRM_EXAMPLE = """\
examples:
  bayesblup grm --genotypes geno.csv.gz --scaling standardized --out G.npz
  bayesblup grm --genotypes plink/sample.bed --scaling centered --min-maf 0.01 --out G.csv
  bayesblup grm --genotypes geno.csv --scaling centered --allele-freq base_p.csv --out Gstar.npz --force
  bayesblup grm --genotypes big.bed --dask --scheduler tcp://scheduler:8786 --out G.npz   # out of core, on a cluster
"""

_FIT_EXAMPLE = """\
examples:
  bayesblup fit --genotypes geno.csv.gz --phenotypes pheno.csv --trait y1 --model gblup --out fit_y1
  bayesblup fit --genotypes plink/data.bed --phenotypes pheno.csv --trait yield --model mblup \\
      --prior bglr --chains 4 --draws 2000 --seed 1 --out fit_mblup
  bayesblup fit ... --method map --out fit_map      # point estimates (posterior mode) in seconds
  bayesblup fit ... --method quadrature --out fit_q # exact h2 and variances, one Gaussian trait and kernel
  bayesblup fit ... --plots --out fit_plots          # also PNGs: h2, genetic values, diagnostics
  bayesblup fit ... --top 20 --out fit_sel          # the 20 best by posterior mean, P(in the top 10%)
  bayesblup fit ... --model mblup --map map.csv --plots --out fit_mp   # and marker effects along the genome
  bayesblup summary fit_y1                          # re-print the table of a finished fit

The out folder receives summary.json (parameters with mean, sd, q05, q95, ess_bulk, ess_tail, r_hat,
mcse_mean; diagnostics; settings, the seed included; timings), genetic_values.csv (id, mean, sd, pev,
reliability, phenotyped), posterior.nc (the DataTree, with the records; the pointwise log-likelihood for az.loo
only with --log-likelihood), and as asked marker_effects.csv (marker, mean, sd; --model mblup; chromosome and
position too with --map or PLINK/VCF genotypes), predictions.csv (--predict), cv.csv and cv_predictions.csv
(--folds), selection.csv (rank, id, mean, sd, reliability, phenotyped, p_top; --top), PNG plots (--plots).
"""

_MAIN_EXAMPLE = """\
examples:
  bayesblup demo                      # G-BLUP and M-BLUP on the built-in wheat data, h2 and eq (7)
  bayesblup fit --genotypes geno.csv.gz --phenotypes pheno.csv --trait y1 --model gblup --out fit_y1
  bayesblup summary fit_y1            # re-print h2, variances and diagnostics of a finished fit
  bayesblup grm --genotypes geno.csv.gz --scaling standardized --out G.npz
  bayesblup grm --help                # every option of a command, with examples
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command and pointing to --help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bayesblup",
        description="Bayesian genomic BLUP: genotypes and phenotypes to posteriors of h2, genetic values and "
        "marker effects.",
        epilog=_MAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bayesblup {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    grm = sub.add_parser(
        "grm",
        help="build a genomic relationship matrix G from genotypes",
        description="Read genotypes (CSV, CSV.gz, PLINK or VCF), run QC, build G and write it with its IDs.",
        epilog=_GRM_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(grm)
    _add_scaling_option(grm)
    _add_g_options(grm)
    grm.add_argument(
        "--dask", action="store_true",
        help="PLINK .bed only: QC and G from blocks of markers read by Dask tasks, never all the calls in memory "
        "(needs pip install 'bayesblup[dask]'); --block-size is then markers per task",
    )  # fmt: skip
    grm.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="with --dask: address of a dask.distributed scheduler, e.g. tcp://scheduler:8786; its workers must "
        "read the .bed at the same path (default: one block at a time in this process)",
    )  # fmt: skip
    grm.add_argument("--out", required=True, metavar="PATH", help="output file: .npz (arrays G, ids), .csv or .csv.gz")
    _add_output_options(grm)

    fit = sub.add_parser(
        "fit",
        help="fit G-BLUP or M-BLUP and write posteriors, genetic values and diagnostics",
        description="Read genotypes and phenotypes, run QC, fit the model by NUTS or MAP, write DIR.",
        epilog=_FIT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(fit, genotypes_required=False)
    fit.add_argument(
        "--relationship", nargs="+", metavar="PATH",
        help="your own relationship matrix (a pedigree A, a G from other software, BGLR's K): the .npz/.csv/.csv.gz "
        "that `bayesblup grm` writes, or a square CSV with the IDs as its header and first column (R's write.csv). "
        "One G-BLUP term each, named by the file; with --genotypes, the genotypes' G is one more term ('genomic')",
    )  # fmt: skip
    fit.add_argument(
        "--phenotypes",
        required=True,
        metavar="PATH",
        help="CSV: ID in the first column, one column per trait; or a PLINK .fam (trait 'phenotype': -9 missing, "
        "1/2 case/control read as 0/1 and fitted as binary)",
    )
    fit.add_argument(
        "--trait",
        required=True,
        nargs="+",
        metavar="COLUMN",
        help="the trait column to analyse; several (--trait y1 y2 y4) fit them jointly, with genetic correlations",
    )
    fit.add_argument(
        "--model", choices=["gblup", "mblup"],
        help="G-BLUP (genetic values) or M-BLUP (marker effects); without it, G-BLUP (the fit says so)",
    )  # fmt: skip
    fit.add_argument("--out", required=True, metavar="DIR", help="output folder (must not exist, unless --force)")
    _add_model_options(fit)
    fit.add_argument(
        "--fixed", nargs="+", metavar="COL", help="phenotype columns as fixed effects (numbers, or factors dummy-coded)"
    )
    fit.add_argument(
        "--weights", metavar="COL",
        help="phenotype column of residual weights w > 0, Var(e) = sigma2_e / w (e.g. w = measurements averaged)",
    )  # fmt: skip
    fit.add_argument(
        "--repeated-records", action="store_true",
        help="allow several rows (records) per individual in the phenotypes",
    )  # fmt: skip
    fit.add_argument(
        "--permanent-environment", action="store_true",
        help="add a permanent-environment effect per individual, shared by its records (implies --repeated-records)",
    )  # fmt: skip
    fit.add_argument(
        "--folds", metavar="COL|CSV",
        help="fold labels (one fold per individual): a phenotype column, or a CSV of ID and fold (e.g. id,fold); "
        "k-fold cross-validation, written to cv.csv",
    )  # fmt: skip
    fit.add_argument(
        "--predict", metavar="PATH", help="genotypes of new individuals: their genetic values go to predictions.csv"
    )
    fit.add_argument(
        "--sets", metavar="PATH",
        help="CSV 'marker,set': one genetic term per marker set (markers in no set form the set 'rest'); "
        "reports h2_<set>, and per set sigma2_g_<set> (gblup) or sigma2_b_<set> (mblup)",
    )  # fmt: skip
    fit.add_argument(
        "--sets-path", choices=["auto", "woodbury", "dense"], default="auto",
        help="exact likelihood path with --sets (default auto: Woodbury for small sets beside a large one)",
    )  # fmt: skip
    fit.add_argument(
        "--path", choices=["auto", "low-rank", "dense"], default="auto",
        help="one kernel's likelihood path (default auto: low-rank when there are fewer markers than individuals "
        "with a record, through the m x m W'W, no n x n G; dense: G and its n x n eigendecomposition)",
    )  # fmt: skip
    fit.add_argument(
        "--plots", action="store_true",
        help="also write PNGs into the out folder: h2, genetic values, trace, rank, energy (and partitioned h2 "
        "with --sets; M-BLUP's marker effects along the genome with a map); needs matplotlib (pip install "
        "'bayesblup[plots]')",
    )  # fmt: skip
    fit.add_argument(
        "--map", metavar="PATH",
        help="marker map for --model mblup: a PLINK .bim, or a CSV marker,chromosome,position; marker_effects.csv "
        "gains chromosome and position, and --plots draws marker_effects.png. Without it, the positions of PLINK "
        "or VCF --genotypes are used",
    )  # fmt: skip
    fit.add_argument(
        "--missing-codes", nargs="+", type=float, default=(), metavar="VALUE",
        help="values of the phenotype file that mean 'no record' (e.g. -9, PLINK's code), besides empty cells and NA",
    )  # fmt: skip
    fit.add_argument(
        "--reference-h2", type=_unit_interval, metavar="H2",
        help="a point estimate of h2 (e.g. REML) drawn on the h2 plot for comparison",
    )  # fmt: skip
    fit.add_argument(
        "--prior-sensitivity", action="store_true",
        help="also refit under the default set of priors (default, bglr, half-normal, beta(2,2)) and write the "
        "posteriors of h2 side by side to prior_sensitivity.csv",
    )  # fmt: skip
    fit.add_argument(
        "--top", type=int, metavar="N",
        help="write selection.csv: the N individuals of highest posterior mean, with sd, reliability and p_top, the "
        "probability of being in the top --top-fraction of every individual of the fit, from joint draws of g",
    )  # fmt: skip
    fit.add_argument(
        "--top-fraction", type=float, metavar="F",
        help="with --top: the top fraction p_top refers to, in (0, 1); default 0.1 (the best 10%%)",
    )  # fmt: skip
    fit.add_argument(
        "--log-likelihood", action="store_true",
        help="also write the pointwise log-likelihood in posterior.nc, for az.loo and az.compare (one trait; not "
        "--method map): records x draws numbers, 19 MB for wheat's 599 records x 4000 draws, so not by default",
    )  # fmt: skip
    fit.add_argument(
        "--posterior-predictive", action="store_true",
        help="also write replicated records per draw (posterior_predictive in posterior.nc), for az.plot_ppc_dist",
    )  # fmt: skip
    fit.add_argument(
        "--strict", action="store_true",
        help="exit with code 3 if the fit ends with a diagnostic warning (divergences, R-hat > 1.01, bulk or tail "
        "ESS < 400); the outputs are written all the same",
    )  # fmt: skip
    _add_output_options(fit)

    summary = sub.add_parser(
        "summary",
        help="re-print the end-of-fit table of a finished out folder",
        description="Re-print h2, the variance components and the diagnostics of a finished `bayesblup fit`.",
        epilog="example:\n  bayesblup summary fit_y1\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    summary.add_argument("folder", metavar="DIR", help="an output folder written by `bayesblup fit`")
    demo = sub.add_parser(
        "demo",
        help="the main job on built-in data: G-BLUP and M-BLUP on wheat, h2 and the equivalence check",
        description="Fit G-BLUP and M-BLUP to wheat trait y1 (599 lines x 1279 DArT markers, BGLR), print h2 "
        "with its interval, and check eq (7): sigma2_g = m sigma2_b.",
        epilog="example:\n  bayesblup demo --prior default --seed 2\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--trait", default="y1", choices=["y1", "y2", "y4", "y5"], help="wheat trait (default y1)")
    _add_model_options(demo, prior_default="default", seed_default=1)  # the calibrated prior leads (issue 19)
    return parser


def _add_input_options(parser: argparse.ArgumentParser, *, genotypes_required: bool = True) -> None:
    """Genotype file, coding and QC filters: shared by grm and fit."""
    parser.add_argument(
        "--genotypes", required=genotypes_required, metavar="PATH",
        help="a .csv/.csv.gz file, a PLINK .bed file or prefix, or a .vcf/.vcf.gz/.bcf file (pip install "
        "'bayesblup[vcf]')"
        + ("" if genotypes_required else " (or give --relationship, or both)"),
    )  # fmt: skip
    parser.add_argument(
        "--coding", choices=["auto", "additive", "presence-absence"], default="auto",
        help="genotype coding of a CSV: 0/1/2 counts or 0/1 presence/absence (auto: additive if any 2 occurs)",
    )  # fmt: skip
    parser.add_argument(
        "--vcf-field", choices=["auto", "GT", "DS"], default="auto",
        help="a VCF's calls: GT (ALT allele counts) or DS (dosages); auto: DS when every record has it, else GT",
    )  # fmt: skip
    parser.add_argument("--min-maf", type=float, metavar="X", help="drop markers with minor allele frequency below X")
    parser.add_argument("--min-call-rate", type=float, metavar="X", help="drop markers with call rate below X")
    parser.add_argument(
        "--min-individual-call-rate", type=float, metavar="X", help="drop individuals with call rate below X"
    )
    parser.add_argument(
        "--min-dosage-r2", type=float, metavar="X",
        help="drop markers whose dosage r2 (MaCH r2, as plink2 --mach-r2-filter) is below X, e.g. 0.3: poorly "
        "imputed markers; for a VCF's fractional DS dosages only",
    )  # fmt: skip


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace the output if it exists")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _add_scaling_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scaling", choices=["standardized", "standardized-hwe", "centered"], default="standardized",
        help="standardized: (x - mean)/sd, G = WW'/m (as BGLR's scale()); standardized-hwe: "
        "(x - 2p)/sqrt(2p(1-p)), G = WW'/m; centered: x - 2p, G* = W*W*'/(2 sum p(1-p)) (VanRaden 2008). "
        "Default: %(default)s",
    )  # fmt: skip


def _add_model_options(parser: argparse.ArgumentParser, *, prior_default: str = "default", seed_default=None) -> None:
    _add_scaling_option(parser)
    parser.add_argument(
        "--prior", choices=["default", "bglr"], default=prior_default,
        help="default: h2 ~ Beta(1,1), total variance ~ LogNormal(log var(y), 1); bglr: BGLR's scaled "
        "inverse chi-square (df0=5, R2=0.5). Without it: %(default)s",
    )  # fmt: skip
    parser.add_argument(
        "--method", choices=["nuts", "map", "quadrature"], default="nuts",
        help="NUTS sampling; MAP, the posterior mode (for --family binary or ordinal: the Laplace approximation's "
        "marginal mode, g integrated out); or quadrature, the exact posterior of the two variance components of one "
        "kernel and a Gaussian trait with independent draws (no permanent environment, no --sets). Default %(default)s",
    )  # fmt: skip
    parser.add_argument(
        "--form", choices=["marginal", "latent"], default=None,
        help="spectral marginal (fast; the default for a Gaussian trait) or latent g/b (the only form of --family "
        "binary or ordinal)",
    )  # fmt: skip
    parser.add_argument(
        "--family", choices=["gaussian", "binary", "ordinal"], default=None,
        help="the trait's likelihood: gaussian, or the threshold (probit liability) model of a binary (two values, "
        "e.g. 0/1) or ordinal (ordered categories) trait: h2 on the liability scale. Without it: gaussian, or "
        "binary for a PLINK .fam's case/control phenotype",
    )  # fmt: skip
    parser.add_argument(
        "--prevalence", type=float, default=None, metavar="K",
        help="with --family binary: the population prevalence, for the observed-scale h2 at it "
        "(h2_observed_population; h2_observed is at the sample's)",
    )  # fmt: skip
    parser.add_argument("--chains", type=int, default=4, help="default %(default)s")
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain after tuning; default %(default)s")
    parser.add_argument("--tune", type=int, default=1000, help="tuning steps per chain; default %(default)s")
    parser.add_argument("--seed", type=_non_negative, default=seed_default, help="random seed (an integer >= 0)")
    parser.add_argument(
        "--cores", type=int, default=None, metavar="N",
        help="processes to run the chains in (default: one per chain, up to the CPUs available); the draws do not "
        "depend on it",
    )  # fmt: skip
    parser.add_argument(
        "--target-accept",
        type=float,
        default=None,
        help="NUTS target acceptance (default 0.9); raise to 0.95 or 0.99 on divergences",
    )
    parser.add_argument(
        "--nuts-sampler", choices=["pymc", "nutpie", "numpyro", "blackjax"], default=None,
        help="NUTS implementation (default pymc; nutpie compiles for 10-25 s a fit, worth it only for long latent "
        "fits); numpyro and blackjax run on JAX, "
        "e.g. on a GPU (pip install 'bayesblup[jax]'), for --form latent or a single-kernel model",
    )  # fmt: skip


def _add_g_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allele-freq", metavar="PATH", help="base-population allele frequencies, CSV 'marker,p'")
    parser.add_argument("--float32", action="store_true", help="compute G in single precision (half the memory)")
    parser.add_argument("--block-size", type=int, metavar="N", help="markers per block when building G")


def _relationship_from(genotypes, args, say):
    """QC then G, reporting each phase; shared by ``grm`` and ``demo``."""
    from ..genotypes.qc import quality_control
    from ..genotypes.readers import read_allele_freq
    from ..genotypes.relationship import genomic_relationship

    t0 = time.perf_counter()
    geno, report = quality_control(
        genotypes,
        min_maf=args.min_maf,
        min_call_rate=args.min_call_rate,
        min_individual_call_rate=args.min_individual_call_rate,
        min_dosage_r2=getattr(args, "min_dosage_r2", None),
    )
    for line in report.lines():
        say(line)
    from ..resources import check_memory, relationship_memory

    itemsize = 4 if args.float32 else 8
    n, m = geno.n_individuals, geno.n_markers
    check_memory(
        relationship_memory(n, m, itemsize=itemsize),
        what=f"G of {n} individuals from {m} markers ({'float32' if args.float32 else 'float64'})",
        instead=""
        if args.float32
        else "--float32 halves it; "
        + "grm --dask computes G from a PLINK .bed block by block (G itself must still fit).",
    )
    allele_freq = read_allele_freq(args.allele_freq) if args.allele_freq else None
    rel = genomic_relationship(
        geno,
        scaling=args.scaling,
        allele_freq=allele_freq,
        dtype=np.float32 if args.float32 else np.float64,
        block_size=args.block_size,
    )
    _say_relationship(rel, report, args.scaling, say, t0)
    return rel


def _relationship_dask(args, say):
    """QC and G in blocks of markers with Dask (``grm --dask``), reported as :func:`_relationship_from` does."""
    from ..genotypes.dask import genomic_relationship_bed
    from ..genotypes.readers import read_allele_freq

    t0 = time.perf_counter()
    where = f"on the scheduler at {args.scheduler}" if args.scheduler else "in this process, a block at a time"
    say(f"QC and G with Dask, from blocks of markers read from {args.genotypes}, {where}")
    rel = genomic_relationship_bed(
        args.genotypes,
        scaling=args.scaling,
        allele_freq=read_allele_freq(args.allele_freq) if args.allele_freq else None,
        min_maf=args.min_maf,
        min_call_rate=args.min_call_rate,
        min_individual_call_rate=args.min_individual_call_rate,
        block_size=args.block_size,
        client=args.scheduler,
        dtype=np.float32 if args.float32 else np.float64,
    )
    for line in rel.qc_report.lines():
        say(line)
    _say_relationship(rel, rel.qc_report, args.scaling, say, t0)
    return rel


def _say_relationship(rel, report, scaling: str, say, t0: float) -> None:
    s = rel.summary()
    formula = "G* = W*W*'/nu_p" if scaling == "centered" else "G = WW'/m"
    say(
        f"G ({scaling}, {formula}): n = {s['n_individuals']}, m = {s['n_markers']}, denominator = {rel.denominator:.6g}"
    )
    say(f"  mean diagonal: {s['mean_diagonal']:.6f}")
    if "min_off_diagonal" in s:
        say(
            f"  off-diagonal: mean {s['mean_off_diagonal']:.6f}, "
            f"range [{s['min_off_diagonal']:.4f}, {s['max_off_diagonal']:.4f}]"
        )
    say(f"  markers dropped by QC: {report.n_markers_dropped}")
    say(f"  time: {time.perf_counter() - t0:.2f} s (QC and G)")


def _non_negative(text: str) -> int:
    """An integer >= 0 (argparse type): --seed (NumPy's seeds are non-negative)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def _unit_interval(text: str) -> float:
    """A number strictly between 0 and 1 (argparse type): --reference-h2."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1 (a heritability), got {text}")
    return value


def _check_options(args) -> None:
    """Reject option combinations before any file is read."""
    if args.allele_freq and args.scaling == "standardized":
        raise InputError(
            "--allele-freq applies to --scaling standardized-hwe or centered; 'standardized' centres each "
            "marker on its sample mean by definition."
        )


def _check_dask_options(args) -> None:
    """``grm --dask`` reads PLINK .bed files only; ``--scheduler`` needs ``--dask``."""
    from ..genotypes.readers import is_plink

    if args.scheduler and not args.dask:
        raise InputError("--scheduler runs the Dask computation of G: add --dask.")
    if not args.dask:
        return
    if not is_plink(args.genotypes):
        raise InputError(
            f"--dask reads a PLINK .bed block by block; {args.genotypes} is not a PLINK .bed (or prefix). "
            "Convert it (plink --make-bed) or drop --dask."
        )
    if args.coding not in ("auto", "additive"):
        raise InputError(f"PLINK files hold 0/1/2 allele counts; --coding {args.coding} does not apply.")
    if args.vcf_field != "auto":
        raise InputError(f"--dask reads a PLINK .bed, not a VCF; --vcf-field {args.vcf_field} does not apply.")


def _cmd_grm(args, say) -> None:
    from ..files import check_new_output
    from ..genotypes.readers import RELATIONSHIP_SUFFIXES, read_genotypes, write_relationship
    from .workflow import check_qc_options

    out = Path(args.out)
    _check_options(args)
    _check_dask_options(args)
    check_qc_options(
        args.genotypes,
        vcf_field=args.vcf_field,
        min_maf=args.min_maf,
        min_call_rate=args.min_call_rate,
        min_individual_call_rate=args.min_individual_call_rate,
        min_dosage_r2=args.min_dosage_r2,
    )
    check_new_output(out, force=args.force, suffixes=RELATIONSHIP_SUFFIXES)  # fail before the work
    if args.dask:
        rel = _relationship_dask(args, say)
    else:
        genotypes = read_genotypes(args.genotypes, coding=args.coding, vcf_field=args.vcf_field)
        rel = _relationship_from(genotypes, args, say)
    write_relationship(rel, out, force=args.force)
    say(f"wrote {out}")


def _job(args, genotypes, phenotypes, model: str):
    from .workflow import FitJob

    return FitJob(
        genotypes=genotypes,
        phenotypes=phenotypes,
        trait=args.trait[0] if len(args.trait) == 1 else args.trait,
        model=model,
        scaling=args.scaling,
        prior=args.prior,
        method=args.method,
        form=args.form,
        family=args.family,
        prevalence=args.prevalence,
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        target_accept=args.target_accept,
        nuts_sampler=args.nuts_sampler,
        cores=args.cores,
        seed=args.seed,
        coding=getattr(args, "coding", "auto"),
        vcf_field=getattr(args, "vcf_field", "auto"),
        qc={
            name: getattr(args, name, None)
            for name in ("min_maf", "min_call_rate", "min_individual_call_rate", "min_dosage_r2")
        },
        predict=getattr(args, "predict", None),
        fixed=tuple(getattr(args, "fixed", None) or ()),
        missing_codes=tuple(getattr(args, "missing_codes", None) or ()),
        weights=getattr(args, "weights", None),
        repeated=getattr(args, "repeated_records", False),
        permanent_environment=getattr(args, "permanent_environment", False),
        folds=getattr(args, "folds", None),
        sets=getattr(args, "sets", None),
        sets_path=getattr(args, "sets_path", "auto"),
        path=getattr(args, "path", "auto"),
        relationships=tuple(getattr(args, "relationship", None) or ()),
        prior_sensitivity=getattr(args, "prior_sensitivity", False),
        top=getattr(args, "top", None),
        top_fraction=getattr(args, "top_fraction", None),
        marker_map=getattr(args, "map", None),
        log_likelihood=getattr(args, "log_likelihood", False),
        posterior_predictive=getattr(args, "posterior_predictive", False),
        # PyMC's progress bar on a terminal only: a log file or a pipe gets the progress lines alone
        progressbar=not getattr(args, "quiet", False) and sys.stderr.isatty(),
    )


def _cmd_fit(args, say) -> int:
    from ..files import atomic_folder
    from ..results.store import write_fit
    from .workflow import format_fit_table, h2_line, run_fit

    t0 = time.perf_counter()
    startup = _process_age()  # Python's start and the imports before this command ran
    from ..linalg.spectral import RankDeficiencyWarning

    # the fit's diagnostics note the rank once, at the end, with the reason; the warning would say it twice
    warnings.filterwarnings("ignore", category=RankDeficiencyWarning)
    out = Path(args.out)
    if args.plots and args.method == "map":  # refused before the work, not after it
        raise InputError(
            "--plots draws the posterior (h2's density, trace, rank and energy plots), which --method map does not "
            "sample: drop --plots, or use --method nuts."
        )
    # An existing --out is refused now, before the work; the folder written meanwhile is renamed
    # onto --out at the end only if nothing appeared there (another run, a user): see atomic_folder.
    with atomic_folder(out, force=args.force) as folder:
        if args.plots:
            from ..plots import require_matplotlib

            require_matplotlib()  # without matplotlib, refuse before the work rather than after it
        if args.model is None:  # the common case, said rather than silently assumed
            args.model = "gblup"
            say("model: G-BLUP (--model not given; --model mblup fits marker effects)")
        outcome = run_fit(_job(args, args.genotypes, args.phenotypes, args.model), say)
        check_interrupted()  # a Ctrl-C that something swallowed: nothing is written
        fit = outcome.fit
        fit.timings = outcome.timings | {"total_s": time.perf_counter() - t0}  # write_fit adds write_s to total_s
        if startup is not None:
            fit.timings["startup_s"] = startup
        reference = None if args.reference_h2 is None else {"reference": args.reference_h2}
        sensitivity = outcome.prior_sensitivity
        tables = {} if sensitivity is None else {"prior_sensitivity.csv": sensitivity}
        selection = outcome.selection
        extra = None
        if selection is not None:
            tables["selection.csv"] = selection
            extra = {"selection": selection.attrs | {"n_rows": len(selection)}}
        plots = None
        if args.plots:
            from ..plots import write_plots

            def plots(to):
                return write_plots(fit, to, reference=reference)

        write_fit(
            fit, folder, predictions=outcome.predictions, cv=outcome.cv, plots=plots, tables=tables or None,
            extra_summary=extra,
        )  # fmt: skip
    say(h2_line(fit))
    for line in format_fit_table(fit):
        say(line)
    if sensitivity is not None:
        from ..analyses.sensitivity import format_sensitivity_table

        say("prior sensitivity (prior_sensitivity.csv):")
        for line in format_sensitivity_table(sensitivity):
            say(line)
    if selection is not None:
        from ..results.selection import format_selection

        for line in format_selection(selection):
            say(line)
    pngs = ", PNG plots" if args.plots else ""
    pngs = (", selection.csv" if selection is not None else "") + pngs
    say(f"wrote {out}/: summary.json, genetic_values.csv, posterior.nc{pngs} ({time.perf_counter() - t0:.1f} s in all)")
    warned = fit.diagnostics()["warnings"]
    if args.strict and warned:
        print(
            f"bayesblup fit: --strict: {len(warned)} diagnostic warning(s), listed above and in {out}/summary.json "
            "(diagnostics.warnings); the outputs are kept",
            file=sys.stderr,
        )
        return 3
    return 0


def _process_age() -> float | None:
    """Seconds since this process started (Linux's /proc), or None where that cannot be read."""
    import os

    try:
        with open("/proc/self/stat") as handle:
            started = int(handle.read().rsplit(")", 1)[1].split()[19])  # field 22: start time, in clock ticks
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def _cmd_summary(args, say) -> None:
    import json

    from .workflow import format_summary_table, summary_h2_line

    path = Path(args.folder) / "summary.json"
    if not path.is_file():
        raise InputError(f"{args.folder} has no summary.json: pass a folder written by `bayesblup fit --out`.")
    try:
        summary = json.loads(path.read_text())
        head = (
            f"{summary['model']} ({summary['form']}) of trait {_traits(summary['trait'])}: "
            f"{summary['n_records']} records, "
            f"{summary['n_individuals']} individuals, prior {summary['prior']}, method {summary['method']}"
        )
        sets = summary.get("sets")
        if isinstance(sets, dict) and len(sets) > 1:
            head += f"; terms {', '.join(sets)}"
        lines = [head, summary_h2_line(summary), *format_summary_table(summary)]
        cv = summary.get("cross_validation")
        if cv:
            lines.append(f"cross-validation: mean predictive correlation {cv['mean_correlation']:.3f} (cv.csv)")
        selection = summary.get("selection")
        if selection:
            from ..results.selection import describe

            lines.append(describe(selection, selection["n_rows"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a bayesblup summary (unreadable or missing {exc}).") from exc
    for line in lines:
        say(line)
    files = sorted(p.name for p in Path(args.folder).iterdir() if not p.name.startswith("."))
    say(f"outputs in {args.folder}/: {', '.join(files)}")


def _cmd_demo(args, say) -> None:
    from ..analyses.equivalence import check_equivalence
    from ..datasets import load_wheat
    from .workflow import format_fit_table, h2_line, run_fit

    say(f"bayesblup demo: wheat trait {args.trait} (599 lines x 1279 DArT markers; BGLR, Crossa et al. 2010)")
    wheat = load_wheat()
    fits = {}
    for model in ("gblup", "mblup"):
        say(f"--- {model.upper().replace('BLUP', '-BLUP')} ---")
        fits[model] = run_fit(_job(args, wheat.genotypes, wheat.phenotypes, model), say).fit
        say(h2_line(fits[model]))
        for line in format_fit_table(fits[model]):
            say(line)
    if args.trait == "y1" and args.scaling == "standardized":
        say(
            "reference (BGLR RKHS on the same G, its own prior, 12,000 Gibbs iterations): h2 = 0.502 (sd 0.055); "
            "REML h2 = 0.499"
        )
        if args.prior == "default":
            say("(prior 'default': h2 ~ Beta(1, 1), the calibrated choice; --prior bglr gives BGLR's own priors)")
    say("--- the equivalence ---")
    for line in check_equivalence(fits["mblup"], fits["gblup"]).lines():
        say(line)


class _Terminated(BaseException):
    """SIGTERM, raised so that the command unwinds: a fit's hidden output folder is then removed."""


def _raise_terminated(signum, frame):
    raise _Terminated


#: Set by Ctrl-C (SIGINT) during a command, whoever catches the KeyboardInterrupt: a library that swallows it
#: (a compiler, a sampler returning what it has) must not turn an interrupted run into a finished one.
_INTERRUPTED = threading.Event()


def _raise_interrupt(signum, frame):
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came during this command, even if something swallowed it meanwhile."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def _unwind_on_sigterm():
    """For the duration of a command, turn SIGTERM into an exception and remember SIGINT.

    SIGTERM (``kill``, a batch system's time limit): Python's default ends the process at once, skipping the
    clean-up of what the run was writing. SIGINT: see :func:`check_interrupted`.
    """
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    _INTERRUPTED.clear()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_int = signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        signal.signal(signal.SIGINT, previous_int if previous_int is not None else signal.default_int_handler)


def run() -> None:
    """The ``bayesblup`` program: :func:`main`, then exit without tearing the interpreter down.

    Once the command has finished (its files written and closed, its chain processes joined), the exit handlers
    run and the streams are flushed, and the process ends there: Python's own finalisation of the modules PyMC,
    PyTensor and numba load took 0.4 s of a 4 s wheat fit (measured), for nothing a user keeps.
    """
    import atexit
    import os

    code = main(program=True)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _skip_dask() -> None:
    """Let xarray find no Dask in this process (the program, not :func:`main` called from Python).

    Where Dask is installed (the ``dask`` extra), xarray imports it, and dask.distributed, the first time it makes a
    variable and again when it writes posterior.nc, only to learn that the arrays are not Dask's: 0.4 s of a 3 s wheat
    fit (measured). Only ``grm --dask`` uses Dask, and xarray treats a missing Dask as "not a Dask array".
    """
    for name in ("dask", "distributed"):
        # None in sys.modules is Python's own "not installed": importing it raises ImportError, find_spec gives None
        sys.modules.setdefault(name, None)


def main(argv: list[str] | None = None, *, program: bool = False) -> int:
    """Run the command line; returns the exit code.

    ``program``: called as the ``bayesblup`` program (:func:`run`), which tells xarray there is no Dask unless the
    command is ``grm --dask`` (:func:`_skip_dask`).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    # after parsing, so that argparse decides what --dask is (it also takes an abbreviation such as --das)
    if program and not getattr(args, "dask", False):
        _skip_dask()
    if args.command is None:
        parser.print_help()
        return 2
    quiet = getattr(args, "quiet", False)

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    # Python warnings become one line each (no source-line dump); they are also in summary.json.
    warnings.showwarning = lambda message, category, *rest, **kw: print(
        f"warning: {' '.join(str(message).split())}", file=sys.stderr
    )
    if quiet:  # nothing but errors: PyMC's progress log and warnings too (both are in summary.json)
        # PyMC sets levels on its sub-loggers too, so the parent's level alone does not silence them
        for name in ("pymc", "pymc.sampling.mcmc", "pymc.stats.convergence"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
    command = {"grm": _cmd_grm, "fit": _cmd_fit, "summary": _cmd_summary, "demo": _cmd_demo}[args.command]
    try:
        with _unwind_on_sigterm():
            code = command(args, say)
    except InputError as exc:
        print(f"bayesblup {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of our output went away (`bayesblup summary DIR | head`): nothing to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error as Python flushes stdout
        return 0
    except OSError as exc:  # unreadable input or unwritable output: the system says why
        print(f"bayesblup {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bayesblup {args.command}: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"bayesblup {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as exc:  # a bug or an environment problem: exit 1, with the traceback for a report
        if _INTERRUPTED.is_set():  # what a library raised on its way out of a Ctrl-C (PyMC: "Not enough samples")
            print(f"bayesblup {args.command}: interrupted", file=sys.stderr)
            return 130
        traceback.print_exc()
        print(f"bayesblup {args.command}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return code or 0  # fit --strict returns 3 on a diagnostic warning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def _traits(trait) -> str:
    """summary.json's trait: a name, or the list of several traits."""
    return ", ".join(trait) if isinstance(trait, list) else str(trait)
