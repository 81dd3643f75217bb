"""What the benchmark scripts share: the machine description at the top of a table, and verdicts."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import time


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_machine() -> None:
    """Date (UTC), platform and CPU lines, so that a recorded table describes where it ran."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"date      {now}")
    print(f"platform  {platform.platform()}")
    print(f"cpu       {cpu_model()}, {os.cpu_count()} cores ({affinity} usable)")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def import_time(repeats: int) -> float:
    """Median wall time of ``python -c 'import bayesblup, pymc'``: the fixed cost of every fresh process."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import bayesblup, pymc"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


PARENTS = 200  # the simulated breeding population: unrelated parents (not in the data)
FAMILY = 10  # full sibs per pair of parents


def family_genotypes(n: int, m: int, rng, *, allele_freq):
    """n individuals of a breeding population: full-sib families of FAMILY from random pairs of PARENTS parents.

    The parents are unrelated (Hardy-Weinberg at ``allele_freq``); each pair is two distinct ones, and each parent
    passes one allele per marker, unlinked (``simulate_offspring``). A parent is in about 2 n / (FAMILY PARENTS)
    families, so the individuals are full sibs, half sibs and unrelated.
    """
    import numpy as np

    from bayesblup.genotypes.calls import Genotypes
    from bayesblup.names import ADDITIVE
    from bayesblup.testing import simulate_genotypes, simulate_offspring

    parents, _ = simulate_genotypes(PARENTS, m, allele_freq=allele_freq, seed=rng, order="C")
    pairs = np.array([rng.choice(PARENTS, size=2, replace=False) for _ in range(-(-n // FAMILY))])
    pairs = np.repeat(pairs, FAMILY, axis=0)[:n]
    calls = simulate_offspring(parents.calls[pairs[:, 0]], parents.calls[pairs[:, 1]], seed=rng)
    return Genotypes(
        calls=np.asfortranarray(calls), ids=[f"ind{i + 1}" for i in range(n)], markers=list(parents.markers),
        coding=ADDITIVE, source="simulated families",
    )  # fmt: skip
