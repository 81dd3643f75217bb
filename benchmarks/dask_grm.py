"""G from a PLINK .bed larger than the memory its Dask workers may use, against the in-memory path.

For each size n x m:

1. simulate calls in Hardy-Weinberg equilibrium (seeded, 0.5% missing) and write them to a .bed a
   block of markers at a time (bed-reader's ``create_bed``), so that this process never holds them
   all either; 0.25 n m bytes on disk;
2. in a child process, time the in-memory path, ``genomic_relationship(quality_control(read_plink(bed))[0])``,
   and save its G to .npy; the child reports its peak resident memory (``ru_maxrss``);
3. in another child, the same for ``genomic_relationship_bed(bed)`` with no client and no cluster
   (the tasks one after another in that process, BLAS on every core);
4. start a ``LocalCluster`` of ``--workers`` single-threaded worker processes, each with
   ``memory_limit=--memory-limit`` (the nanny spills stored results to disk from 60% of it, pauses
   the worker at 80% and kills it at 95%), and time ``genomic_relationship_bed(bed, client=client)``:
   two passes over blocks of markers read inside the tasks, then a tree sum of the n x n partials;
5. ask every worker for its peak resident memory (``ru_maxrss``) and the bytes it spilled to disk;
6. compare both Dask G with the in-memory G (max |difference|) and delete the files.

The children run one at a time, before the cluster starts. All three use both cores: the children
through a 2-thread BLAS, the cluster through two worker processes of one BLAS thread each (the nanny
sets OPENBLAS_NUM_THREADS=1). One run each: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import logging
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
from _common import print_machine, verdict  # benchmarks/ is on sys.path when a script runs

import bayesblup as bb
from bayesblup.genotypes.dask import default_block_size

GB = 1e9
_KB = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB on Linux

CHILD = """
import resource, sys, time
import numpy as np
import bayesblup as bb
mode, bed, scaling, out = sys.argv[1:5]
t0 = time.perf_counter()
if mode == "memory":
    calls = bb.read_plink(bed)
    t1 = time.perf_counter()
    geno, _ = bb.quality_control(calls)
    t2 = time.perf_counter()
    G = bb.genomic_relationship(geno, scaling=scaling).matrix
    phases = [t1 - t0, t2 - t1, time.perf_counter() - t2]
else:  # no client and no cluster: the Dask path one block at a time in this process
    G = bb.genomic_relationship_bed(bed, scaling=scaling).matrix
    phases = []
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, *phases)
np.save(out, G)
"""


@dataclass(frozen=True)
class Row:
    n: int
    m: int
    file_bytes: int
    blocks: int
    dask_s: float
    worker_peak: float
    spilled: float
    driver_peak: float
    local_s: float
    local_peak: float
    memory_s: float
    memory_peak: float
    max_abs_diff: float


def write_bed(path: Path, n: int, m: int, *, seed: int, missing_rate: float = 0.005, block: int = 4096) -> None:
    """Write HWE calls to a .bed/.bim/.fam set, ``block`` markers at a time (never n x m in memory)."""
    from bed_reader import create_bed

    rng = np.random.default_rng(seed)
    properties = {"iid": [f"ind{i + 1}" for i in range(n)], "sid": [f"snp{j + 1}" for j in range(m)]}
    with create_bed(path, iid_count=n, sid_count=m, properties=properties) as out:
        for j0 in range(0, m, block):
            b = min(m, j0 + block) - j0
            p = rng.uniform(0.05, 0.95, b).astype(np.float32)
            u = rng.random((n, b), dtype=np.float32)  # one uniform per call: P(2) = p^2, P(0) = (1-p)^2
            calls = np.asfortranarray((u < p * p).astype(np.int8) + (u < 1 - (1 - p) ** 2))
            hit = rng.integers(0, n * b, rng.binomial(n * b, missing_rate))  # sparse: no second n x b draw
            calls.reshape(-1, order="F")[hit] = bb.MISSING
            for j in range(b):
                out.write(calls[:, j])


def maxrss_self() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _KB


def worker_state(dask_worker) -> tuple[float, float]:
    """Peak resident bytes of this worker process, and bytes it spilled to disk (0 if unknown)."""
    spilled = getattr(getattr(dask_worker.data, "spilled_total", None), "disk", 0)
    return maxrss_self(), float(spilled)


def run_child(mode: str, bed: Path, scaling: str, out: Path) -> tuple[float, float, list[float]]:
    """Seconds, peak resident bytes (the child's own ru_maxrss) and phase times of one child process."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(bed), scaling, str(out)], capture_output=True, text=True, check=True
    )
    seconds, maxrss, *phases = map(float, child.stdout.split())
    return seconds, maxrss * _KB, phases


