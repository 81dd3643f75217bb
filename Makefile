# Set-up is automatic: every target below first makes .venv (Python >= 3.12) and installs bayesblup.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bayesblup-installed

.PHONY: demo test test-slow bench lint format clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV) test
	touch $(STAMP)

## demo: the main job on the built-in wheat data
demo: $(STAMP)
	$(VENV)/bin/bayesblup demo

## test: lint, then the default test suite (exact, structural and quick statistical tests)
test: $(STAMP)
	$(VENV)/bin/ruff check bayesblup tests benchmarks
	$(PY) -m pytest

## test-slow: the slower statistical checks (run by CI as a separate step)
test-slow: $(STAMP)
	$(PY) -m pytest -m slow tests

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
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist
