"""The ``bayesblup`` command line.

Bad input ends with exit code 2 and one line on stderr saying what to fix, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .errors import InputError

_GRM_EXAMPLE = """\
examples:
  bayesblup grm --genotypes geno.csv.gz --scaling standardized --out G.npz
  bayesblup grm --genotypes plink/sample.bed --scaling centered --min-maf 0.01 --out G.csv
  bayesblup grm --genotypes geno.csv --scaling centered --allele-freq base_p.csv --out Gstar.npz --force
"""

_MAIN_EXAMPLE = """\
examples:
  bayesblup demo                      # G on the built-in wheat data, with a short summary
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
        description="Bayesian genomic BLUP: genotypes to relationship matrices (and, soon, posteriors).",
        epilog=_MAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bayesblup {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    grm = sub.add_parser(
        "grm",
        help="build a genomic relationship matrix G from genotypes",
        description="Read genotypes (CSV, CSV.gz or PLINK), run QC, build G and write it with its IDs.",
        epilog=_GRM_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grm.add_argument(
        "--genotypes", required=True, metavar="PATH", help="a .csv/.csv.gz file, or a PLINK .bed file or prefix"
    )
    grm.add_argument(
        "--coding",
        choices=["auto", "additive", "presence-absence"],
        default="auto",
        help="genotype coding of a CSV: 0/1/2 counts or 0/1 presence/absence (auto: additive if any 2 occurs)",
    )
    _add_g_options(grm)
    grm.add_argument("--out", required=True, metavar="PATH", help="output file: .npz (arrays G, ids), .csv or .csv.gz")
    grm.add_argument("--force", action="store_true", help="replace --out if it exists")
    grm.add_argument("--quiet", action="store_true", help="print nothing but errors")

    demo = sub.add_parser(
        "demo",
        help="build G on the built-in wheat data and print a summary",
        description="The main job on built-in data: wheat (599 lines x 1279 DArT markers, BGLR) to G, with QC.",
        epilog="example:\n  bayesblup demo --scaling centered\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_g_options(demo)
    return parser


def _add_g_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scaling",
        choices=["standardized", "standardized-hwe", "centered"],
        default="standardized",
        help="standardized: (x - mean)/sd, G = WW'/m (as BGLR's scale()); standardized-hwe: "
        "(x - 2p)/sqrt(2p(1-p)), G = WW'/m; centered: x - 2p, G* = W*W*'/(2 sum p(1-p)) (VanRaden 2008). "
        "Default: %(default)s",
    )
    parser.add_argument("--allele-freq", metavar="PATH", help="base-population allele frequencies, CSV 'marker,p'")
    parser.add_argument("--min-maf", type=float, metavar="X", help="drop markers with minor allele frequency below X")
    parser.add_argument("--min-call-rate", type=float, metavar="X", help="drop markers with call rate below X")
    parser.add_argument(
        "--min-individual-call-rate", type=float, metavar="X", help="drop individuals with call rate below X"
    )
    parser.add_argument("--float32", action="store_true", help="compute G in single precision (half the memory)")
    parser.add_argument("--block-size", type=int, metavar="N", help="markers per block when building G")


def _relationship_from(genotypes, args, say):
    """QC then G, reporting each phase; shared by ``grm`` and ``demo``."""
    from .io import read_allele_freq
    from .qc import quality_control
    from .relationship import genomic_relationship

    t0 = time.perf_counter()
    geno, report = quality_control(
        genotypes,
        min_maf=args.min_maf,
        min_call_rate=args.min_call_rate,
        min_individual_call_rate=args.min_individual_call_rate,
    )
    for line in report.lines():
        say(line)
    allele_freq = read_allele_freq(args.allele_freq) if args.allele_freq else None
    rel = genomic_relationship(
        geno,
        scaling=args.scaling,
        allele_freq=allele_freq,
        dtype=np.float32 if args.float32 else np.float64,
        block_size=args.block_size,
    )
    s = rel.summary()
    formula = "G* = W*W*'/nu_p" if args.scaling == "centered" else "G = WW'/m"
    say(
        f"G ({args.scaling}, {formula}): n = {s['n_individuals']}, m = {s['n_markers']}, "
        f"denominator = {rel.denominator:.6g}"
    )
    say(f"  mean diagonal: {s['mean_diagonal']:.6f}")
    if "min_off_diagonal" in s:
        say(
            f"  off-diagonal: mean {s['mean_off_diagonal']:.6f}, "
            f"range [{s['min_off_diagonal']:.4f}, {s['max_off_diagonal']:.4f}]"
        )
    say(f"  markers dropped by QC: {report.n_markers_dropped}")
    say(f"  time: {time.perf_counter() - t0:.2f} s (QC and G)")
    return rel


def _check_options(args) -> None:
    """Reject option combinations before any file is read."""
    if args.allele_freq and args.scaling == "standardized":
        raise InputError(
            "--allele-freq applies to --scaling standardized-hwe or centered; 'standardized' centres each "
            "marker on its sample mean by definition."
        )


def _cmd_grm(args, say) -> None:
    from .io import RELATIONSHIP_SUFFIXES, check_new_output, read_genotypes, write_relationship

    out = Path(args.out)
    _check_options(args)
    check_new_output(out, force=args.force, suffixes=RELATIONSHIP_SUFFIXES)  # fail before the work
    genotypes = read_genotypes(args.genotypes, coding=args.coding)
    rel = _relationship_from(genotypes, args, say)
    write_relationship(rel, out, force=args.force)
    say(f"wrote {out}")


def _cmd_demo(args, say) -> None:
    from .datasets import load_wheat

    _check_options(args)
    say("bayesblup demo: genomic relationships of the built-in wheat data (BGLR; Crossa et al. 2010)")
    wheat = load_wheat()
    rel = _relationship_from(wheat.genotypes, args, say)
    if args.scaling == "standardized":
        n = rel.n_individuals
        say(f"  note: trace(G)/n = (n-1)/n = {(n - 1) / n:.6f} because each column is scaled by its sample sd (ddof=1)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    quiet = getattr(args, "quiet", False)

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    try:
        {"grm": _cmd_grm, "demo": _cmd_demo}[args.command](args, say)
    except InputError as exc:
        print(f"bayesblup {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # unreadable input or unwritable output: the system says why
        print(f"bayesblup {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bayesblup {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
