"""Which NUTS a user should get by default: PyMC's (bayesblup's compiled cache and forked chains) against nutpie.

``nuts_sampler=None`` was nutpie whenever it was installed, on the promise of "a faster NUTS"; this table is why
it is now PyMC's whatever is installed (:mod:`bayesblup.inference.samplers`). Both samplers run the same compiled
``pm.Model``; nutpie compiles it with Numba at every fit, PyMC's path through PyTensor's cached Numba code.

Command line, ``bayesblup fit`` from process start to exit (4 chains x 1000 draws + 1000 tuning, seed 1,
``--nuts-sampler pymc`` and ``--nuts-sampler nutpie``, the median of ``--repeats`` runs):

``wheat``
    G-BLUP of wheat y1, BGLR priors (marginal form: three parameters);
``mice .bed``
    G-BLUP of the simulated mice-sized set of ``overhead.py`` (1814 x 10,346) from its PLINK .bed;
``wheat binary``
    a binary trait (wheat y1 above its 70% quantile), default priors: the latent liabilities (n = 599
    parameters), where drawing dominates and nutpie's faster draw loop counts most. One run (30-40 s each).

Columns: end to end, compile (PyTensor or Numba compilation and initialisation: ``sampling_s - draws_s`` of
summary.json), draws, bulk ESS of h2 and ESS per second of end to end, and ``vs pymc``: end to end over PyMC's
in the same run. Then in process: two fits of wheat one after another (as cross-validation or a prior
sensitivity run them); PyMC's second fit reuses its compilation.

Needs nutpie (``pip install 'bayesblup[nutpie]'``); without it, only PyMC's rows. Reported, not asserted.

    .venv/bin/python benchmarks/samplers.py              # ~4 minutes with nutpie
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_machine
from overhead import wheat_case, write_mice

IN_PROCESS = r"""
import sys, time
import bayesblup as bb
sampler = sys.argv[1]
wheat = bb.datasets.load_wheat()
G = bb.genomic_relationship(wheat.genotypes)
times = []
for seed in (1, 2):
    t0 = time.perf_counter()
    bb.GBLUP(wheat.phenotypes["y1"], G, prior="bglr").fit(seed=seed, nuts_sampler=sampler, progressbar=False)
    times.append(time.perf_counter() - t0)
print(*times)
"""


def binary_case(folder: Path) -> tuple[Path, Path, str]:
    import pandas as pd

    geno, pheno, _ = wheat_case()["wheat"]
    y = pd.read_csv(pheno, index_col=0)["y1"]
    path = folder / "wheat_binary.csv"
    (y > y.quantile(0.7)).astype(int).rename("case").to_csv(path)
    return geno, path, "case"


def run_fit(case: tuple[Path, Path, str], extra: list[str], sampler: str, out: Path) -> dict:
    geno, pheno, trait = case
    command = [
        sys.executable, "-m", "bayesblup", "fit", "--genotypes", str(geno), "--phenotypes", str(pheno),
        "--trait", trait, "--model", "gblup", "--seed", "1", "--out", str(out), "--nuts-sampler", sampler, *extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    timings = summary["timings"]
    return {
        "wall": wall,
        "compile": timings["sampling_s"] - timings["draws_s"],
        "draws": timings["draws_s"],
        "ess": summary["parameters"]["h2"]["ess_bulk"],
        "h2": summary["parameters"]["h2"]["mean"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per row of wheat and mice (median)")
    args = parser.parse_args(argv)
    print_machine()
    samplers = ["pymc"] + (["nutpie"] if importlib.util.find_spec("nutpie") else [])
    if len(samplers) == 1:
        print("nutpie is not installed (pip install 'bayesblup[nutpie]'): PyMC's rows only")
    print(
        "\n| case | sampler | end to end (s) | compile (s) | draws (s) | ESS h2 | ESS/s | vs pymc | h2 |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mice = write_mice(folder)["mice .bed"]
        cases = {
            "wheat": (wheat_case()["wheat"], ["--prior", "bglr"], args.repeats),
            "mice .bed": (mice, ["--prior", "bglr"], args.repeats),
            "wheat binary": (binary_case(folder), ["--family", "binary"], 1),
        }
        for name, (case, extra, repeats) in cases.items():
            baseline = None
            for sampler in samplers:
                runs = sorted(
                    (
                        run_fit(case, extra, sampler, folder / f"{name.replace(' ', '_')}_{sampler}_{k}")
                        for k in range(repeats)
                    ),
                    key=lambda r: r["wall"],
                )
                r = runs[len(runs) // 2]
                baseline = baseline or r["wall"]
                print(
                    f"| {name} | {sampler} | {r['wall']:.2f} | {r['compile']:.2f} | {r['draws']:.2f} | {r['ess']:.0f} "
                    f"| {r['ess'] / r['wall']:.0f} | {r['wall'] / baseline:.2f}x | {r['h2']:.3f} |",
                    flush=True,
                )
    print("\nIn process, wheat G-BLUP (BGLR priors), two fits one after another:\n")
    print("| sampler | first fit (s) | second fit (s) |\n|---|---|---|")
    for sampler in samplers:
        out = subprocess.run([sys.executable, "-c", IN_PROCESS, sampler], check=True, capture_output=True, text=True)
        first, second = map(float, out.stdout.split())
        print(f"| {sampler} | {first:.2f} | {second:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
