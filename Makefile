# Two commands on a fresh machine: `make figures` and `make test`. Both build .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Published SEAA 2023 data (helpers/core/datasets.py): SEAA2023_DIR=/path/to/seaa2023 if given,
# else data_inputs/downloads/seaa2023, else ../shared/data/seaa2023; with none of them, `make
# figures` and `make data` download the published archive (helpers/core/fetch.py), or the one at
# SEAA2023_URL, checking it against SEAA2023_SHA256 (sha256:<hex>) when given.
export SEAA2023_DIR SEAA2023_URL SEAA2023_SHA256
# Datasets processed by `make figures`: every registered one whose inputs are there (see
# helpers/core/datasets.py; the published SEAA 2023 data is downloaded when absent, ee-training is
# read in place from EE_TRAINING_DIR or ../shared/data/ee-training and skipped with a note when
# absent), or those named, e.g. DATASETS="gpu-h100 my-runs". VERBOSE=1 also shows what the
# notebooks print.
DATASETS ?=

.PHONY: install figures test test-fast lint data bench clean-outputs

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

figures: $(STAMP)
	$(BIN)/python -m helpers.runner $(if $(VERBOSE),--verbose )$(DATASETS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 3 --dist worksteal

# Both run the tests on three worker processes (pytest-xdist): on two cores the third overlaps
# the tests that wait on timers and child processes.
# The tests not marked slow (no notebook runs, no real training).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 3 --dist worksteal -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check helpers tests benchmarks notebooks

# Obtain the published data: verify the local copy (see above) against
# data_inputs/seaa2023.MANIFEST.sha256, or, with none or with SEAA2023_URL set, download it with
# pooch into data_inputs/downloads/seaa2023 and verify every file.
data: $(STAMP)
	$(BIN)/python -m helpers.core.fetch

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_merge_energy.py

clean-outputs:
	rm -rf data_outputs/*/ figures/*/
