"""Multi-trait G-BLUP: wheat's four traits jointly against one trait, and a simulated n = 2000 with missing records.

In one process, after the imports (PyMC's included), the script times three fits, each end to end:

- **wheat y1** (n = 599, m = 1279): ``bb.datasets.load_wheat()`` (reading the shipped CSVs), QC, G = WW'/m
  (W standardized), ``GBLUP(y1, G, prior="bglr")`` fitted by NUTS, its genetic values, summary and diagnostics;
- **wheat y1,y2,y4,y5**: the same, the four traits jointly (``Y`` a DataFrame): one ``Sigma_g`` and one
  ``Sigma_e`` of 4 x 4, BGLR ``Multitrait``'s inverse Wishart priors;
- **wheat y1,y2,y4,y5 + 50-marker set** (``--sets N``, 0 to skip; no target): the four traits with G split into
  the first N markers' G and the rest's (``MultiGBLUP``): the background (the rest) integrated out, the set's
  effects explicit (docs/models.md, several kernels with several traits);
- **simulated**: ``--sim-n`` x ``--sim-m`` (default 2000 x 10,000) individuals of a breeding population
  (``--population families``: full-sib families of 10 from random pairs of 200 unrelated parents, so full sibs, half
  sibs and unrelated pairs; ``--population unrelated``: unrelated individuals in Hardy-Weinberg equilibrium, where G
  is close to I and h2 is weakly identified), seeded, three traits from ``simulate_multitrait`` on G = WW'/m (W
  standardized) with h2 = 0.3, 0.5, 0.7, genetic correlations r_g(t1, t2) = -0.5, r_g(t1, t3) = 0, r_g(t2, t3) =
  0.7, residual correlations 0.2, 0 and 0.3, and ``--missing`` (default 20%) of each trait's records missing at
  random (no individual loses all three). The simulation is not timed: the row starts from the calls in memory (QC,
  G, eigendecomposition, fit, genetic values). Prior ``--sim-prior`` (default ``"default"``: h2 ~ Beta(1, 1), LKJ(1)
  correlations).

Every fit runs ``--chains`` x ``--draws`` (default 4 x 1000, + 1000 tuning), seed ``--seed``. Each fit is the
first of its structure in the process, so each compiles (cold against cold; a multi-trait model with every record
present would be reused by a second fit of the same traits, one with missing records never is). PyTensor's and
numba's on-disk caches may hold compiled pieces from an earlier run of the same graphs: record a table from the
second of two runs.

Phases (seconds, from ``fit.timings``): ``load+QC`` (reading and quality control; the simulated row: QC only),
``G``, ``eigen`` (the eigendecomposition of G), ``build`` (the ``pm.Model``, the eigendecomposition excluded),
``compile+init`` (``sampling_s`` - ``draws_s``: everything in ``pm.sample`` outside the draw loop, i.e.
PyTensor's graph rewriting and compilation of the log density and its gradient, NUTS initialisation, packaging
the draws), ``draws`` (PyMC's ``sampling_time``: the draw loop, tuning included), ``genetic values``
(``genetic_values_s``), ``other`` (the end-to-end time less the phases: the summary with its ESS and R-hat,
diagnostics, Python between the calls). ``min ESS`` is the lowest bulk ESS over the h2 and r_g rows (which one
is named), ``ESS/s`` = min ESS / draws; ``R-hat`` the largest over every row of the summary; ``div`` the
divergent transitions after tuning.

Targets (issue 15, 2 cores, 4 chains x 1000 draws + 1000 tuning), reported, not asserted:

- wheat, four traits jointly, end to end <= 3 x the single-trait y1 fit's;
- simulated n = 2000, m = 10,000, three traits, 20% missing: end to end < 60 s and min ESS(h2, r_g) >= 400.

Usage::

    .venv/bin/python benchmarks/multitrait.py              # wheat 1 and 4 traits; n = 2000 x m = 10,000; 4 x 1000 draws
    .venv/bin/python benchmarks/multitrait.py --quick      # smoke: 2 x 200 draws (+200 tuning), simulated 300 x 2000
    .venv/bin/python benchmarks/multitrait.py --no-wheat --sim-n 1000   # the simulated row alone, n = 1000
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import family_genotypes, print_machine, verdict

WHEAT_TRAITS = ["y1", "y2", "y4", "y5"]
SIM_TRAITS = ["t1", "t2", "t3"]
SIM_H2 = np.array([0.3, 0.5, 0.7])
SIM_R_G = np.array([[1.0, -0.5, 0.0], [-0.5, 1.0, 0.7], [0.0, 0.7, 1.0]])
SIM_R_E = np.array([[1.0, 0.2, 0.0], [0.2, 1.0, 0.3], [0.0, 0.3, 1.0]])
SIM_MU = np.array([10.0, 5.0, 0.0])
TARGET_RATIO = 3.0  # wheat: four traits jointly against y1 alone, end to end
TARGET_SIM_S = 60.0  # simulated n = 2000, m = 10,000: end to end
TARGET_SIM_ESS = 400.0  # and the lowest bulk ESS over h2 and r_g


@dataclass
class Row:
    case: str
    n: int
    m: int
    traits: int
    missing: float  # share of the n x t records missing
    e2e_s: float
    phases: dict
    summary: object  # pandas.DataFrame, fit.summary()
    diagnostics: dict
    truth: dict = field(default_factory=dict)  # simulated rows: h2_* and r_g_* of the simulation

    @property
    def key_rows(self) -> list[str]:
        return [p for p in self.summary.index if p == "h2" or p.startswith(("h2_", "r_g_"))]

    @property
    def min_ess(self) -> tuple[float, str]:
        ess = self.summary.loc[self.key_rows, "ess_bulk"]
        return float(ess.min()), str(ess.idxmin())

    @property
    def ess_per_s(self) -> float:
        return self.min_ess[0] / self.phases["draws"]


# --- header -------------------------------------------------------------------------------------------------------
def pymc_jobs(chains: int) -> str:
    """How many processes the package runs the chains in when ``cores`` is not given."""
    from bayesblup.inference.samplers import default_cores

    jobs = default_cores(chains)
    return f"{chains} chains in {jobs} job{'s' if jobs > 1 else ''}" + (" (sequential)" if jobs == 1 else "")


def print_header(args) -> None:
    import arviz
    import pymc
    import pytensor
    import scipy

    import bayesblup as bb

    print_machine()
    print(
        f"python    {platform.python_version()}, bayesblup {bb.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, pymc {pymc.__version__}, pytensor {pytensor.__version__}, "
        f"arviz {arviz.__version__}"
    )
    cfg = pytensor.config
    print(f"pytensor  mode {cfg.mode}, linker {cfg.linker}")
    print(f"sampler   PyMC NUTS, {pymc_jobs(args.chains)}; {args.draws} draws + {args.tune} tuning, seed {args.seed}")
    print(
        f"cases     wheat y1 and y1,y2,y4,y5 (prior bglr); simulated {args.sim_n} x {args.sim_m} ({args.population}), "
        f"3 traits, {args.missing:.0%} missing (prior {args.sim_prior}); one run each, end to end in this process"
    )


# --- the fits, timed ----------------------------------------------------------------------------------------------
def fit_phases(fit) -> dict:
    t = fit.timings
    eigen = t.get("eigendecomposition_s", 0.0)  # inside the build: counted once, here
    return {
        "eigen": eigen,
        "build": t.get("build_s", 0.0) - eigen,
        "compile+init": t["sampling_s"] - t["draws_s"],
        "draws": t["draws_s"],
        "genetic values": t.get("genetic_values_s", 0.0),
    }


def run_fit(Y, G, prior: str, args, phases: dict, t0: float):
    """Fit, summary and diagnostics; the phases completed with the fit's and ``other``; the e2e time from t0."""
    import bayesblup as bb

    model = bb.MultiGBLUP(Y, G, prior=prior) if isinstance(G, dict) else bb.GBLUP(Y, G, prior=prior)
    fit = model.fit(chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed)
    summary = fit.summary()
    diagnostics = fit.diagnostics()
    e2e = time.perf_counter() - t0
    phases = phases | fit_phases(fit)
    phases["other"] = e2e - sum(phases.values())
    return e2e, phases, summary, diagnostics


