"""Every third-party package that bayesblup imports is declared in pyproject.toml, in its dependencies or an extra.

A package imported directly but only installed as someone else's dependency (threadpoolctl came with PyMC) works
until that package drops it; the install then succeeds and the first fit fails with an ImportError.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Imported modules whose distribution is not installed in the test environment (an extra CI installs in its own
#: step), named by hand: module -> distribution.
NOT_INSTALLED = {"jax": "jax", "numpyro": "numpyro", "blackjax": "blackjax", "nutpie": "nutpie"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {_normalise(re.match(r"[A-Za-z0-9_.-]+", req).group()) for req in requirements}


def _imported() -> dict[str, str]:
    """Top-level module -> the first file importing it, for every absolute import under bayesblup/."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "bayesblup").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


@pytest.mark.structural
def test_every_imported_package_is_declared():
    declared = _declared()
    distributions = importlib.metadata.packages_distributions()
    third_party = {
        module: where
        for module, where in _imported().items()
        if module not in sys.stdlib_module_names and module != "bayesblup"
    }
    assert "pymc" in third_party and "threadpoolctl" in third_party  # the scan sees imports inside functions
    undeclared = []
    for module, where in sorted(third_party.items()):
        names = distributions.get(module) or [NOT_INSTALLED.get(module, module)]
        if not declared & {_normalise(n) for n in names}:
            undeclared.append(f"{module} ({', '.join(names)}; imported in {where})")
    assert not undeclared, f"imported but not declared in pyproject.toml: {'; '.join(undeclared)}"
