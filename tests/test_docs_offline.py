"""scripts/check_offline_docs.py, which `make docs` runs on the built site: remote scripts and stylesheets fail it."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

pytestmark = pytest.mark.structural

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_offline_docs.py"


def test_remote_scripts_and_stylesheets_are_found_links_are_not(tmp_path, capsys):
    check = runpy.run_path(str(SCRIPT))
    page = """<html><head>
    <script async="async" src="_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"></script>
    <link rel="stylesheet" href="_static/styles/theme.css">
    <script defer src="https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js"></script>
    <link href="//fonts.example.org/a.css" rel="stylesheet" type="text/css">
    </head><body><a href="https://www.pymc.io">PyMC</a></body></html>"""
    assert check["remote_loads"](page) == [
        "https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js", "//fonts.example.org/a.css",
    ]  # fmt: skip
    (tmp_path / "ok.html").write_text(page.replace("https://cdn.jsdelivr.net/npm/", "_static/").replace("//fonts", "x"))
    assert check["main"]([str(tmp_path)]) == 0
    (tmp_path / "bad.html").write_text(page)
    assert check["main"]([str(tmp_path)]) == 1
    assert "bad.html: loads https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js" in capsys.readouterr().err
