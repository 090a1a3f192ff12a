# make run   : install into $(VENV) if needed, then train the quickstart sweep into ./mlflow.db
# make test  : install (with test tools) if needed, then run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
# Reinstalled only when pyproject.toml or the checkout's path changes (the editable install
# points at the checkout; dependencies already present are not downloaded again).
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo $(CURDIR)) | sha256sum | cut -c1-16)
PYTEST_ARGS ?=

.PHONY: install run test lint ui benchmarks experiments clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/bnplace run configs/quickstart.yaml

# Tests run in worker processes (pytest-xdist), one more than the cores (tests/conftest.py), a
# test file per worker, the slow files first (tests/conftest.py orders them; xdist would reorder
# them by test count): the end-to-end files dominate, and wait on subprocesses part of the time.
# The 25 slowest tests, every failure and error by name, and the reason of every skip are
# printed (CI's log shows them).
test: install
	$(VENV)/bin/python -m pytest -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder -rfEs --durations=25 $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check bnplace tests benchmarks
	$(VENV)/bin/ruff format --check bnplace tests benchmarks
	$(VENV)/bin/mypy bnplace
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python scripts/check_house.py

ui: install
	$(VENV)/bin/bnplace ui

benchmarks: install
	$(VENV)/bin/python benchmarks/trial_overhead.py
	$(VENV)/bin/python benchmarks/parallel.py

# The studies in experiments/ use real series that ship in packages (pmdarima).
experiments: install
	$(VENV)/bin/python -m pip install --quiet -e ".[packaged]"
	STUDY=$(STUDY) experiments/run.sh

clean:
	rm -rf .pytest_cache .ruff_cache build *.egg-info
