"""Every benchmark table, one after another: the one script that regenerates what ``benchmarks/RESULTS.md`` records.

Each table is its own script (its docstring says what it measures, its floor or baseline and its targets); this
runs them in turn with their default sizes, each in a fresh process, and prints their tables under a heading.
A table that fails is reported and the others still run; the exit code is then 1.

    .venv/bin/python benchmarks/run_all.py                        # every table (about 1.5 hours on 2 cores)
    .venv/bin/python benchmarks/run_all.py --only overhead,quadrature   # some of them
    .venv/bin/python benchmarks/run_all.py --skip lowrank,dask_grm      # all but some

Run on a quiet machine: the tables time wall clocks, and another process on the cores skews them.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent

#: name: (script, what it measures, packages it needs beyond bayesblup's test extra)
TABLES = {
    "overhead": ("overhead.py", "bayesblup fit end to end, phase by phase, against a floor (issue 18)", ()),
    "quadrature": ("quadrature.py", "method='quadrature' against NUTS (issue 18)", ()),
    "pipeline": ("pipeline.py", "PLINK to summary.json at 1800 x 10,000 and 5000 x 50,000 (issue 7)", ()),
    "lowrank": ("lowrank.py", "the low-rank path at n = 20,000, m = 8000 (issue 18)", ()),
    "grm": ("grm.py", "G against the BLAS floor", ()),
    "fit": ("fit.py", "fits by size, repeated records and weights", ()),
    "compare_wheat": ("compare_wheat.py", "wheat against BGLR, rrBLUP and brms", ()),
    "sets": ("sets.py", "several marker sets", ()),
    "multitrait": ("multitrait.py", "several traits", ()),
    "threshold": ("threshold.py", "binary and ordinal traits", ()),
    "samplers": ("samplers.py", "the default NUTS (PyMC's) against nutpie", ("nutpie",)),
    "dask_grm": ("dask_grm.py", "G out of core on a dask cluster", ("dask", "distributed")),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated tables among {', '.join(TABLES)}")
    parser.add_argument("--skip", default="", help="comma-separated tables to leave out")
    args = parser.parse_args(argv)
    chosen = list(TABLES) if args.only is None else args.only.split(",")
    unknown = [name for name in chosen + [s for s in args.skip.split(",") if s] if name not in TABLES]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; the tables are {', '.join(TABLES)}")
    chosen = [name for name in chosen if name not in args.skip.split(",")]
    failed = []
    for name in chosen:
        script, what, needs = TABLES[name]
        print(f"\n## {name}: {what} (benchmarks/{script})\n", flush=True)
        if not (HERE / script).is_file():
            print(f"(benchmarks/{script} is not in this checkout)")
            failed.append(name)
            continue
        missing = [p for p in needs if importlib.util.find_spec(p) is None]
        if missing:
            print(f"(skipped: needs {', '.join(missing)}, not installed)")
            continue
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / script)], check=False).returncode
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
