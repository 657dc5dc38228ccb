# tradingd — every target sets itself up: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# The optional peers of `make bench-peers` (extra `peers`): their own lock, so the main one and `make test` never see them.
PEERS_LOCK  := requirements-peers.lock
PEERS_STAMP := $(VENV)/.peers-installed
# The optional Ray of `tradingd optimize --ray` and `make test-cluster` (extra `cluster`): its own lock too.
CLUSTER_LOCK  := requirements-cluster.lock
CLUSTER_STAMP := $(VENV)/.cluster-installed
# The lock pins pip's inputs, not pip itself: its "new release available" notice is noise here.
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help install lock run test lint typecheck pytest bench bench-peers lock-peers test-cluster lock-cluster soak scan status \
	report optimize clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

# Exactly the tested versions (hashes checked), build backend included; then the project itself, editable, with no
# dependency resolution and no build isolation, so nothing unpinned is downloaded.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with dev tools, from requirements.lock

# pip-tools lives in its own venv so the project venv holds only what the lock lists.
lock: ## Regenerate requirements.lock from pyproject.toml (newest versions allowed; then make test)
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet 'pip-tools>=7.4'
	$(VENV)-lock/bin/pip-compile --quiet --upgrade --extra dev --all-build-deps --allow-unsafe --generate-hashes \
		--strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file $(LOCK) pyproject.toml

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

$(PEERS_STAMP): $(STAMP) $(PEERS_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(PEERS_LOCK)
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP) ## Same z-score strategy in tradingd, backtesting.py and backtrader (optional extra; minutes)
	$(BIN)/python -m benchmarks bench_peers

# requirements-peers.in is constrained by requirements.lock: the peers never move a version the project pins.
lock-peers: ## Regenerate requirements-peers.lock from requirements-peers.in (after make lock)
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet 'pip-tools>=7.4'
	$(VENV)-lock/bin/pip-compile --quiet --upgrade --allow-unsafe --generate-hashes --strip-extras \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file $(PEERS_LOCK) requirements-peers.in

$(CLUSTER_STAMP): $(STAMP) $(CLUSTER_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(CLUSTER_LOCK)
	touch $(CLUSTER_STAMP)

test-cluster: $(CLUSTER_STAMP) ## The optimisation grid on a local Ray instance (optional extra `cluster`; large install)
	$(BIN)/pytest -q -m cluster -p no:cacheprovider

# requirements-cluster.in is constrained by requirements.lock: Ray never moves a version the project pins.
lock-cluster: ## Regenerate requirements-cluster.lock from requirements-cluster.in (after make lock)
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet 'pip-tools>=7.4'
	$(VENV)-lock/bin/pip-compile --quiet --upgrade --allow-unsafe --generate-hashes --strip-extras \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file $(CLUSTER_LOCK) requirements-cluster.in

soak: $(STAMP) ## Long soak tests (memory flat over a long run)
	$(BIN)/pytest -q -m soak -p no:cacheprovider

scan: $(STAMP) ## Run the daily scanner once and write candidates.json
	$(BIN)/tradingd scan

status: $(STAMP) ## Show the daemon's persisted state
	$(BIN)/tradingd status

optimize: $(STAMP) ## Walk-forward parameter search on the bundled bars (tradingd optimize; minutes)
	$(BIN)/tradingd optimize

report: $(STAMP) ## The last run's report: statistics against a benchmark, round trips (tables)
	$(BIN)/tradingd report

clean: ## Remove the venv and caches
	rm -rf $(VENV) $(VENV)-lock .mypy_cache .ruff_cache .pytest_cache
