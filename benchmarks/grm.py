"""Time and memory of the genomic relationship matrix G = WW'/m against the BLAS floor.

For each size n x m, in one process:

1. simulate int8 genotype calls (seeded, Fortran order, as PLINK .bed files are read);
2. time ``bayesblup.genomic_relationship`` (median of ``--repeats`` runs): allele counts, the
   scaling, then G accumulated a block of markers at a time with BLAS ``syrk``;
3. run it once more under ``tracemalloc`` (numpy registers its buffers there) for the peak bytes
   the call allocates; the package's peak memory is that plus the int8 calls it reads;
4. build the dense float W from the same calls and scaling and time a bare ``W @ W.T`` (median
   of ``--repeats``). numpy sees that the operands are one buffer and its transpose and calls
   ``syrk`` itself, so this is the floor: one BLAS call on a W already in memory, with no scaling
   and no division. The package must also build W's blocks from the calls, so on the same BLAS it
   should not beat it. (The package calls scipy's BLAS and ``@`` numpy's; the header lists both,
   as wheels may bundle different OpenBLAS builds.)
5. check that the package's G equals ``W @ W.T / denominator``.

Targets (from the project's issue): time ratio package / bare <= 1.3, and peak memory
<= 1.5 x (bytes of W + bytes of one n x n matrix). A dense W plus G would fit that budget; the
package never holds all of W as floats (one slab of markers at a time), so it should sit below.
The targets are reported, not asserted: the exit status is 0 unless something raises.

Memory held by BLAS itself (OpenBLAS's thread buffers) is not seen by tracemalloc; the process's
``ru_maxrss``, printed at the end, is the coarse upper bound (it includes the dense W of step 4).
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import platform
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from _common import print_machine, verdict  # benchmarks/ is on sys.path when a script runs

import bayesblup
from bayesblup.testing import simulate_genotypes

GB = 1e9


@dataclass(frozen=True)
class Row:
    n: int
    m: int
    package_s: float
    bare_s: float
    peak_bytes: int
    budget_bytes: float
    max_abs_diff: float
    g_ok: bool

    @property
    def ratio(self) -> float:
        return self.package_s / self.bare_s

    @property
    def memory_ratio(self) -> float:
        return self.peak_bytes / self.budget_bytes


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        n, _, m = item.strip().lower().partition("x")
        sizes.append((int(n), int(m)))
    return sizes


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        del result
    gc.collect()
    return statistics.median(times)


def blas_info() -> str:
    """numpy's BLAS (the bare baseline) and, via threadpoolctl, every BLAS loaded (scipy's runs the package)."""
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        text = f"numpy built with {deps.get('name', '?')} {deps.get('version', '')}".strip()
    except Exception:  # show_config(mode=...) needs numpy >= 1.26
        text = "numpy BLAS unknown"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return text
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            where = os.path.basename(os.path.dirname(lib["filepath"]))  # numpy.libs, scipy.libs, ...
            text += (
                f"; loaded {where}: {lib['internal_api']} {lib.get('version')} "
                f"({lib.get('architecture', '?')}, {lib['num_threads']} threads)"
            )
    return text


def print_header() -> None:
    print_machine()
    print(f"python    {platform.python_version()}, numpy {np.__version__}, bayesblup {bayesblup.__version__}")
    print(f"blas      {blas_info()}")


def measure(n: int, m: int, *, scaling: str, dtype: np.dtype, repeats: int, seed: int = 1) -> Row:
    geno, _ = simulate_genotypes(n, m, seed=seed, order="F")

    package = functools.partial(bayesblup.genomic_relationship, geno, scaling=scaling, dtype=dtype)
    package_s = median_time(package, repeats)

    gc.collect()
    tracemalloc.start()
    G = package().matrix
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = geno.calls.nbytes + traced_peak

    gm = bayesblup.genotype_matrix(geno, scaling=scaling, dtype=dtype)
    W, denominator = gm.values, gm.scaling.denominator
    del gm, geno, package
    gc.collect()
    bare_s = median_time(functools.partial(np.matmul, W, W.T), repeats)  # exactly W @ W.T

    ref = W @ W.T
    del W
    gc.collect()
    ref /= dtype.type(denominator)
    scale = max(float(ref.max()), -float(ref.min()))  # max |ref| without an n x n temporary
    ref -= G
    max_abs_diff = float(np.abs(ref, out=ref).max())
    del ref, G
    gc.collect()

    rtol = 1e-10 if dtype == np.float64 else 1e-4  # of max |G|: summation order differs, so rounding does
    itemsize = dtype.itemsize
    return Row(
        n=n,
        m=m,
        package_s=package_s,
        bare_s=bare_s,
        peak_bytes=peak,
        budget_bytes=1.5 * (n * m * itemsize + n * n * itemsize),
        max_abs_diff=max_abs_diff,
        g_ok=max_abs_diff <= rtol * scale,
    )


def print_table(rows: list[Row], dtype: np.dtype) -> None:
    head = (
        f"{'n':>6} {'m':>7} {'package G (s)':>13} {'bare W@W.T (s)':>14} {'ratio':>6} "
        f"{'peak (GB)':>9} {'1.5x(W+nxn) (GB)':>17} {'mem/budget':>10} {'max |diff|':>10} {'G ok':>4} "
        f"{'ratio<=1.3':>10} {'peak<=budget':>12}"
    )
    print(f"\ndtype {dtype.name}; times are medians; GB = 1e9 bytes")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.n:>6} {r.m:>7} {r.package_s:>13.3f} {r.bare_s:>14.3f} {r.ratio:>6.2f} "
            f"{r.peak_bytes / GB:>9.3f} {r.budget_bytes / GB:>17.3f} {r.memory_ratio:>10.2f} "
            f"{r.max_abs_diff:>10.1e} {'yes' if r.g_ok else 'NO':>4} "
            f"{verdict(r.ratio <= 1.3):>10} {verdict(r.peak_bytes <= r.budget_bytes):>12}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000x50000,5000x50000", help="comma-separated n x m (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measure; the median is reported")
    parser.add_argument("--scaling", default="standardized-hwe", help="scaling of W (default: %(default)s)")
    parser.add_argument("--float32", action="store_true", help="compute in float32 instead of float64")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    dtype = np.dtype(np.float32 if args.float32 else np.float64)

    print_header()
    rows = []
    for n, m in parse_sizes(args.sizes):
        rows.append(measure(n, m, scaling=args.scaling, dtype=dtype, repeats=args.repeats))
        print(f"  done {n} x {m}", flush=True)
    print_table(rows, dtype)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if platform.system() == "Darwin" else 1024)
    print(f"\nprocess ru_maxrss {maxrss / GB:.3f} GB (whole run, dense W of the baseline included)")
    if not all(r.g_ok for r in rows):
        print("WARNING: the package's G differs from W @ W.T / denominator beyond rounding.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
