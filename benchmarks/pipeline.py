"""One table: end to end from a PLINK file to summary.json, phase by phase, against the BLAS floor.

For each size ``n x m`` (default ``1800x10000,5000x50000``):

1. simulate unrelated individuals in Hardy-Weinberg equilibrium (seeded) and a trait with h2 = 0.5
   (two traits: the second is for the warm fit), and write them as a PLINK set and a CSV (not timed);
2. run a worker process per repeat (``--repeats``, default 3; the row shows the run whose in-process
   total is the median). The worker times ``import bayesblup``, then runs exactly what ``bayesblup
   fit --genotypes X.bed --phenotypes Y.csv --model gblup --prior bglr`` runs (``run_fit`` and
   ``save``): read, QC, G, eigendecomposition, build, compile (PyTensor compilation and NUTS
   initialisation: ``sampling_s`` less PyMC's ``sampling_time``), sampling (PyMC's ``sampling_time``,
   the draw loop), latent recovery (genetic values from ``g | y, theta``, every draw), writing.
   Then, in the same process, the **floor**: a bare BLAS ``W @ W.T`` on the dense float64 W of the
   same calls plus ``numpy.linalg.eigh`` of the result. ``ratio`` = in-process total / floor;
3. in the same worker, a **warm** fit of the second trait with the same model structure: it reuses
   the compiled model (``bayesblup.inference.compiled``), so its compile column is what is left;
4. M-BLUP on the same data in its own worker (cold, as G-BLUP's first fit), and its total against
   G-BLUP's.

Peak memory is the worker's maximum resident set size (``getrusage``) measured after the fit and
before the floor allocates its own W. ESS/s is the bulk ESS of h2 over PyMC's ``sampling_time``.
``e2e`` is a worker's wall time from launch to the end of its first (cold) fit with its outputs
written: Python start-up and imports included, the warm fit and the floor not.

Targets (issue 7, 2 cores, 4 chains x 1000 draws + 1000 tuning): n = 1800, m = 10,000 end to end
<= 10 s; n = 5000, m = 50,000 <= 60 s; total <= 2 x floor at every size; ESS(h2) >= 1000; M-BLUP
<= 1.3 x G-BLUP. They are reported, not asserted.

    .venv/bin/python benchmarks/pipeline.py                       # both sizes, 3 repeats (~10 min)
    .venv/bin/python benchmarks/pipeline.py --sizes 600x2000 --repeats 1   # a smoke run

``benchmarks/run_all.py`` runs this table and every other one.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_machine, verdict

TRAITS = ("y", "y_warm")
TARGET_E2E = {(1800, 10_000): 10.0, (5000, 50_000): 60.0}


# --- inputs (not timed) ------------------------------------------------------------------------
def write_inputs(n: int, m: int, folder: Path, seed: int) -> tuple[Path, Path]:
    """A PLINK set and a CSV with two traits of h2 = 0.5."""
    import pandas as pd
    from bed_reader import to_bed

    from bayesblup.testing import simulate_genotypes

    geno, _ = simulate_genotypes(n, m, seed=seed)
    rng = np.random.default_rng(seed + 1)
    g = np.zeros((n, len(TRAITS)))
    effects = rng.normal(0.0, np.sqrt(1.0 / m), size=(m, len(TRAITS)))
    for j0 in range(0, m, 4096):  # standardized calls a block at a time
        x = geno.calls[:, j0 : j0 + 4096].astype(np.float64)
        sd = x.std(axis=0, ddof=1)
        sd[sd == 0] = np.inf
        g += ((x - x.mean(axis=0)) / sd) @ effects[j0 : j0 + 4096]
    y = g + rng.normal(0.0, np.sqrt(g.var(axis=0, ddof=1)), size=g.shape)  # h2 = 0.5
    bed = folder / f"geno_{n}x{m}.bed"
    to_bed(bed, geno.calls, properties={"iid": geno.ids, "sid": geno.markers})
    pheno = folder / f"pheno_{n}x{m}.csv"
    pd.DataFrame(y, index=pd.Index(geno.ids, name="id"), columns=list(TRAITS)).to_csv(pheno)
    return bed, pheno


# --- the worker: one process, one model --------------------------------------------------------
def worker(spec: dict) -> dict:
    t0 = time.perf_counter()
    import logging
    import warnings

    import bayesblup as bb
    from bayesblup.cli.workflow import FitJob, run_fit

    import_s = time.perf_counter() - t0
    warnings.simplefilter("ignore")
    for name in ("pymc", "pymc.sampling.mcmc", "pymc.stats.convergence"):
        logging.getLogger(name).setLevel(logging.ERROR)

    def fit(trait: str, out: Path) -> dict:
        t = time.perf_counter()
        job = FitJob(
            genotypes=spec["bed"], phenotypes=spec["pheno"], trait=trait, model=spec["model"], prior="bglr",
            chains=spec["chains"], draws=spec["draws"], tune=spec["tune"], seed=spec["seed"],
        )  # fmt: skip
        outcome = run_fit(job, say=lambda line: None)
        outcome.fit.timings = outcome.timings | {"total_s": time.perf_counter() - t}
        outcome.fit.save(out)
        summary = json.loads((out / "summary.json").read_text())
        timings = summary["timings"]
        timings["compile_s"] = timings["sampling_s"] - timings["draws_s"]
        return {
            "timings": timings,
            "ess_h2": summary["parameters"]["h2"]["ess_bulk"],
            "h2": summary["parameters"]["h2"]["mean"],
            "divergences": summary["diagnostics"]["divergences"],
            "max_r_hat": summary["diagnostics"]["max_r_hat"],
            "compiled": summary["settings"].get("compiled"),
        }

    out = Path(spec["out"])
    result = {"import_s": import_s, "cold": fit(TRAITS[0], out / "cold")}
    result["cold_done"] = time.time()  # the parent's launch time to here: end to end of the first fit
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if spec["warm"]:
        result["warm"] = fit(TRAITS[1], out / "warm")
    if spec["floor"]:
        geno, _ = bb.quality_control(bb.read_genotypes(spec["bed"]))
        W = bb.genotype_matrix(geno, scaling="standardized").values  # dense float64, not timed
        t = time.perf_counter()
        G = W @ W.T
        result["floor_gemm_s"] = time.perf_counter() - t
        t = time.perf_counter()
        np.linalg.eigh(G)
        result["floor_eigh_s"] = time.perf_counter() - t
    return result


def run_worker(spec: dict) -> tuple[dict, float]:
    """The worker's result and its end to end time: launch to the end of its first fit (outputs written)."""
    launched = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"worker failed on {spec['model']} {spec['bed']} (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result, result["cold_done"] - launched


