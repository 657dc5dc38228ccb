# tradingd — every target sets itself up: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck pytest bench soak scan status clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with dev tools

run: $(STAMP) ## Run the daemon (sim mode by default, scanner on; see .env.example)
	$(BIN)/tradingd run

test: lint typecheck pytest ## Lint, type-check and run the test suite

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy (strict)
	$(BIN)/mypy

pytest: $(STAMP) ## pytest (exit 5 = no tests collected fails the target)
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP) ## Benchmarks: bus, scan, replay, API calls (prints medians and ratios)
	$(BIN)/python -m benchmarks

soak: $(STAMP) ## Long soak tests (memory flat over a long run)
	$(BIN)/pytest -q -m soak -p no:cacheprovider

scan: $(STAMP) ## Run the daily scanner once and write candidates.json
	$(BIN)/tradingd scan

status: $(STAMP) ## Show the daemon's persisted state
	$(BIN)/tradingd status

clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
