# Two entry points (README quickstart):
#   make repro   set up .venv if needed, then run the whole DVC pipeline (dvc repro)
#   make test    set up .venv if needed, then run the test suite
# Both are idempotent: the environment is reinstalled only when pyproject.toml changes.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# offline and project-local: no telemetry, no hub downloads, caches inside the repository
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export YOLO_OFFLINE := 1
# ultralytics reads a local .pt model with torch.load(weights_only=True), never a full unpickle
export ULTRALYTICS_SAFE_LOAD := 1
export YOLO_CONFIG_DIR := $(CURDIR)/.cache/ultralytics
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib

.PHONY: repro test setup dvc-local lint clean-results

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP) dvc-local

# DVC's site cache (state and index databases) inside the repository. An absolute path, in the
# untracked .dvc/config.local: `dvc exp run --queue/--temp` copies that file into its temporary
# workspaces, where a relative path would point nowhere.
dvc-local: $(STAMP)
	@dvc config --local core.site_cache_dir "$(CURDIR)/.dvc/site_cache"

repro: $(STAMP) dvc-local
	dvc repro $(ARGS)
	@echo; python scripts/print_summary.py
	@echo; echo "Report: results/report/report.html (and report.md); every number: dvc metrics show"

test: $(STAMP) dvc-local
	bash scripts/run_tests.sh $(ARGS)

lint: $(STAMP)
	ruff check . && ruff format --check .

clean-results:
	rm -rf data models results .cache/train
