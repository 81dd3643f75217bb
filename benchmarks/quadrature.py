"""``method="quadrature"`` against NUTS: in process and end to end through ``bayesblup fit``.

Two data sets, G-BLUP with BGLR's priors, 4 x 1000 draws (NUTS: + 1000 tuning):

- wheat ``y1`` (n = 599, m = 1279; the shipped CSVs);
- a simulated n = 1800, m = 10,000 (Hardy-Weinberg, h2 = 0.5, seeded; a PLINK set written as ``pipeline.py``
  writes it, not timed).

In process (after the imports), from G (the relationship built, not timed) to the fit: ``fit`` wall time, the
quadrature itself (``timings["quadrature_s"]``: mode, grid, refinements, moments and quantiles), its draws, and
the genetic values; NUTS the same (compilation and draws). End to end: the wall time of a fresh ``python -m
bayesblup fit ... --out DIR`` process, start to exit (imports, reading, QC, G, the fit, writing). Each measure is
the median of ``--repeats`` runs (default 3); h2's posterior mean and sd and the quadrature's error estimate are
printed beside them.

    .venv/bin/python benchmarks/quadrature.py                 # both data sets, 3 repeats (~2 min)
    .venv/bin/python benchmarks/quadrature.py --repeats 1     # a quick run
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_machine

SIMULATED = (1800, 10_000)


def _median_run(fn, repeats: int):
    """``(median seconds, result of the last run)``."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def in_process(label: str, y, G, repeats: int) -> list[dict]:
    import bayesblup as bb

    rows = []
    for method in ("quadrature", "nuts"):
        model = bb.GBLUP(y, G, prior="bglr")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.spectral_data  # noqa: B018 - the eigendecomposition is timed apart (shared by both methods)

            def fit(model=model, method=method):
                return model.fit(method=method, chains=4, draws=1000, tune=1000, seed=1)

            seconds, result = _median_run(fit, repeats)
        h2 = result.summary().loc["h2"]
        t = result.timings
        rows.append({
            "data": label, "method": method, "fit_s": seconds, "core_s": t.get("quadrature_s", t.get("sampling_s")),
            "draws_s": t.get("quadrature_draws_s", t.get("draws_s")), "genetic_values_s": t["genetic_values_s"],
            "h2": h2["mean"], "h2_sd": h2["sd"],
            "error": result.settings.get("quadrature", {}).get("error_estimate"),
        })  # fmt: skip
    return rows


def end_to_end(label: str, genotypes: str, phenotypes: str, trait: str, repeats: int, folder: Path) -> list[dict]:
    rows = []
    for method in ("quadrature", "nuts"):
        times = []
        for k in range(repeats):
            out = folder / f"{label}_{method}_{k}".replace(" ", "_")
            command = [
                sys.executable, "-m", "bayesblup", "fit", "--genotypes", genotypes, "--phenotypes", phenotypes,
                "--trait", trait, "--model", "gblup", "--prior", "bglr", "--method", method, "--seed", "1",
                "--quiet", "--out", str(out),
            ]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        rows.append({"data": label, "method": method, "e2e_s": statistics.median(times)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd
    from pipeline import write_inputs

    import bayesblup as bb
    from bayesblup.datasets import wheat_path

    print_machine()
    print(f"versions  bayesblup {bb.__version__}, numpy {np.__version__}; G-BLUP, prior bglr, 4 x 1000 draws")
    wheat = bb.datasets.load_wheat()
    rows = in_process("wheat 599", wheat.phenotypes["y1"], bb.genomic_relationship(wheat.genotypes), args.repeats)
    with tempfile.TemporaryDirectory(prefix="bayesblup-quad-") as tmp:
        tmp = Path(tmp)
        n, m = SIMULATED
        bed, pheno = write_inputs(n, m, tmp, seed=2026)
        geno = bb.read_genotypes(bed)
        y = pd.read_csv(pheno, index_col="id", dtype={"id": str})["y"]
        rows += in_process(f"sim {n}", y, bb.genomic_relationship(geno), args.repeats)
        e2e = end_to_end("wheat 599", wheat_path("wheat_X.csv.gz"), wheat_path("wheat_Y.csv"), "y1", args.repeats, tmp)
        e2e += end_to_end(f"sim {n}", str(bed), str(pheno), "y", args.repeats, tmp)
    by_key = {(r["data"], r["method"]): r["e2e_s"] for r in e2e}
    print()
    print("| data | method | fit (s) | quadrature or sampling (s) | draws (s) | genetic values (s) | end to end (s) "
          "| h2 | sd | error estimate |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        error = "" if r["error"] is None else f"{r['error']:.1g}"
        print(
            f"| {r['data']} | {r['method']} | {r['fit_s']:.3f} | {r['core_s']:.3f} | {r['draws_s']:.3f} | "
            f"{r['genetic_values_s']:.3f} | {by_key[(r['data'], r['method'])]:.2f} | {r['h2']:.4f} | "
            f"{r['h2_sd']:.4f} | {error} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