def wheat_row(traits: list[str], args, *, feature: int = 0) -> Row:
    """Wheat's traits on G; with ``feature`` > 0, G split into the first ``feature`` markers and the rest."""
    import bayesblup as bb

    t0 = time.perf_counter()
    wheat = bb.datasets.load_wheat()
    geno, _ = bb.quality_control(wheat.genotypes)  # wheat: every marker polymorphic, nothing dropped
    phases = {"load+QC": time.perf_counter() - t0}
    t = time.perf_counter()
    if feature:
        G = bb.relationships_by_set(geno, {"feature": list(geno.markers[:feature])})
    else:
        G = bb.genomic_relationship(geno, scaling="standardized")
    phases["G"] = time.perf_counter() - t
    Y = wheat.phenotypes[traits[0]] if len(traits) == 1 else wheat.phenotypes[traits]
    e2e, phases, summary, diagnostics = run_fit(Y, G, "bglr", args, phases, t0)
    case = f"wheat {','.join(traits)}" + (f" + {feature}-marker set" if feature else "")
    missing = float(np.isnan(np.asarray(Y, dtype=float)).mean())
    return Row(case, geno.n_individuals, geno.n_markers, len(traits), missing, e2e, phases, summary, diagnostics)


def simulate_calls(args, rng):
    """The simulated individuals' calls: unrelated (Hardy-Weinberg), or full-sib families of a breeding population
    (``_common.family_genotypes``)."""
    from bayesblup.testing import simulate_genotypes

    m = args.sim_m
    freq = rng.uniform(0.05, 0.95, m)
    if args.population == "unrelated":
        return simulate_genotypes(args.sim_n, m, allele_freq=freq, seed=rng)[0]
    return family_genotypes(args.sim_n, m, rng, allele_freq=freq)


