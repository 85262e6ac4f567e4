# meas_contextnet: one-command setup, tests and demo.
#
#   make test   create .venv (Python 3.12), install the package with pinned dependencies, lint, run
#               every test (the end-to-end ones marked "slow" included)
#   make demo   create .venv, simulate a small Butler repo, classify it with `pipetask run` and the
#               shipped model, evaluate against truth (prints a table, writes a PNG)

SHELL := /bin/bash

# Python 3.12: pyenv's build when present, otherwise python3.12 on PATH.
PYTHON ?= $(firstword $(wildcard /root/.pyenv/versions/3.12.*/bin/python3) $(shell command -v python3.12 2>/dev/null))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
DEMO_DIR ?= demo_output

.PHONY: venv test test-fast lint demo clean lock docs

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@if [ -z "$(PYTHON)" ]; then echo "error: Python 3.12 not found (install python3.12 or set PYTHON=...)" >&2; exit 1; fi
	@echo "Creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -c requirements.lock -e '.[all,dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: venv lint docs
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

demo: venv
	$(BIN)/contextnet demo --output $(DEMO_DIR)

# Regenerate requirements.lock from the current venv (run after changing dependencies).
lock: venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache

# The paper's Table 2 on our simulator: simulate a test repo the shipped model never saw, classify
# it with `pipetask run`, evaluate against truth (tables and figures in $(TABLE2_DIR)/eval).
TABLE2_DIR ?= table2_output
TABLE2_VISITS ?= 20
TABLE2_SIZE ?= 4096
TABLE2_SEED ?= 777
TABLE2_JOBS ?= 2
# pipetask -j: one process runs every quantum; each further job starts a process per quantum that
# imports the task and its libraries again (about 10 s on a 2-core VM, more than a quantum's work).
TABLE2_PIPETASK_JOBS ?= 1

.PHONY: table2
table2: venv
	rm -rf $(TABLE2_DIR)
	$(BIN)/contextnet simulate --repo $(TABLE2_DIR)/repo --collection sim --visits $(TABLE2_VISITS) \
	    --first-visit 1000 --size $(TABLE2_SIZE) --seed $(TABLE2_SEED) --processes $(TABLE2_JOBS)
	$(BIN)/pipetask run -b $(TABLE2_DIR)/repo -i sim -o contextnet -p pipelines/ContextNet.yaml \
	    -j $(TABLE2_PIPETASK_JOBS) --register-dataset-types
	$(BIN)/contextnet evaluate --repo $(TABLE2_DIR)/repo --collections contextnet sim \
	    --output $(TABLE2_DIR)/eval

# The Sphinx documentation (API reference from the docstrings, task configuration fields, the
# results pages), warnings as errors; HTML in doc/_build/html.
.PHONY: docs
docs: venv
	rm -rf doc/_build doc/py-api
	$(BIN)/sphinx-build -W --keep-going -b html -j 1 doc doc/_build/html
