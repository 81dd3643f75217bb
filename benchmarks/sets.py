"""Several marker sets: end-to-end time, phases, ESS/s and the likelihood path of ``bayesblup fit --sets``.

For each n (default 1000 and 2000):

1. simulate (seeded, not timed) unrelated individuals in Hardy-Weinberg equilibrium at a feature
   set of ``--feature`` markers (default 200) and a background of ``--rest`` markers (default
   10,000); the trait is ``g_feature + g_rest + e`` with variances 0.3, 0.1 and 0.6 (h2_feature =
   0.3, h2_rest = 0.1), each g the standardized calls times normal effects; write genotypes
   (CSV.gz), phenotypes (CSV) and the sets file (``marker,set``: the feature markers; the rest go to
   the set "rest");
2. run ``python -m bayesblup fit --model gblup --sets sets.csv --prior default`` as a subprocess and
   time it from launch to exit (what a user waits for);
3. read the phases from ``summary.json`` (reading, QC, G per set, eigendecompositions, sampling,
   genetic values, writing), the path taken, and the bulk ESS of every variance component and h2;
   ESS/s divides by PyMC's own ``sampling_time`` (the draw loop, tuning included);
4. at n <= ``--latent-max-n`` (default 1000), fit the latent form (explicit non-centred g_k) in
   this process on the same data and settings: the baseline the marginal form replaces. Its row
   gives the ratio of its worst ESS/s to the marginal form's.

Target (the project's issue, 2 cores): n = 2000 end to end <= 60 s, with ESS >= 400 for every
variance component. Reported, not asserted.

Usage::

    .venv/bin/python benchmarks/sets.py                       # n = 1000 and 2000, 4 x 500 draws (+500 tuning)
    .venv/bin/python benchmarks/sets.py --sizes 500 --draws 300 --tune 300 --no-latent   # smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_machine, verdict

VARIANCES = {"feature": 0.3, "rest": 0.1, "e": 0.6}


def simulate(n: int, m_feature: int, m_rest: int, seed: int):
    """Genotypes, a trait with h2_feature 0.3 and h2_rest 0.1, and the feature set's marker names."""
    import bayesblup as bb
    from bayesblup.testing import simulate_genotypes

    rng = np.random.default_rng(seed)
    m = m_feature + m_rest
    geno, _ = simulate_genotypes(n, m, allele_freq=rng.uniform(0.05, 0.95, m), seed=seed + 1)
    geno, _ = bb.quality_control(geno)
    W = bb.genotype_matrix(geno, scaling="standardized").values
    feature = np.arange(min(m_feature, geno.n_markers))
    rest = np.arange(feature.size, geno.n_markers)
    y = np.zeros(n)
    for cols, var in ((feature, VARIANCES["feature"]), (rest, VARIANCES["rest"])):
        g = W[:, cols] @ rng.normal(size=cols.size)
        y += (g - g.mean()) / g.std() * np.sqrt(var)
    y += rng.normal(0.0, np.sqrt(VARIANCES["e"]), size=n) + 10.0
    return geno, pd.Series(y, index=geno.ids, name="y"), geno.markers[feature]


def write_inputs(folder: Path, geno, y, feature_markers) -> None:
    calls = pd.DataFrame(geno.calls, index=pd.Index(geno.ids, name="id"), columns=geno.markers)
    calls.to_csv(folder / "geno.csv.gz")
    y.rename_axis("id").reset_index().to_csv(folder / "pheno.csv", index=False)
    pd.DataFrame({"marker": feature_markers, "set": "feature"}).to_csv(folder / "sets.csv", index=False)


def run_cli(folder: Path, args) -> tuple[float, dict, float]:
    out = folder / "out"
    command = [sys.executable, "-m", "bayesblup", "fit", "--genotypes", str(folder / "geno.csv.gz")]
    command += ["--phenotypes", str(folder / "pheno.csv"), "--trait", "y", "--model", "gblup"]
    command += ["--sets", str(folder / "sets.csv"), "--prior", "default", "--seed", "1", "--quiet"]
    command += ["--chains", str(args.chains), "--draws", str(args.draws), "--tune", str(args.tune)]
    command += ["--out", str(out), "--force"]
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    import xarray as xr

    with xr.open_datatree(out / "posterior.nc", engine="h5netcdf") as tree:
        sampling_time = float(tree["posterior"].attrs.get("sampling_time", np.nan))
    return wall, summary, sampling_time