def simulate(args):
    """Calls and three correlated traits (not timed): the truth of SIM_* on G = WW'/m."""
    import bayesblup as bb
    from bayesblup.testing import simulate_multitrait

    rng = np.random.default_rng(args.seed)
    geno = simulate_calls(args, rng)
    G = bb.genomic_relationship(bb.quality_control(geno)[0], scaling="standardized")
    sd_g, sd_e = np.sqrt(SIM_H2), np.sqrt(1.0 - SIM_H2)  # phenotypic variance 1 per trait
    Y = simulate_multitrait(
        G, Sigma_g=SIM_R_G * np.outer(sd_g, sd_g), Sigma_e=SIM_R_E * np.outer(sd_e, sd_e), mu=SIM_MU,
        missing=args.missing, names=SIM_TRAITS, seed=rng,
    )  # fmt: skip
    truth = {f"h2_{t}": h for t, h in zip(SIM_TRAITS, SIM_H2, strict=True)}
    for a, b in ((0, 1), (0, 2), (1, 2)):
        truth[f"r_g_{SIM_TRAITS[a]}_{SIM_TRAITS[b]}"] = SIM_R_G[a, b]
    return geno, Y, truth


def simulated_row(args) -> Row:
    import bayesblup as bb

    geno, Y, truth = simulate(args)
    t0 = time.perf_counter()
    geno_qc, _ = bb.quality_control(geno)
    phases = {"load+QC": time.perf_counter() - t0}
    t = time.perf_counter()
    G = bb.genomic_relationship(geno_qc, scaling="standardized")
    phases["G"] = time.perf_counter() - t
    e2e, phases, summary, diagnostics = run_fit(Y, G, args.sim_prior, args, phases, t0)
    missing = float(Y.isna().to_numpy().mean())
    case = f"sim {args.sim_n}x{args.sim_m} {args.population}"
    return Row(case, geno_qc.n_individuals, geno_qc.n_markers, 3, missing, e2e, phases, summary, diagnostics, truth)


# --- output -------------------------------------------------------------------------------------------------------
def _fmt(x, spec: str) -> str:
    """A number, or "-" where there is none (R-hat of a single chain)."""
    return "-" if x is None or not np.isfinite(x) else format(x, spec)


PHASES = ("load+QC", "G", "eigen", "build", "compile+init", "draws", "genetic values", "other")


def text_table(columns, body: list[list[str]], left: int = 1) -> str:
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([fmt(columns), fmt(["-" * w for w in widths]), *(fmt(r) for r in body)])


def print_tables(rows: list[Row]) -> None:
    columns = ("case", "n", "m", "t", "miss", "e2e s", *(f"{p} s" for p in PHASES))
    columns += ("min ESS", "at", "ESS/s", "R-hat", "div")
    body = []
    for r in rows:
        ess, at = r.min_ess
        body.append(
            [r.case, str(r.n), str(r.m), str(r.traits), f"{r.missing:.0%}", f"{r.e2e_s:.1f}"]
            + [f"{r.phases[p]:.2f}" for p in PHASES]
            + [f"{ess:.0f}", at, f"{r.ess_per_s:.1f}", _fmt(r.diagnostics["max_r_hat"], ".3f")]
            + [str(r.diagnostics["divergences"])]
        )
    print(text_table(columns, body, left=1))
    print()
    # estimates: h2 and r_g, posterior mean [90% interval] (ESS), and the truth of the simulated rows
    est_body = []
    for r in rows:
        for p in r.key_rows:
            s = r.summary.loc[p]
            truth = r.truth.get(p)
            interval = f"[{s['q05']:.3f}, {s['q95']:.3f}]"
            known = "-" if truth is None else f"{truth:.2f}"
            covered = "-" if truth is None else ("yes" if s["q05"] <= truth <= s["q95"] else "no")
            est_body.append([r.case, p, f"{s['mean']:.3f}", interval, f"{s['ess_bulk']:.0f}", known, covered])
    print(text_table(("case", "parameter", "mean", "90% interval", "ESS", "truth", "covered"), est_body, left=2))


