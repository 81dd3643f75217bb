"""Sphinx configuration of the bayesblup documentation site.

Build with ``make docs`` (executes the notebooks, then runs Sphinx with warnings as errors) or, once
``build/notebooks`` holds the executed notebooks,
``.venv/bin/python -m sphinx -W --keep-going -b html docs build/docs``.

- MyST-NB reads the Markdown pages (MyST) and the notebooks. It never executes a notebook: ``make notebooks``
  executes ``notebooks/*.ipynb`` into ``build/notebooks/`` once, and this file copies them into
  ``docs/_generated/notebooks/`` (git-ignored) at the start of every build.
- autodoc + numpydoc render the API reference from the docstrings (NumPy style).
- The theme (pydata-sphinx-theme) and every asset it needs ship with the Python packages: nothing is fetched at build
  time. No intersphinx: the build machine may have no network. MathJax too is served with the site (no CDN).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sphinx.errors import ConfigError

import bayesblup

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
EXECUTED = ROOT / "build" / "notebooks"  # written by `make notebooks` (scripts/run_notebooks.py)
NOTEBOOKS = DOCS / "_generated" / "notebooks"  # the copies Sphinx reads


def copy_executed_notebooks() -> None:
    """Mirror build/notebooks/*.ipynb into docs/_generated/notebooks/, or stop with what to run."""
    sources = sorted(EXECUTED.glob("*.ipynb")) if EXECUTED.is_dir() else []
    if not sources:
        message = (
            f"no executed notebooks in {EXECUTED} (missing or empty): run `make notebooks` first "
            "(or `make docs`, which runs it before Sphinx)."
        )
        print(f"docs/conf.py: {message}", file=sys.stderr)  # Sphinx buries the error under its crash report
        raise ConfigError(message)
    NOTEBOOKS.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in sources}
    for stale in NOTEBOOKS.iterdir():  # a notebook renamed or removed upstream must not linger in the site
        if stale.name not in wanted:
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
    for src in sources:
        dst = NOTEBOOKS / src.name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copy2(src, dst)  # unchanged copies keep their mtime: Sphinx re-reads only what changed


copy_executed_notebooks()

# -- project -----------------------------------------------------------------------------------------------------------
project = "bayesblup"
author = "the bayesblup authors"
copyright = "the bayesblup authors; GPL-3.0-or-later"
release = bayesblup.__version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------------------------------------------------
extensions = [
    "myst_nb",  # MyST Markdown and notebooks (includes myst_parser: do not list it as well)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",  # summary tables on the API pages; no stub generation
    "numpydoc",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
# `_generated/` is build input made by this file, and its one use is the notebook copies: any other file there is
# excluded. `build/` and `_build/` are outputs, never sources.
exclude_patterns = [
    "build",
    "_build",
    "_generated/*.*",  # loose files in _generated/
    "_generated/[!n]*",  # folders in _generated/ other than notebooks/
    "_generated/notebooks/*.md",
    "_generated/notebooks/*.rst",
    "**/.ipynb_checkpoints",
    "README.md",  # notes for people browsing the folder, not a page
]

# -- MyST / MyST-NB ----------------------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # `[text](page.md#a-heading)` links resolve
nb_execution_mode = "off"  # executed once by `make notebooks`; Sphinx renders the stored outputs
nb_merge_streams = True  # one output block per stream, not one per print call

# -- autodoc / numpydoc ------------------------------------------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"  # numpydoc's Parameters sections carry the types in words
autodoc_preserve_defaults = True  # show `prior="default"`, not the evaluated object
autosummary_generate = False  # the API pages are written by hand; the tables only link to them
numpydoc_show_class_members = False  # each class lists its members through autodoc's :members: instead
numpydoc_class_members_toctree = False

# -- HTML --------------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"bayesblup {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False


def copy_mathjax() -> Path:
    """MathJax 2.7, from the jupyter-server-mathjax package (the docs extra), into docs/_generated/static/mathjax.

    The pages' maths is typeset in the reader's browser by this copy, served with the site: no CDN, so the maths
    (the equivalence proof included) renders with no network at view time. ``scripts/check_offline_docs.py``
    (run by ``make docs``) fails the build if a page loads a remote script or stylesheet.
    """
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    static = DOCS / "_generated" / "static"
    target = static / "mathjax"
    if not (target / "MathJax.js").is_file():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    return static


html_static_path = [str(copy_mathjax())]  # copied into the site's _static/: _static/mathjax/MathJax.js
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]}}