def latent_baseline(geno, y, feature_markers, args) -> tuple[float, dict]:
    """(sampling seconds, {parameter: bulk ESS}) of the latent form on the same data."""
    import bayesblup as bb

    G = bb.relationships_by_set(geno, {"feature": list(feature_markers)})
    model = bb.MultiGBLUP(y, G, form="latent", prior="default")
    model.model  # noqa: B018 - build before timing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(chains=args.chains, draws=args.draws, tune=args.tune, seed=1)
    seconds = float(fit.datatree["posterior"].attrs.get("sampling_time", fit.timings["sampling_s"]))
    return seconds, fit.summary()["ess_bulk"].to_dict()


COMPONENTS = ("h2", "h2_feature", "h2_rest", "sigma2_g_feature", "sigma2_g_rest", "sigma2_e")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000", help="comma-separated n (default 1000,2000)")
    parser.add_argument("--feature", type=int, default=200, help="markers in the feature set (default 200)")
    parser.add_argument("--rest", type=int, default=10_000, help="markers in the background (default 10000)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--latent-max-n", type=int, default=1000, help="largest n with the latent baseline")
    parser.add_argument("--no-latent", action="store_true", help="skip the latent baseline")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    print_machine()
    print(f"sets      feature {args.feature} markers, rest {args.rest}; {args.chains} x {args.draws} draws")
    print(f"          (+{args.tune} tuning); truth h2_feature 0.3, h2_rest 0.1")
    print()
    header = (
        f"{'n':>5} {'path':>9} {'e2e s':>7} {'read+qc':>8} {'G sets':>7} {'eigen':>6} {'sample':>7} {'draws s':>8} "
        f"{'g s':>6} {'min ESS':>8} {'ESS/s':>7} {'h2_feat':>8} {'h2_rest':>8} {'P(enr)':>7}"
    )
    print(header)
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        geno, y, feature = simulate(n, args.feature, args.rest, args.seed + n)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_inputs(folder, geno, y, feature)
            wall, summary, sampling_time = run_cli(folder, args)
        t = summary["timings"]
        p = summary["parameters"]
        ess = {name: p[name]["ess_bulk"] for name in COMPONENTS}
        worst = min(ess.values())
        eigen = t.get("factors_s", 0.0) + t.get("eigendecomposition_s", 0.0)
        enrichment = summary["enrichment"]["feature"]["prob_more_per_marker"]
        print(
            f"{n:>5} {summary['path']:>9} {wall:>7.1f} {t['read_s'] + t['qc_s']:>8.2f} {t['relationship_s']:>7.2f} "
            f"{eigen:>6.2f} {t['sampling_s']:>7.1f} {sampling_time:>8.1f} {t['genetic_values_s']:>6.2f} "
            f"{worst:>8.0f} {worst / sampling_time:>7.1f} {p['h2_feature']['mean']:>8.3f} {p['h2_rest']['mean']:>8.3f} "
            f"{enrichment:>7.3f}"
        )
        rows.append((n, wall, worst, sampling_time, summary))
        if not args.no_latent and n <= args.latent_max_n:
            seconds, latent_ess = latent_baseline(geno, y, feature, args)
            worst_latent = min(latent_ess[name] for name in COMPONENTS)
            ratio = (worst / sampling_time) / (worst_latent / seconds)
            print(
                f"{n:>5} {'latent':>9} {'':>7} {'':>8} {'':>7} {'':>6} {'':>7} {seconds:>8.1f} {'':>6} "
                f"{worst_latent:>8.0f} {worst_latent / seconds:>7.2f}   marginal/latent ESS/s {ratio:.0f}x"
            )
    print()
    print("columns: e2e = launch to exit of `bayesblup fit --sets`; sample = pm.sample (compile included);")
    print("draws s = PyMC's draw loop; min ESS = lowest bulk ESS over h2, h2_<set>, sigma2_g_<set>, sigma2_e;")
    print("ESS/s = min ESS / draws s; P(enr) = P(feature explains more variance per marker than the rest)")
    for n, wall, worst, _, summary in rows:
        if n == 2000:
            ok = wall <= 60 and worst >= 400
            print(f"target n = 2000: end to end {wall:.1f} s <= 60 s and min ESS {worst:.0f} >= 400: {verdict(ok)}")
            d = summary["diagnostics"]
            print(f"diagnostics n = 2000: {d['divergences']} divergences, max R-hat {d['max_r_hat']:.4f}")


if __name__ == "__main__":
    main()