def print_targets(rows: list[Row], args) -> None:
    print()
    by_traits = {r.traits: r for r in rows if r.case.startswith("wheat") and "set" not in r.case}
    if 1 in by_traits and len(WHEAT_TRAITS) in by_traits:
        single, multi = by_traits[1], by_traits[len(WHEAT_TRAITS)]
        ratio = multi.e2e_s / single.e2e_s
        print(
            f"wheat 4 traits / y1 end to end: {multi.e2e_s:.1f} s / {single.e2e_s:.1f} s = {ratio:.2f} "
            f"<= {TARGET_RATIO:.0f}: {verdict(ratio <= TARGET_RATIO)}"
        )
        parts = ("compile+init", "draws")
        print(
            "  of which "
            + "; ".join(f"{p} {multi.phases[p]:.1f} s against {single.phases[p]:.1f} s" for p in parts)
            + f"; ESS/s {multi.ess_per_s:.1f} against {single.ess_per_s:.1f}"
        )
    for r in rows:
        if r.case.startswith("sim"):
            ess, at = r.min_ess
            sized = (r.n, r.m) == (2000, 10_000)
            note = "" if sized else " (indicative: the target is set at n = 2000, m = 10,000)"
            print(
                f"{r.case} end to end {r.e2e_s:.1f} s < {TARGET_SIM_S:.0f} s: {verdict(r.e2e_s < TARGET_SIM_S)}{note}"
            )
            print(f"{r.case} min ESS {ess:.0f} ({at}) >= {TARGET_SIM_ESS:.0f}: {verdict(ess >= TARGET_SIM_ESS)}{note}")
    for r in rows:
        d = r.diagnostics
        print(f"diagnostics {r.case}: {d['divergences']} divergences, max R-hat {_fmt(d['max_r_hat'], '.3f')}")
    if (args.chains, args.draws, args.tune) != (4, 1000, 1000):
        print(
            f"note: {args.chains} x {args.draws} draws + {args.tune} tuning, not 4 x 1000 + 1000: verdicts indicative"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, help="NUTS chains (default 4; --quick 2)")
    parser.add_argument("--draws", type=int, help="draws per chain (default 1000; --quick 200)")
    parser.add_argument("--tune", type=int, help="tuning steps per chain (default 1000; --quick 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulation and the sampler (default 1)")
    parser.add_argument("--sim-n", type=int, help="individuals of the simulated case (default 2000; --quick 300)")
    parser.add_argument("--sim-m", type=int, help="markers of the simulated case (default 10000; --quick 2000)")
    parser.add_argument("--missing", type=float, default=0.2, help="share of each simulated trait missing (0.2)")
    parser.add_argument("--sim-prior", default="default", choices=("default", "bglr"), help="(default: default)")
    parser.add_argument(
        "--population", default="families", choices=("families", "unrelated"),
        help="the simulated individuals: full-sib families of 200 parents (default), or unrelated",
    )  # fmt: skip
    parser.add_argument("--no-wheat", action="store_true", help="skip the two wheat rows")
    parser.add_argument("--no-sim", action="store_true", help="skip the simulated row")
    parser.add_argument(
        "--sets", type=int, default=50, metavar="N",
        help="also wheat's four traits with G split into its first N markers and the rest (no target; 0: skip)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 x 200 draws, simulated 300 x 2000")
    args = parser.parse_args(argv)
    quick = {"chains": 2, "draws": 200, "tune": 200, "sim_n": 300, "sim_m": 2000}
    full = {"chains": 4, "draws": 1000, "tune": 1000, "sim_n": 2000, "sim_m": 10_000}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_header(args)  # imports pymc and friends: kept out of the timed rows
    logging.getLogger("pymc").setLevel(logging.ERROR)  # no per-fit progress lines
    warnings.simplefilter("ignore")  # rank deficiency of a centred G (by construction), PyMC's notices
    rows = []
    cases = [] if args.no_wheat else [("wheat", WHEAT_TRAITS[:1]), ("wheat", WHEAT_TRAITS)]
    cases += [("sets", WHEAT_TRAITS)] if args.sets and not args.no_wheat else []
    cases += [] if args.no_sim else [("sim", None)]
    for kind, traits in cases:
        if kind == "sim":
            row = simulated_row(args)
        else:
            row = wheat_row(traits, args, feature=args.sets if kind == "sets" else 0)
        phases = ", ".join(f"{k} {v:.1f}" for k, v in row.phases.items())
        line = f"  done {row.case}: {row.e2e_s:.1f} s ({phases}); min ESS {row.min_ess[0]:.0f}"
        print(line, file=sys.stderr, flush=True)
        rows.append(row)
    print()
    print_tables(rows)
    print_targets(rows, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
