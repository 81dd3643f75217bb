"""The layer contract: each layer of bayesblup imports only those below it (pyproject.toml, docs/architecture.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # pyproject.toml holds the contract

pytestmark = pytest.mark.structural


def test_layer_contract():
    """No module imports a layer above its own (lazy imports inside functions count)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
