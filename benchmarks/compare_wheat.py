"""bayesblup against BGLR, rrBLUP and brms on wheat trait y1: estimates, wall times and ESS per second.

Every run uses the set-up of the R reference runs (``tests/data/reference/README.md``): y = wheat ``y1``
(n = 599), W = the 1279 markers standardized as R's ``scale()`` (``scaling="standardized"``), G = WW'/m,
and BGLR's priors (``prior="bglr"``: df0 = 5, R2 = 0.5).

In this one process, after the imports (PyMC's included; their time is printed apart), the script times
each bayesblup method end to end, from ``bayesblup.datasets.load_wheat()`` (reading the shipped CSVs)
through QC and G (or W) to the fit and the genetic values:

- G-BLUP, NUTS, ``--chains`` x ``--draws`` (default 4 x 1000, + 1000 tuning): G, its eigendecomposition,
  PyTensor's compilation, sampling, genetic values (the marginal form, the package's default);
- M-BLUP, NUTS, the same on W (the eigendecomposition of WW');
- G-BLUP, MAP (``method="map"``): the posterior mode;
- ``bayesblup.analyses.reml``: REML on G, as rrBLUP's ``mixed.solve``.

Each is run ``--repeats`` times (default 3) and the run with the median wall time is reported (the fits are
seeded, so the estimates are the same in every run). The R tools' rows are read from
``tests/data/reference/``: their wall times were measured in R 4.2.2 on a 2-core machine of the same kind,
and cover the fitting call. BGLR BRR's h2 (mean, sd, bulk ESS) is computed from BGLR's own draw files there
(the first 400 of the 2400 saved draws are burn-in), as BGLR's CSV gives it for RKHS only.

ESS/s is the bulk ESS of h2 over the wall seconds of the row; MCSE(h2) = sd / sqrt(ESS), the Monte Carlo
standard error of the posterior mean. ``--markdown PATH`` also writes the tables as Markdown (for
``docs/comparison.md``); it refuses to replace an existing file unless ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from _common import import_time, print_machine  # benchmarks/ is on sys.path when a script runs

import bayesblup as bb

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "reference"
TRAIT = "y1"
BURN_IN_LINES = 400  # BGLR's draw files: every 5th iteration from iteration 1; 2000 burn-in iterations


@dataclass(frozen=True)
class Row:
    tool: str
    method: str
    h2: float
    h2_sd: float  # NaN for point estimates
    sigma2_g: float  # sigma2_g, or m sigma2_b for the marker models
    sigma2_e: float
    ess_h2: float  # bulk ESS of h2; NaN where unknown or not a sampler
    wall_s: float
    phases: dict = field(default_factory=dict, compare=False)  # bayesblup only: seconds per phase
    runs_s: tuple[float, ...] = ()

    @property
    def ess_per_s(self) -> float:
        return self.ess_h2 / self.wall_s

    @property
    def mcse(self) -> float:
        return self.h2_sd / np.sqrt(self.ess_h2)


# --- header -------------------------------------------------------------------------------------------------------
def header_lines(args) -> list[str]:
    import arviz
    import pymc
    import pytensor
    import scipy

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_machine()
    return [
        *buffer.getvalue().splitlines(),
        f"python    {platform.python_version()}, bayesblup {bb.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, pandas {pd.__version__}, pymc {pymc.__version__}, "
        f"pytensor {pytensor.__version__}, arviz {arviz.__version__}",
        f"bayesblup PyMC NUTS, {args.chains} chains x {args.draws} draws (+ {args.tune} tuning), seed {args.seed}; "
        f"median of {args.repeats} run{'s' if args.repeats > 1 else ''} per row, end to end from load_wheat()",
        "R tools   R 4.2.2 on a 2-core machine of the same kind (tests/data/reference/README.md); "
        "times of the fitting call",
    ]


# --- bayesblup, timed ---------------------------------------------------------------------------------------------
def load() -> tuple[bb.Genotypes, pd.Series, dict]:
    t0 = time.perf_counter()
    wheat = bb.datasets.load_wheat()
    geno, _ = bb.quality_control(wheat.genotypes)  # wheat: every marker polymorphic, nothing dropped
    return geno, wheat.phenotypes[TRAIT], {"load+QC": time.perf_counter() - t0}


def fit_phases(fit) -> dict:
    t = fit.timings
    eigen = t.get("eigendecomposition_s", 0.0)  # happens inside the build: counted once, here
    phases = {"eigen": eigen, "build": t.get("build_s", 0.0) - eigen}
    if "draws_s" in t:
        phases |= {"compile+init": t["sampling_s"] - t["draws_s"], "draws": t["draws_s"]}
    else:
        phases |= {"optimise": t["sampling_s"]}
    return phases | {"genetic values": t.get("genetic_values_s", 0.0)}


def run_model(args, model: str, method: str) -> tuple[dict, dict]:
    """G-BLUP on G = WW'/m or M-BLUP on W (standardized), BGLR's priors, from the files in."""
    geno, y, phases = load()
    t0 = time.perf_counter()
    if model == "gblup":
        kernel, Model, genetic = bb.genomic_relationship(geno, scaling="standardized"), bb.GBLUP, "sigma2_g"
    else:
        kernel, Model, genetic = bb.genotype_matrix(geno, scaling="standardized"), bb.MBLUP, "sigma2_g_equiv"
    phases["G or W"] = time.perf_counter() - t0
    fit = Model(y, kernel, prior="bglr").fit(
        method=method, chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed
    )
    return estimates(fit, genetic), phases | fit_phases(fit)


def run_reml(args) -> tuple[dict, dict]:
    geno, y, phases = load()
    t0 = time.perf_counter()
    G = bb.genomic_relationship(geno, scaling="standardized")
    phases["G or W"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    est = bb.reml(y, G)
    phases["REML"] = time.perf_counter() - t0
    nan = float("nan")
    return {"h2": est.h2, "h2_sd": nan, "sigma2_g": est.sigma2_g, "sigma2_e": est.sigma2_e, "ess_h2": nan}, phases


def estimates(fit, genetic: str) -> dict:
    table = fit.summary()
    h2 = table.loc["h2"]
    point = fit.method == "map"
    nan = float("nan")
    return {
        "h2": float(h2["mean"]),
        "h2_sd": nan if point else float(h2["sd"]),
        "sigma2_g": float(table.loc[genetic, "mean"]),
        "sigma2_e": float(table.loc["sigma2_e", "mean"]),
        "ess_h2": nan if point else float(h2["ess_bulk"]),
    }


def timed(tool: str, method: str, run, repeats: int) -> Row:
    """Run ``run()`` ``repeats`` times; the row of the run with the median wall time (the lower middle one)."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        values, phases = run()
        runs.append((time.perf_counter() - t0, values, phases))
    wall, values, phases = sorted(runs, key=lambda r: r[0])[(len(runs) - 1) // 2]
    times = tuple(r[0] for r in runs)
    print(f"  done {tool} {method}: {', '.join(f'{t:.2f}' for t in times)} s", file=sys.stderr, flush=True)
    return Row(tool, method, wall_s=wall, phases=phases, runs_s=times, **values)


def bayesblup_rows(args) -> list[Row]:
    nuts = f"{args.chains} x {args.draws}"
    return [
        timed("bayesblup", f"G-BLUP NUTS {nuts}", lambda: run_model(args, "gblup", "nuts"), args.repeats),
        timed("bayesblup", f"M-BLUP NUTS {nuts}", lambda: run_model(args, "mblup", "nuts"), args.repeats),
        timed("bayesblup", "G-BLUP MAP", lambda: run_model(args, "gblup", "map"), args.repeats),
        timed("bayesblup", "REML (bb.reml)", lambda: run_reml(args), args.repeats),
    ]


# --- the R tools, read back ---------------------------------------------------------------------------------------
def _params(path: Path, value: str = "mean") -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(path).set_index("param")
    return frame, frame[value]


def bglr_draws_h2(model: str, variance: str, factor: float) -> tuple[float, float, float]:
    """h2 mean, sd and bulk ESS from BGLR's draw files (burn-in dropped), NaN if the files are absent."""
    import arviz as az

    files = [REFERENCE / f"bglr_wheat_{model}_{name}.dat" for name in (variance, "varE")]
    if not all(f.exists() for f in files):
        return (float("nan"),) * 3
    genetic, residual = (np.loadtxt(f)[BURN_IN_LINES:] for f in files)
    h2 = factor * genetic / (factor * genetic + residual)
    return float(h2.mean()), float(h2.std(ddof=1)), float(az.ess(h2[None, :], method="bulk"))


def reference_rows() -> list[Row]:
    rows = []
    frame, mean = _params(REFERENCE / "bglr_wheat_RKHS.csv")
    rows.append(
        Row(
            "BGLR", "RKHS (K = G), Gibbs 12000 it., 2000 kept",
            mean["h2"], frame.loc["h2", "sd"], mean["varU"], mean["varE"], frame.loc["h2", "ess"],
            frame["elapsed_s"].iloc[0],
        )
    )  # fmt: skip
    frame, mean = _params(REFERENCE / "bglr_wheat_BRR.csv")
    h2, sd, ess = bglr_draws_h2("BRR", "ETA_1_varB", float(frame["m"].iloc[0]))
    rows.append(
        Row(
            "BGLR", "BRR (X = W), Gibbs 12000 it., 2000 kept",
            h2, sd, mean["m_varB"], mean["varE"], ess, frame["elapsed_s"].iloc[0],
        )
    )  # fmt: skip
    frame, _ = _params(REFERENCE / "rrblup_wheat.csv", "value")
    for method, genetic in (("rrBLUP_K=G", "Vu(sg2)"), ("rrBLUP_Z=W", "m*Vu")):
        part = frame[frame["method"] == method]
        v = part["value"]
        rows.append(
            Row(
                "rrBLUP", f"REML mixed.solve({method.split('_')[1].replace('=', ' = ')})",
                v["h2"], float("nan"), v[genetic], v["Ve"], float("nan"), part["elapsed_s"].iloc[0],
            )
        )  # fmt: skip
    frame, mean = _params(REFERENCE / "brms_wheat.csv")
    rows.append(
        Row(
            "brms", "NUTS (Stan) 4 x 1000, G + 1e-6 I, default priors",
            mean["h2"], frame.loc["h2", "sd"], mean["sg2"], mean["se2"], frame.loc["h2", "ess_bulk"],
            frame["total_s"].iloc[0],
        )
    )  # fmt: skip
    return rows


# --- output -------------------------------------------------------------------------------------------------------
COLUMNS = ("tool", "method", "h2 mean", "h2 sd", "MCSE(h2)", "sigma2_g or m sigma2_b", "sigma2_e", "ESS(h2)",
           "wall s", "ESS/s")  # fmt: skip
PHASES = ("load+QC", "G or W", "eigen", "build", "compile+init", "draws", "optimise", "REML", "genetic values")


def _fmt(x: float, spec: str) -> str:
    return "-" if x is None or not np.isfinite(x) else format(x, spec)


def cells(row: Row) -> list[str]:
    return [
        row.tool, row.method, _fmt(row.h2, ".3f"), _fmt(row.h2_sd, ".3f"), _fmt(row.mcse, ".4f"),
        _fmt(row.sigma2_g, ".3f"), _fmt(row.sigma2_e, ".3f"), _fmt(row.ess_h2, ".0f"),
        _fmt(row.wall_s, ".2f" if row.wall_s < 100 else ".1f"), _fmt(row.ess_per_s, ".1f"),
    ]  # fmt: skip


def phase_cells(row: Row) -> list[str]:
    return [row.method, *(_fmt(row.phases.get(p, float("nan")), ".2f") for p in PHASES), f"{row.wall_s:.2f}"]


PHASE_COLUMNS = ("bayesblup", *(f"{p} s" for p in PHASES), "total s")


def text_table(columns, body: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]

    def fmt(r: list[str]) -> str:  # the first two columns left-aligned, numbers right-aligned
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([fmt(columns), fmt(["-" * w for w in widths]), *(fmt(r) for r in body)])


def markdown_table(columns, body: list[list[str]], left: int = 2) -> str:
    align = ["---" if i < left else "---:" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(align) + " |"]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in body)])


