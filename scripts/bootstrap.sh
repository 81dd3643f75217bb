#!/usr/bin/env bash
# Make a virtual environment with a Python >= 3.12 and install bayesblup into it (editable).
#   usage: scripts/bootstrap.sh [VENV_DIR] [EXTRAS]        e.g. scripts/bootstrap.sh .venv test
# The Python is taken from $PYTHON if set, else the first of python3.12, python3.13, python3.14,
# a pyenv-installed 3.12+ (pyenv's shims refuse versions that are not selected, so each
# candidate is run, not just found), or python3 / python if they are new enough.
set -euo pipefail
venv=${1:-.venv}
extras=${2:-test}
cd "$(dirname "$0")/.."

new_enough() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
    local candidate minor version root
    if [ -n "${PYTHON:-}" ]; then
        new_enough "$PYTHON" && { echo "$PYTHON"; return 0; }
        echo "bootstrap: \$PYTHON=$PYTHON is not a Python >= 3.12" >&2
        return 1
    fi
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    for minor in 12 13 14; do
        candidate=$(command -v "python3.$minor" 2>/dev/null || true)
        if [ -n "$candidate" ] && new_enough "$candidate"; then echo "$candidate"; return 0; fi
        for version in $(ls -1 "$root/versions" 2>/dev/null | grep -E "^3\.$minor\.[0-9]+$" | sort -rV); do
            candidate="$root/versions/$version/bin/python3"
            if new_enough "$candidate"; then echo "$candidate"; return 0; fi
        done
    done
    for candidate in python3 python; do
        candidate=$(command -v "$candidate" 2>/dev/null || true)
        if [ -n "$candidate" ] && new_enough "$candidate"; then echo "$candidate"; return 0; fi
    done
    return 1
}

if [ -x "$venv/bin/python" ] && new_enough "$venv/bin/python"; then
    echo "bootstrap: using the existing $venv ($("$venv/bin/python" --version))"
else
    if ! python=$(find_python); then
        echo "bootstrap: no Python >= 3.12 found. Install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12." >&2
        exit 1
    fi
    echo "bootstrap: making $venv with $python ($("$python" --version))"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --progress-bar off --upgrade pip
echo "bootstrap: installing bayesblup[$extras] and its dependencies (pymc, pytensor, arviz, numpy, scipy, pandas, bed-reader)"
"$venv/bin/python" -m pip install --quiet --progress-bar off -e ".[$extras]"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
print("bootstrap: " + ", ".join(f"{p} {md.version(p)}" for p in ["bayesblup", "pymc", "pytensor", "arviz", "numpy", "scipy", "pandas", "bed-reader"]))
PY
