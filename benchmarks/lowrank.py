"""The low-rank path end to end: G-BLUP from a PLINK set with fewer markers than individuals, against its floor.

For one size ``n x m`` (default ``20000x8000``, issue 18's target 4):

1. simulate the genotypes and a trait of h2 = 0.5 and write them as a PLINK set and a CSV (``pipeline``'s
   ``write_inputs``; not timed);
2. in a worker process, run ``bayesblup fit --genotypes X.bed --phenotypes Y.csv --model gblup --prior bglr`` as
   its own process and time it from launch to exit (``e2e``); its peak memory is that process's maximum resident
   set size (``getrusage(RUSAGE_CHILDREN)`` in the worker, which waits for nothing else), and its phases come
   from its summary.json. With m < n the command takes the low-rank path (no n x n G);
3. then, in the same worker, the **floor**: a bare bed read (``bed_reader``, int8) and its standardisation to a
   float64 W, ``W'W`` (BLAS) and ``numpy.linalg.eigh`` of that m x m matrix. ``ratio`` = e2e / floor.

Targets (issue 18, 2 cores, 4 chains x 1000 draws + 1000 tuning): e2e <= 2 x floor, and peak memory below one
n x n float64 matrix (3.2 GB at n = 20,000). They are reported, not asserted.

    .venv/bin/python benchmarks/lowrank.py                                   # n = 20,000, m = 8000
    .venv/bin/python benchmarks/lowrank.py --size 4000x1000 --draws 200 --tune 200   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_machine, verdict
from pipeline import write_inputs

PHASES = [
    ("read", "read_s"), ("QC", "qc_s"), ("W", "genotype_matrix_s"), ("eigen", "eigendecomposition_s"),
    ("build", "build_s"), ("compile", "compile_s"), ("sample", "draws_s"), ("latent", "genetic_values_s"),
    ("write", "write_s"),
]  # fmt: skip


def worker(spec: dict) -> dict:
    """The command as its own process (timed launch to exit, its peak RSS), then the floor in this process."""
    out = Path(spec["out"])
    command = [
        sys.executable, "-m", "bayesblup", "fit", "--genotypes", spec["bed"], "--phenotypes", spec["pheno"],
        "--trait", "y", "--model", "gblup", "--prior", "bglr", "--chains", str(spec["chains"]),
        "--draws", str(spec["draws"]), "--tune", str(spec["tune"]), "--seed", str(spec["seed"]), "--out", str(out),
    ]  # fmt: skip
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    e2e = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"bayesblup fit failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    summary = json.loads((out / "summary.json").read_text())
    timings = summary["timings"]
    if "draws_s" in timings:
        timings["compile_s"] = timings["sampling_s"] - timings["draws_s"]
    result = {
        "e2e": e2e, "peak_mb": peak_mb, "timings": timings, "path": summary["specification"]["path"],
        "rank": summary["kernel"]["rank"], "h2": summary["parameters"]["h2"]["mean"],
        "ess_h2": summary["parameters"]["h2"]["ess_bulk"], "divergences": summary["diagnostics"]["divergences"],
        "lines": [line for line in done.stdout.splitlines() if "path" in line or line.startswith("W (")],
    }  # fmt: skip
    # The floor: what any low-rank G-BLUP must do (read the calls, W'W, its m x m eigendecomposition)
    from bed_reader import open_bed

    t = time.perf_counter()
    with open_bed(spec["bed"]) as bed:
        calls = bed.read(dtype="int8")
    W = calls.astype(np.float64)
    del calls
    W -= W.mean(axis=0)
    W /= W.std(axis=0, ddof=1)
    result["floor_read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    A = W.T @ W
    result["floor_gram_s"] = time.perf_counter() - t
    t = time.perf_counter()
    np.linalg.eigh(A)
    result["floor_eigh_s"] = time.perf_counter() - t
    return result


def run_worker(spec: dict) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"worker failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(n: int, m: int, r: dict) -> None:
    floor = r["floor_read_s"] + r["floor_gram_s"] + r["floor_eigh_s"]
    t = r["timings"]
    head = f"{'n':>6} {'m':>6} {'path':>9}" + "".join(f"{p:>8}" for p, _ in PHASES)
    print(head + f"{'total':>8}{'e2e':>8}{'floor':>8}{'ratio':>7}{'peakMB':>8}{'nxnMB':>8}")
    line = f"{n:>6} {m:>6} {r['path']:>9}" + "".join(f"{t.get(k, 0.0):>8.2f}" for _, k in PHASES)
    nxn_mb = n * n * 8 / 2**20
    line += f"{t['total_s']:>8.2f}{r['e2e']:>8.2f}{floor:>8.2f}{r['e2e'] / floor:>7.2f}{r['peak_mb']:>8.0f}"
    print(line + f"{nxn_mb:>8.0f}")
    print()
    print(
        f"floor = bed read + standardise {r['floor_read_s']:.2f} s + W'W {r['floor_gram_s']:.2f} s + eigh (m x m) "
        f"{r['floor_eigh_s']:.2f} s; rank {r['rank']}; h2 {r['h2']:.3f} (truth 0.5), ESS(h2) {r['ess_h2']:.0f}, "
        f"{r['divergences']} divergences"
    )
    for text in r["lines"]:
        print(f"  bayesblup: {text}")
    print(f"  end to end / floor {r['e2e'] / floor:.2f} <= 2: {verdict(r['e2e'] / floor <= 2)}")
    print(f"  peak {r['peak_mb']:.0f} MB < one n x n float64 matrix {nxn_mb:.0f} MB: {verdict(r['peak_mb'] < nxn_mb)}")
    print(f"  path low-rank: {verdict(r['path'] == 'low-rank')}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="20000x8000", help="n x m")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    n, m = (int(v) for v in args.size.lower().split("x"))
    print_machine()
    print(f"low-rank  G-BLUP from PLINK, n = {n}, m = {m}, {args.chains} chains x {args.draws} draws + {args.tune}")
    with tempfile.TemporaryDirectory(prefix="bayesblup-lowrank-") as tmp:
        bed, pheno = write_inputs(n, m, Path(tmp), args.seed)
        spec = {"bed": str(bed), "pheno": str(pheno), "out": str(Path(tmp) / "fit"), "seed": args.seed}
        spec |= {"chains": args.chains, "draws": args.draws, "tune": args.tune}
        result = run_worker(spec)
    print()
    print_table(n, m, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