def notes(import_s: float, repeats: int) -> list[str]:
    return [
        f"python -c 'import bayesblup, pymc': {import_s:.2f} s (median of {repeats}), not in the bayesblup rows.",
        "bayesblup rows: end to end in one process, from load_wheat() (the shipped CSVs) to genetic values.",
        "MCSE(h2) = sd / sqrt(ESS): the Monte Carlo standard error of the posterior mean of h2.",
        "Phases: eigen = the eigendecomposition of G (M-BLUP: of WW'), build = the pm.Model without it, compile+init = "
        "pm.sample outside the draw loop (PyTensor compilation, NUTS initialisation), draws = PyMC's sampling_time.",
        "brms: wall s = compile + sampling (4 chains); BGLR BRR's h2 from its draw files (2000 after burn-in).",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=4, help="NUTS chains (default %(default)s)")
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain (default %(default)s)")
    parser.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="sampler seed (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the median is reported (default 3)")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write the tables as Markdown to PATH")
    parser.add_argument("--force", action="store_true", help="let --markdown replace an existing file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.markdown is not None and args.markdown.exists() and not args.force:
        parser.error(f"{args.markdown} exists; pass --force to replace it")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    header = header_lines(args)  # imports pymc and friends: kept out of the timed rows
    logging.getLogger("pymc").setLevel(logging.WARNING)  # no per-fit progress lines
    warnings.simplefilter("ignore", bb.RankDeficiencyWarning)  # standardized G has rank n - 1, by construction
    rows = bayesblup_rows(args) + reference_rows()
    import_s = import_time(args.repeats)
    ours = [r for r in rows if r.tool == "bayesblup"]

    print("\n".join(header))
    print()
    print(text_table(COLUMNS, [cells(r) for r in rows]))
    print()
    print(text_table(PHASE_COLUMNS, [phase_cells(r) for r in ours]))
    print()
    print("\n".join(notes(import_s, args.repeats)))

    if args.markdown is not None:
        text = "\n".join(
            [
                "```text",
                *header,
                "```",
                "",
                markdown_table(COLUMNS, [cells(r) for r in rows]),
                "",
                markdown_table(PHASE_COLUMNS, [phase_cells(r) for r in ours], left=1),
                "",
                *(f"- {line}" for line in notes(import_s, args.repeats)),
                "",
            ]
        )
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        with open(args.markdown, "w" if args.force else "x") as f:
            f.write(text)
        print(f"\nwrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
