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
