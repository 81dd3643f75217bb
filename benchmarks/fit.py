"""End-to-end time and sampling efficiency of ``bayesblup fit`` (G-BLUP, marginal form).

For each case (the built-in wheat data, and simulated n x m genotypes):

1. write the inputs to a temporary folder (not timed): genotypes as CSV.gz, phenotypes as CSV.
   Simulated genotypes are unrelated individuals in Hardy-Weinberg equilibrium (seeded); the trait
   has h2 = 0.5: g = W b with W the standardized calls and b ~ N(0, 1/m), e ~ N(0, var(g));
2. run ``python -m bayesblup fit --model gblup --prior bglr --seed 1 --out DIR`` as a subprocess,
   ``--repeats`` times, and time each run from launch to exit: what a user waits for, Python
   start-up, imports and writing the outputs included. The row shows the run whose end-to-end
   time is the median;
3. read that run's phase timings from ``DIR/summary.json`` and PyMC's ``sampling_time`` (the
   draw loop alone, tuning included) from ``DIR/posterior.nc``. The package's ``sampling_s`` spans
   all of ``pm.sample``, so ``compile = sampling_s - sampling_time`` is PyTensor's compilation of
   the log density and its gradient, NUTS initialisation and packaging the draws;
4. at n <= 1000 (unless ``--no-latent``), fit the latent form (g explicit, non-centred) in this
   process on the same data, draws and seed, as the baseline the marginal form replaces.

ESS/s is the bulk ESS of h2 divided by PyMC's ``sampling_time``.

A second table, "records cases" (``--records-n`` individuals, default 1000, x ``--markers``), times
the general model's features against the plain fit, through the same subprocess runs. One set of
genotypes serves all four cases; the records come from ``bayesblup.testing.simulate_records`` with
the same seed, so the genetic values are the same in every case:

- ``plain``: one record per individual, no extra option (h2 = 0.5): the baseline;
- ``3x records``: exactly 3 records per individual (n_records = 3 n; h2 = 0.4, permanent-environment
  share 0.15), ``--permanent-environment``. Every individual has the same total weight, so the
  model takes its exact "diagonal" path;
- ``20% unphenotyped``: as plain, but the last 20% of the individuals have no row in the phenotype
  file: they are genotyped, so fitted through G and predicted;
- ``1-5 records, weighted`` (informational): 1 to 5 records per individual with weights 1 to 3,
  ``--permanent-environment --weights w``. Unequal total weights: the "augmented" path, which
  samples one residual-excess latent per individual.

Targets (from the project's issue, on 2 cores, 4 chains x 1000 draws + 1000 tuning): wheat end to
end <= 7 s, n = 2000 (m = 10,000) <= 15 s; ESS(h2) >= 1000, R-hat <= 1.01 and no divergences on
wheat; ``3x records`` and ``20% unphenotyped`` end to end <= 1.5 x ``plain`` end to end. The targets
are reported, not asserted: the exit status is 0 unless something raises.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from _common import import_time, print_machine, verdict  # benchmarks/ is on sys.path when a script runs

import bayesblup
from bayesblup.datasets import wheat_path
from bayesblup.testing import simulate_genotypes, simulate_records

TARGET_S = {"wheat": 7.0, "n=2000": 15.0}  # end to end, from the issue
MIN_ESS, MAX_R_HAT = 1000, 1.01
LATENT_MAX_N = 1000
TRAIT = "y"  # the column name of simulated phenotypes
RECORDS_MAX_RATIO = 1.5  # a records case's end to end / the plain fit's, from the issue


@dataclass(frozen=True)
class Case:
    name: str  # "wheat" or "n=2000"
    genotypes: Path
    phenotypes: Path
    trait: str
    data: tuple | None = None  # (Genotypes, pandas.Series) for the in-process latent fit
    options: tuple[str, ...] = ()  # extra ``bayesblup fit`` arguments (the records cases)


@dataclass(frozen=True)
class RecordsSpec:
    """One records case: how its phenotypes are simulated and what the CLI is told about them."""

    name: str
    simulation: dict  # keyword arguments of simulate_records, beside W, ids and seed
    options: tuple[str, ...]  # extra ``bayesblup fit`` arguments
    target: bool  # whether the RECORDS_MAX_RATIO applies


PE = ("--permanent-environment",)  # implies --repeated-records
RECORDS_SPECS = (
    RecordsSpec("plain", {}, (), False),
    RecordsSpec("3x records", {"h2": 0.4, "pe_share": 0.15, "records": 3}, PE, True),
    RecordsSpec("20% unphenotyped", {"unphenotyped": 0.2}, (), True),
    RecordsSpec(
        "1-5 records, weighted",
        {"h2": 0.4, "pe_share": 0.15, "records": (1, 5), "weights": (1, 3)},
        (*PE, "--weights", "w"),
        False,
    ),
)


@dataclass(frozen=True)
class Row:
    case: str
    n: int  # records fitted
    m: int
    n_individuals: int  # with at least one record
    n_unphenotyped: int  # genotyped, no record: predicted
    pe_path: str | None  # the permanent-environment path ("diagonal" or "augmented"), None without one
    e2e_s: float
    runs_s: tuple[float, ...]
    timings: dict
    sampling_time: float  # PyMC's: the draw loop alone
    ess_h2: float
    h2_mean: float
    max_r_hat: float
    divergences: int

    def phase(self, key: str) -> float:
        return float(self.timings.get(key, 0.0))

    @property
    def read_qc_s(self) -> float:
        return self.phase("read_s") + self.phase("qc_s")

    @property
    def compile_s(self) -> float:
        return self.phase("sampling_s") - self.sampling_time

    @property
    def other_s(self) -> float:
        """End to end minus the named phases: start-up, imports, writing the outputs, exit."""
        named = ("read_s", "qc_s", "relationship_s", "eigendecomposition_s", "build_s", "sampling_s")
        return self.e2e_s - sum(self.phase(k) for k in (*named, "genetic_values_s"))

    @property
    def ess_per_s(self) -> float:
        return self.ess_h2 / self.sampling_time

    @property
    def target_s(self) -> float | None:
        return TARGET_S.get(self.case)

    @property
    def quality_ok(self) -> bool:
        return self.ess_h2 >= MIN_ESS and self.max_r_hat <= MAX_R_HAT and self.divergences == 0


@dataclass(frozen=True)
class LatentRow:
    case: str
    n: int
    compile_s: float
    sampling_time: float
    ess_h2: float
    h2_mean: float
    max_r_hat: float
    divergences: int
    marginal: Row

    @property
    def ess_per_s(self) -> float:
        return self.ess_h2 / self.sampling_time

    @property
    def ratio(self) -> float:
        return self.marginal.ess_per_s / self.ess_per_s


# --- header -------------------------------------------------------------------------------------
def pymc_jobs(chains: int) -> str:
    """How many processes PyMC runs the chains in when ``cores`` is not given (as the package calls it)."""
    try:
        from pymc.sampling.parallel import _cpu_count  # what pm.sample(cores=None) uses: min(4, _cpu_count())

        jobs = min(4, _cpu_count(), chains)
    except Exception:  # a private helper: it may move
        return "unknown"
    return f"{chains} chains in {jobs} job{'s' if jobs > 1 else ''}" + (" (sequential)" if jobs == 1 else "")


def print_header(chains: int) -> None:
    import arviz
    import pymc
    import pytensor

    print_machine()
    print(
        f"python    {platform.python_version()}, numpy {np.__version__}, bayesblup {bayesblup.__version__}, "
        f"pymc {pymc.__version__}, pytensor {pytensor.__version__}, arviz {arviz.__version__}"
    )
    cfg = pytensor.config
    print(f"pytensor  mode {cfg.mode}, linker {cfg.linker}, cxx {cfg.cxx or 'none (Python implementations)'}")
    print(f"sampler   PyMC NUTS, {pymc_jobs(chains)}")


# --- inputs -------------------------------------------------------------------------------------
def simulate_trait(geno, *, h2: float = 0.5, seed: int = 1) -> pd.Series:
    """y = g + e with g = W b, W the standardized calls, b ~ N(0, 1/m), e ~ N(0, var(g) (1 - h2) / h2)."""
    rng = np.random.default_rng(seed)
    n, m = geno.calls.shape
    b = rng.normal(0.0, np.sqrt(1.0 / m), size=m)
    g = np.zeros(n)
    for j0 in range(0, m, 2048):  # a block of markers at a time: W is never whole in memory
        x = geno.calls[:, j0 : j0 + 2048].astype(np.float64)
        sd = x.std(axis=0, ddof=1)
        sd[sd == 0] = np.inf  # a monomorphic marker contributes nothing
        g += ((x - x.mean(axis=0)) / sd) @ b[j0 : j0 + 2048]
    e = rng.normal(0.0, np.sqrt(g.var(ddof=1) * (1 - h2) / h2), size=n)
    return pd.Series(g + e, index=pd.Index(geno.ids, name="id"), name=TRAIT)


def wheat_case(latent: bool) -> Case:
    data = None
    if latent:
        wheat = bayesblup.datasets.load_wheat()
        data = (wheat.genotypes, wheat.phenotypes["y1"])
    return Case("wheat", Path(wheat_path("wheat_X.csv.gz")), Path(wheat_path("wheat_Y.csv")), "y1", data)


def write_genotypes(geno, path: Path) -> None:
    frame = pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers)
    frame.to_csv(path, compression={"method": "gzip", "compresslevel": 1})  # fast to write; not timed


def simulated_case(n: int, m: int, folder: Path, *, latent: bool, seed: int) -> Case:
    geno, _ = simulate_genotypes(n, m, seed=seed, order="C")  # C order: rows are written to the CSV
    y = simulate_trait(geno, seed=seed)
    X, Y = folder / f"geno_{n}x{m}.csv.gz", folder / f"pheno_{n}.csv"
    write_genotypes(geno, X)
    y.to_frame().to_csv(Y)
    return Case(f"n={n}", X, Y, TRAIT, (geno, y) if latent else None)


def slug(name: str) -> str:
    """A file-name-safe form of a case name ("3x records" -> "3x_records")."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def records_cases(n: int, m: int, folder: Path, *, seed: int) -> list[Case]:
    """One genotype file and one phenotype file per RECORDS_SPECS entry (columns y, w, sex, age).

    Each simulation uses the same seed on the same W, so every case has the same genetic values.
    Unphenotyped individuals get no row: absent from the phenotype file, they are predicted.
    """
    geno, _ = simulate_genotypes(n, m, seed=seed, order="C")
    X = folder / f"geno_{n}x{m}_records.csv.gz"
    write_genotypes(geno, X)
    geno, _ = bayesblup.quality_control(geno)  # as the CLI does, so that W is the model's
    W = bayesblup.genotype_matrix(geno, scaling="standardized").values  # 8 n m bytes: 80 MB at 1000 x 10,000
    cases = []
    for spec in RECORDS_SPECS:
        Y = folder / f"pheno_{slug(spec.name)}.csv"
        simulate_records(W, geno.ids, seed=seed, **spec.simulation).table.to_csv(Y)
        cases.append(Case(spec.name, X, Y, TRAIT, options=spec.options))
    return cases


