# Two commands on a fresh machine: `make figures` and `make test`. Both build .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Published SEAA 2023 data: a download made by `make data SEAA2023_URL=...` if present, else the
# shared checkout beside the project. Override with SEAA2023_DIR=/path/to/seaa2023.
SEAA2023_DIR ?= $(if $(wildcard data_inputs/downloads/seaa2023/raw),$(abspath data_inputs/downloads/seaa2023),$(abspath ../shared/data/seaa2023))
export SEAA2023_DIR
SEAA2023_URL ?=
SEAA2023_SHA256 ?=
# Datasets processed by `make figures` (see helpers/datasets.py).
DATASETS ?= seaa2023 collected gpu-h100

.PHONY: install figures test lint data bench clean-outputs

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

figures: $(STAMP)
	$(BIN)/python -m helpers.runner $(DATASETS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check helpers tests benchmarks notebooks

# Obtain the published data: verify a local copy (SEAA2023_DIR) or download with pooch
# (SEAA2023_URL) into data_inputs/downloads/, verifying every file against MANIFEST.sha256.
data: $(STAMP)
ifneq ($(strip $(SEAA2023_URL)),)
	$(BIN)/python -m helpers.core.fetch --url "$(SEAA2023_URL)" --dest data_inputs/downloads $(if $(strip $(SEAA2023_SHA256)),--known-hash "$(SEAA2023_SHA256)")
else
	$(BIN)/python -m helpers.core.fetch --local "$(SEAA2023_DIR)"
endif

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_merge_energy.py

clean-outputs:
	rm -rf data_outputs/*/ figures/*/
