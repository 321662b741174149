# genworld: set-up, demo, tests and benchmarks. Every target works from a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genworld-installed
DEMO_DIR ?= demo_out
export MUJOCO_GL ?= egl

.PHONY: setup demo test test-all bench lint clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch 2.13.0 (CPU) comes first and alone: an unpinned torch in a fresh environment can pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "torch==2.13.0"
	$(BIN)/pip install -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install genworld with its dev extras (idempotent)

demo: setup  ## collect bounce data, train the tiny model, evaluate, dream (about 10 minutes on 2 cores)
	$(BIN)/genworld demo --out $(DEMO_DIR)

test: setup  ## the test suite (under 10 minutes on 2 cores)
	$(BIN)/python -m pytest -q

test-all: setup  ## every test, the slow ones too
	$(BIN)/python -m pytest -q -m ""

bench: setup  ## benchmarks: medians written to benchmarks/results/
	$(BIN)/python benchmarks/run.py

lint: setup  ## ruff
	$(BIN)/ruff check src tests benchmarks

clean:  ## remove the environment and outputs
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
