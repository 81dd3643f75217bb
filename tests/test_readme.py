"""The README's Python blocks run as written on the shipped data (issue 19), in order, in one namespace.

Lines marked ``(template)`` and blocks headed ``# template`` name a user's own data and are left out. Fits are
shortened (2 chains x 60 draws + 60 tuning): what is tested is that every line runs, not the posterior.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bayesblup as bb
from bayesblup import fitting

pytestmark = pytest.mark.structural

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    runnable = []
    for block in blocks:
        if block.lstrip().startswith("# template"):
            continue
        runnable.append("\n".join(line for line in block.splitlines() if "(template)" not in line))
    return runnable


def test_readme_python_blocks_run_as_written(tmp_path, monkeypatch):
    blocks = _blocks()
    assert len(blocks) >= 3  # the quick start, several traits, your own PyMC model
    real_fit = fitting.BLUPModel.fit

    def short_fit(self, **options):
        options |= {"chains": 2, "draws": 60, "tune": 60} if options.get("method", "nuts") == "nuts" else {}
        return real_fit(self, **options)

    monkeypatch.setattr(fitting.BLUPModel, "fit", short_fit)
    monkeypatch.chdir(tmp_path)  # fit.save("fit_y1") writes here
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {}
    for k, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {k + 1}", "exec"), namespace)
        except Exception as exc:  # name the block and line
            raise AssertionError(f"README python block {k + 1} failed: {type(exc).__name__}: {exc}") from exc
    assert isinstance(namespace["fit"], bb.BLUPFit) and (tmp_path / "fit_y1" / "summary.json").is_file()
