# Set-up is automatic: every target below first makes .venv (Python >= 3.12) and installs bayesblup.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bayesblup-installed
DOCS_STAMP := $(VENV)/.bayesblup-docs-installed
JAX_STAMP := $(VENV)/.bayesblup-jax-installed

.PHONY: demo test test-slow test-jax notebooks docs bench lint format clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV) test
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	bash scripts/bootstrap.sh $(VENV) "test,docs"
	touch $(DOCS_STAMP)

$(JAX_STAMP): $(STAMP)
	bash scripts/bootstrap.sh $(VENV) "test,jax"
	touch $(JAX_STAMP)

## demo: the main job on the built-in wheat data
demo: $(STAMP)
	$(VENV)/bin/bayesblup demo

## test: lint, the layer contract (pyproject.toml [tool.importlinter]), then the default test suite
## (the exact, structural and quick recovery tiers; tests/README.md), on two worker processes (pytest-xdist),
## each with one BLAS thread: most tests are single-threaded Python, so two workers use both cores of a small
## machine, and two BLAS threads per worker would only contend (4.4 min against 5.3 with them, 6.6 serially)
test: $(STAMP)
	$(VENV)/bin/ruff check bayesblup tests benchmarks
	$(VENV)/bin/lint-imports
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n 2

## test-slow: the slower statistical checks (run by CI as a separate step)
test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not jax" tests

## test-jax: NUTS on JAX (numpyro, blackjax): installs the jax extra, then the tests marked jax (CI's own step)
test-jax: $(JAX_STAMP)
	$(PY) -m pytest -m jax tests

## notebooks: execute the teaching notebooks into build/notebooks and print each one's wall time
notebooks: $(DOCS_STAMP)
	$(PY) scripts/run_notebooks.py

## docs: execute the notebooks, then build the Sphinx site into build/docs (warnings are errors)
docs: notebooks
	$(PY) -m sphinx -W --keep-going -b html docs build/docs
	$(PY) scripts/check_offline_docs.py build/docs

## bench: the benchmark scripts (prints tables; see benchmarks/README.md)
bench: $(STAMP)
	$(PY) benchmarks/grm.py
	$(PY) benchmarks/fit.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bayesblup tests benchmarks
	$(VENV)/bin/ruff format --check bayesblup tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format bayesblup tests benchmarks
	$(VENV)/bin/ruff check --fix bayesblup tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .import_linter_cache build dist