# --- the table -----------------------------------------------------------------------------------
PHASES = [
    ("read", "read_s"), ("QC", "qc_s"), ("G", "relationship_s"), ("eigen", "eigendecomposition_s"),
    ("build", "build_s"), ("compile", "compile_s"), ("sample", "draws_s"), ("latent", "genetic_values_s"),
    ("write", "write_s"),
]  # fmt: skip


def measure_size(n: int, m: int, folder: Path, args) -> dict:
    bed, pheno = write_inputs(n, m, folder, args.seed)
    base = {"bed": str(bed), "pheno": str(pheno), "chains": args.chains, "draws": args.draws, "tune": args.tune}
    base["seed"] = args.seed
    runs = []
    for i in range(args.repeats):
        spec = base | {"model": "gblup", "out": str(folder / f"g{n}_{i}"), "warm": True, "floor": True}
        runs.append(run_worker(spec))
    runs.sort(key=lambda r: r[0]["cold"]["timings"]["total_s"])
    gblup, e2e = runs[(len(runs) - 1) // 2]
    mblup_runs = []
    for i in range(args.repeats if args.mblup else 0):
        spec = base | {"model": "mblup", "out": str(folder / f"m{n}_{i}"), "warm": False, "floor": False}
        mblup_runs.append(run_worker(spec))
    mblup_runs.sort(key=lambda r: r[0]["cold"]["timings"]["total_s"])
    mblup = mblup_runs[(len(mblup_runs) - 1) // 2] if mblup_runs else None
    return {
        "n": n, "m": m, "gblup": gblup, "e2e": e2e, "e2e_all": [r[1] for r in runs],
        "totals": [r[0]["cold"]["timings"]["total_s"] for r in runs], "mblup": mblup,
    }  # fmt: skip


def print_tables(rows: list[dict]) -> None:
    head = f"{'n':>5} {'m':>6} {'fit':>5}" + "".join(f"{p:>8}" for p, _ in PHASES)
    head += f"{'total':>8}{'e2e':>7}{'floor':>7}{'ratio':>7}{'ESS':>6}{'ESS/s':>7}{'peakMB':>7}"
    print(head)
    for r in rows:
        g = r["gblup"]
        floor = g["floor_gemm_s"] + g["floor_eigh_s"]
        for label in ("cold", "warm"):
            f = g[label]
            t = f["timings"]
            line = f"{r['n']:>5} {r['m']:>6} {label:>5}" + "".join(f"{t.get(k, 0.0):>8.2f}" for _, k in PHASES)
            total = t["total_s"]
            e2e = f"{r['e2e']:>7.1f}" if label == "cold" else f"{'':>7}"
            line += f"{total:>8.2f}{e2e}{floor:>7.2f}{total / floor:>7.2f}{f['ess_h2']:>6.0f}"
            line += f"{f['ess_h2'] / t['draws_s']:>7.0f}{g['peak_mb'] if label == 'cold' else 0:>7.0f}"
            print(line)
        if r["mblup"] is not None:
            mb, mb_e2e = r["mblup"]
            t = mb["cold"]["timings"]
            line = f"{r['n']:>5} {r['m']:>6} {'mblup':>5}" + "".join(
                f"{t.get('genotype_matrix_s' if k == 'relationship_s' else k, 0.0):>8.2f}" for _, k in PHASES
            )
            line += f"{t['total_s']:>8.2f}{mb_e2e:>7.1f}{floor:>7.2f}{t['total_s'] / floor:>7.2f}"
            line += f"{mb['cold']['ess_h2']:>6.0f}{mb['cold']['ess_h2'] / t['draws_s']:>7.0f}{mb['peak_mb']:>7.0f}"
            print(line)
    print()
    for r in rows:
        g = r["gblup"]
        floor = g["floor_gemm_s"] + g["floor_eigh_s"]
        total = g["cold"]["timings"]["total_s"]
        print(
            f"n = {r['n']}, m = {r['m']}: import {g['import_s']:.2f} s; floor = W@W.T {g['floor_gemm_s']:.2f} s "
            f"+ eigh {g['floor_eigh_s']:.2f} s; totals of the runs {', '.join(f'{x:.2f}' for x in r['totals'])} s; "
            f"e2e {', '.join(f'{x:.1f}' for x in r['e2e_all'])} s; compiled: cold {g['cold']['compiled']}, "
            f"warm {g['warm']['compiled']}"
        )
        target = TARGET_E2E.get((r["n"], r["m"]))
        if target is not None:
            print(f"  end to end {r['e2e']:.1f} s <= {target:.0f} s: {verdict(r['e2e'] <= target)}")
        print(f"  total / floor {total / floor:.2f} <= 2: {verdict(total / floor <= 2)}")
        print(f"  ESS(h2) {g['cold']['ess_h2']:.0f} >= 1000: {verdict(g['cold']['ess_h2'] >= 1000)}")
        if r["mblup"] is not None:
            ratio = r["mblup"][0]["cold"]["timings"]["total_s"] / total
            print(f"  M-BLUP / G-BLUP total {ratio:.2f} <= 1.3: {verdict(ratio <= 1.3)}")
        print(
            f"  diagnostics: {g['cold']['divergences']} divergences, max R-hat {g['cold']['max_r_hat']:.3f}, "
            f"h2 {g['cold']['h2']:.3f} (truth 0.5)"
        )


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1800x10000,5000x50000", help="comma-separated n x m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-mblup", dest="mblup", action="store_false", help="skip the M-BLUP rows")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    import pymc

    import bayesblup

    print_machine()
    print(f"versions  bayesblup {bayesblup.__version__}, pymc {pymc.__version__}, numpy {np.__version__}")
    print(f"fits      4 chains x {args.draws} draws + {args.tune} tuning, prior bglr, repeats {args.repeats} (median)")
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bayesblup-bench-") as tmp:
        for n, m in sizes:
            rows.append(measure_size(n, m, Path(tmp), args))
            print(f"(measured n = {n}, m = {m}; median of {statistics.median(rows[-1]['totals']):.2f} s)", flush=True)
    print()
    print_tables(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