def measure(n: int, m: int, *, args, folder: Path) -> Row:
    from distributed import Client, LocalCluster

    bed = folder / f"sim_{n}x{m}.bed"
    t0 = time.perf_counter()
    write_bed(bed, n, m, seed=args.seed)
    print(f"  wrote {bed.name} ({bed.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s", flush=True)

    ref_path, local_path = folder / "G_in_memory.npy", folder / "G_local.npy"
    memory_s, memory_peak, (read_s, qc_s, g_s) = run_child("memory", bed, args.scaling, ref_path)
    print(f"  in memory: {memory_s:.1f} s (read_plink {read_s:.1f} s, QC {qc_s:.1f} s, G {g_s:.1f} s)", flush=True)
    local_s, local_peak, _ = run_child("local", bed, args.scaling, local_path)
    print(f"  dask, no cluster: {local_s:.1f} s", flush=True)

    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=None,
            local_directory=str(folder / "dask-scratch"),
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: None)  # workers up before the clock starts
        t0 = time.perf_counter()
        rel = bb.genomic_relationship_bed(bed, scaling=args.scaling, block_size=args.block_size, client=client)
        dask_s = time.perf_counter() - t0
        states = client.run(worker_state, nanny=False).values()
    driver_peak = maxrss_self()
    print(f"  dask, LocalCluster: {dask_s:.1f} s", flush=True)

    ref = np.load(ref_path)
    diff = max(float(np.abs(rel.matrix - ref).max()), float(np.abs(np.load(local_path) - ref).max()))
    block = args.block_size or default_block_size(n)
    return Row(
        n=n,
        m=m,
        file_bytes=bed.stat().st_size,
        blocks=-(-rel.n_markers // block),
        dask_s=dask_s,
        worker_peak=max(s[0] for s in states),
        spilled=sum(s[1] for s in states),
        driver_peak=driver_peak,
        local_s=local_s,
        local_peak=local_peak,
        memory_s=memory_s,
        memory_peak=memory_peak,
        max_abs_diff=diff,
    )


def print_table(rows: list[Row], args) -> None:
    print(
        f"\nscaling {args.scaling}; float64; LocalCluster of {args.workers} worker processes x 1 thread, "
        f"memory_limit {args.memory_limit} each; GB = 1e9 bytes; one run each"
    )
    head = (
        f"{'n':>5} {'m':>7} {'.bed GB':>7} {'int8 GB':>7} {'W f64 GB':>8} {'blocks':>6} {'cluster s':>9} "
        f"{'worker peak GB':>14} {'spilled GB':>10} {'driver peak GB':>14}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.n:>5} {r.m:>7} {r.file_bytes / GB:>7.3f} {r.n * r.m / GB:>7.3f} {8 * r.n * r.m / GB:>8.2f} "
            f"{r.blocks:>6} {r.dask_s:>9.1f} {r.worker_peak / GB:>14.3f} {r.spilled / GB:>10.3f} "
            f"{r.driver_peak / GB:>14.3f}"
        )
    head = (
        f"{'n':>5} {'m':>7} {'in-mem s':>8} {'in-mem peak GB':>14} {'no-cluster s':>12} {'no-cluster peak GB':>18} "
        f"{'cluster/in-mem':>14} {'no-cluster/in-mem':>17} {'max |diff|':>10} {'G ok':>4}"
    )
    print(f"\n{head}")
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.n:>5} {r.m:>7} {r.memory_s:>8.1f} {r.memory_peak / GB:>14.3f} {r.local_s:>12.1f} "
            f"{r.local_peak / GB:>18.3f} {r.dask_s / r.memory_s:>14.2f} {r.local_s / r.memory_s:>17.2f} "
            f"{r.max_abs_diff:>10.1e} {verdict(r.max_abs_diff <= 1e-10):>4}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000x250000", help="comma-separated n x m (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, one thread each (default 2)")
    parser.add_argument("--memory-limit", default="1.5GB", help="per worker (default: %(default)s)")
    parser.add_argument(
        "--block-size", type=int, help="markers per task (default: the package's, 64 MiB / n within [4096, 65536])"
    )
    parser.add_argument("--scaling", default="standardized", help="scaling of W (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="folder for the temporary .bed (default: the system's temporary folder)")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.strip().lower().split("x")) for s in args.sizes.split(",")]

    print_machine()
    versions = ", ".join(f"{p} {version(p)}" for p in ("numpy", "dask", "distributed", "bed-reader"))
    print(f"python    {platform.python_version()}, {versions}, bayesblup {bb.__version__}")
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="bayesblup-dask-grm-", dir=args.dir))
    try:
        for n, m in sizes:
            print(f"size {n} x {m}", flush=True)
            rows.append(measure(n, m, args=args, folder=folder))
            for f in folder.iterdir():  # one size's files at a time on disk
                shutil.rmtree(f) if f.is_dir() else f.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_table(rows, args)
    print(
        "\nworker peak: the largest ru_maxrss of the cluster's worker processes (Python, Dask and bayesblup "
        "included); driver peak: this process's\n(it wrote the .bed block by block and received G); in-mem: a child "
        "running read_plink + quality_control + genomic_relationship;\nno-cluster: a child running "
        "genomic_relationship_bed with no client (one task at a time, BLAS on every core); max |diff|: of both "
        "Dask G\nagainst the in-memory G. Times on a shared machine are noisy."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