# --- measures -----------------------------------------------------------------------------------
def sampling_time_of(posterior_nc: Path) -> float:
    import xarray as xr

    with xr.open_datatree(posterior_nc, engine="h5netcdf") as tree:
        return float(tree["posterior"].attrs["sampling_time"])


def run_cli(case: Case, out: Path, args) -> float:
    """Run ``bayesblup fit`` (plus the case's options) once as a user would; returns the wall time, launch to exit."""
    cmd = [
        sys.executable, "-m", "bayesblup", "fit",
        "--genotypes", str(case.genotypes), "--phenotypes", str(case.phenotypes), "--trait", case.trait,
        "--model", "gblup", "--prior", "bglr", "--seed", str(args.seed),
        "--chains", str(args.chains), "--draws", str(args.draws), "--tune", str(args.tune),
        "--out", str(out), *case.options,
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"bayesblup fit failed on {case.name} (exit {done.returncode})")
    return elapsed


def measure(case: Case, workdir: Path, args) -> Row:
    runs = []
    for i in range(args.repeats):
        out = workdir / f"fit_{slug(case.name)}_{i}"
        runs.append((run_cli(case, out, args), out))
    e2e_s, out = sorted(runs, key=lambda r: r[0])[(len(runs) - 1) // 2]  # the median run (the lower of two)
    summary = json.loads((out / "summary.json").read_text())
    sampling_time = sampling_time_of(out / "posterior.nc")
    for _, folder in runs:
        shutil.rmtree(folder, ignore_errors=True)
    h2 = summary["parameters"]["h2"]
    diag = summary["diagnostics"]
    return Row(
        case=case.name,
        n=int(summary["n_records"]),
        m=int(summary["n_markers"]),
        n_individuals=int(summary["n_individuals"]),
        n_unphenotyped=int(summary["n_unphenotyped"]),
        pe_path=summary["permanent_environment"],
        e2e_s=e2e_s,
        runs_s=tuple(r[0] for r in runs),
        timings=summary["timings"],
        sampling_time=sampling_time,
        ess_h2=float(h2["ess_bulk"]),
        h2_mean=float(h2["mean"]),
        max_r_hat=float(diag["max_r_hat"]) if diag["max_r_hat"] is not None else float("nan"),
        divergences=int(diag["divergences"]),
    )


def measure_latent(case: Case, marginal: Row, args) -> LatentRow:
    """The latent form in this process, same data, prior, scaling, draws and seed as the CLI run."""
    geno, y = case.data
    geno, _ = bayesblup.quality_control(geno)
    G = bayesblup.genomic_relationship(geno, scaling="standardized")
    model = bayesblup.GBLUP(y, G, form="latent", prior="bglr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesblup.RankDeficiencyWarning)
        model.model  # noqa: B018 - build outside the sampling time
        fit = model.fit(chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed)
    sampling_time = float(fit.datatree["posterior"].attrs["sampling_time"])
    h2 = fit.summary().loc["h2"]
    diag = fit.diagnostics()
    return LatentRow(
        case=case.name,
        n=model.n,
        compile_s=fit.timings["sampling_s"] - sampling_time,
        sampling_time=sampling_time,
        ess_h2=float(h2["ess_bulk"]),
        h2_mean=float(h2["mean"]),
        max_r_hat=float(diag["max_r_hat"]) if diag["max_r_hat"] is not None else float("nan"),
        divergences=int(diag["divergences"]),
        marginal=marginal,
    )


# --- output -------------------------------------------------------------------------------------
def print_table(rows: list[Row], args) -> None:
    head = (
        f"{'case':<8} {'n':>5} {'m':>6} {'e2e s':>7} {'read+QC s':>9} {'G s':>6} {'eigen s':>7} {'build s':>7} "
        f"{'compile s':>9} {'sampling s':>10} {'latent rec s':>12} {'other s':>7} {'ESS(h2)':>7} {'ESS/s':>7} "
        f"{'R-hat max':>9} {'div':>4} {'h2':>6} {'target s':>8} {'time':>4} {'quality':>7}"
    )
    print(
        f"\nG-BLUP, marginal form, prior bglr, {args.chains} chains x {args.draws} draws (+{args.tune} tuning), "
        f"seed {args.seed}; e2e is the median of {args.repeats} run(s)"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        target = f"{r.target_s:>8.1f} {verdict(r.e2e_s <= r.target_s):>4}" if r.target_s else f"{'-':>8} {'-':>4}"
        print(
            f"{r.case:<8} {r.n:>5} {r.m:>6} {r.e2e_s:>7.2f} {r.read_qc_s:>9.2f} {r.phase('relationship_s'):>6.2f} "
            f"{r.phase('eigendecomposition_s'):>7.2f} {r.phase('build_s'):>7.2f} {r.compile_s:>9.2f} "
            f"{r.sampling_time:>10.2f} {r.phase('genetic_values_s'):>12.2f} {r.other_s:>7.2f} {r.ess_h2:>7.0f} "
            f"{r.ess_per_s:>7.0f} {r.max_r_hat:>9.4f} {r.divergences:>4} {r.h2_mean:>6.3f} {target} "
            f"{verdict(r.quality_ok):>7}"
        )


def print_latent_table(rows: list[LatentRow]) -> None:
    head = (
        f"{'case':<8} {'n':>5} {'compile s':>9} {'sampling s':>10} {'ESS(h2)':>7} {'ESS/s':>7} {'R-hat max':>9} "
        f"{'div':>4} {'h2':>6} {'marginal ESS/s':>14} {'marginal h2':>11} {'marginal/latent':>15}"
    )
    print("\nlatent-form baseline (in process; same data, prior, draws and seed)")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.case:<8} {r.n:>5} {r.compile_s:>9.2f} {r.sampling_time:>10.2f} {r.ess_h2:>7.0f} {r.ess_per_s:>7.1f} "
            f"{r.max_r_hat:>9.4f} {r.divergences:>4} {r.h2_mean:>6.3f} {r.marginal.ess_per_s:>14.0f} "
            f"{r.marginal.h2_mean:>11.3f} {r.ratio:>15.1f}"
        )


def print_records_table(rows: list[Row], args) -> None:
    """The records cases against the first row, the plain fit; the 1.5x verdict where the issue sets it."""
    targets = {spec.name: spec.target for spec in RECORDS_SPECS}
    plain = rows[0]
    head = (
        f"{'case':<22} {'n_ind':>5} {'n_records':>9} {'unphen':>6} {'e2e s':>7} {'eigen s':>7} {'compile s':>9} "
        f"{'sampling s':>10} {'latent rec s':>12} {'ESS(h2)':>7} {'ESS/s':>7} {'div':>4} {'h2':>6} {'path':>9} "
        f"{'ratio':>6} {f'<= {RECORDS_MAX_RATIO}x':>7}"
    )
    print(
        f"\nrecords cases: G-BLUP, marginal form, prior bglr, {plain.n_individuals + plain.n_unphenotyped} genotyped "
        f"x m = {plain.m}, {args.chains} chains x {args.draws} draws (+{args.tune} tuning), seed {args.seed}; "
        f"e2e is the median of {args.repeats} run(s); ratio = e2e / plain e2e"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r.e2e_s / plain.e2e_s
        ok = verdict(ratio <= RECORDS_MAX_RATIO) if targets.get(r.case) else "-"
        print(
            f"{r.case:<22} {r.n_individuals:>5} {r.n:>9} {r.n_unphenotyped:>6} {r.e2e_s:>7.2f} "
            f"{r.phase('eigendecomposition_s'):>7.2f} {r.compile_s:>9.2f} {r.sampling_time:>10.2f} "
            f"{r.phase('genetic_values_s'):>12.2f} {r.ess_h2:>7.0f} {r.ess_per_s:>7.0f} {r.divergences:>4} "
            f"{r.h2_mean:>6.3f} {r.pe_path or '-':>9} {ratio:>6.2f} {ok:>7}"
        )


def parse_sizes(text: str) -> list[str | int]:
    sizes: list[str | int] = []
    for item in text.split(","):
        item = item.strip().lower()
        sizes.append("wheat" if item == "wheat" else int(item))
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="wheat,1000,2000,5000", help="wheat and/or simulated n, comma-separated; default %(default)s"
    )
    parser.add_argument("--markers", type=int, default=10_000, help="m of the simulated cases (default: %(default)s)")
    parser.add_argument("--chains", type=int, default=4, help="default %(default)s")
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain; default %(default)s")
    parser.add_argument("--tune", type=int, default=1000, help="tuning steps per chain; default %(default)s")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulation and the sampler (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs per case; the median is reported")
    parser.add_argument("--no-latent", action="store_true", help=f"skip the latent baseline (n <= {LATENT_MAX_N})")
    parser.add_argument(
        "--records-n", type=int, default=1000, help="individuals of the records cases (default: %(default)s)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--records-only", action="store_true", help="run the records cases alone (ignores --sizes)")
    which.add_argument("--no-records", action="store_true", help="skip the records cases")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.records_n < 10:
        parser.error("--records-n must be at least 10")
    try:
        args.sizes = [] if args.records_only else parse_sizes(args.sizes)
    except ValueError:
        parser.error(f"--sizes takes 'wheat' and integers n, comma-separated; got {args.sizes!r}")
    return args


def run_sizes(workdir: Path, args) -> tuple[list[Row], list[LatentRow]]:
    """The first table (and the latent baseline): one case per ``--sizes`` entry."""
    rows, latent_rows = [], []
    for size in args.sizes:
        latent = not args.no_latent and (size == "wheat" or size <= LATENT_MAX_N)
        if size == "wheat":
            case = wheat_case(latent)
        else:
            t0 = time.perf_counter()
            case = simulated_case(size, args.markers, workdir, latent=latent, seed=args.seed)
            print(f"  wrote inputs n = {size}, m = {args.markers} ({time.perf_counter() - t0:.1f} s)", flush=True)
        row = measure(case, workdir, args)
        rows.append(row)
        runs = ", ".join(f"{t:.2f}" for t in row.runs_s)
        print(f"  done {case.name}: end to end {runs} s", flush=True)
        if latent:
            latent_rows.append(measure_latent(case, row, args))
            print(f"  done {case.name}: latent form ({latent_rows[-1].sampling_time:.1f} s sampling)", flush=True)
        if case.genotypes.parent == workdir:
            case.genotypes.unlink()
    return rows, latent_rows


def run_records(workdir: Path, args) -> list[Row]:
    """The records table, plain fit first: each case is timed against it."""
    n, m = args.records_n, args.markers
    t0 = time.perf_counter()
    cases = records_cases(n, m, workdir, seed=args.seed)
    print(f"  wrote records inputs n = {n}, m = {m} ({time.perf_counter() - t0:.1f} s)", flush=True)
    rows = []
    for case in cases:
        rows.append(measure(case, workdir, args))
        runs = ", ".join(f"{t:.2f}" for t in rows[-1].runs_s)
        print(f"  done {case.name}: end to end {runs} s", flush=True)
    cases[0].genotypes.unlink()  # shared by all the cases
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_header(args.chains)  # imports pymc, which sets its logger's level: quieten it after
    logging.getLogger("pymc").setLevel(logging.WARNING)  # the latent fit's progress lines
    with tempfile.TemporaryDirectory(prefix="bayesblup-bench-fit-") as tmp:
        rows, latent_rows = run_sizes(Path(tmp), args)
        records_rows = [] if args.no_records else run_records(Path(tmp), args)
    if rows:
        print_table(rows, args)
    if latent_rows:
        print_latent_table(latent_rows)
    if records_rows:
        print_records_table(records_rows, args)
    print(f"\npython -c 'import bayesblup, pymc': {import_time(3):.2f} s (median of 3; part of every e2e and 'other')")
    if (args.chains, args.draws, args.tune) != (4, 1000, 1000):
        print("note: the targets are defined for 4 chains x 1000 draws (+1000 tuning); these verdicts are indicative.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
