# The two commands a new user needs: `make demo` (main job) and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the ocpp-rpc conformance charger (tests/test_conformance_ocpp_rpc.py): npm ci once per lock file
NODE_DIR   := tests/conformance
NODE_STAMP := $(NODE_DIR)/node_modules/.installed

.PHONY: demo test lint format setup clean ui browser conformance timescaledb

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's chromium: prints the compliance report to PDF and opens the HTML in the tests
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (headless: PDF printing and HTML tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	    || { $$SUDO apt-get update -q >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; }

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found; install Node.js >= 18 (Debian: nodejs npm)" >&2; exit 1; }
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

conformance: $(NODE_STAMP)

# TimescaleDB 2.28.3 built from the vendored source into the local PostgreSQL 15 server
# (127.0.0.1:5432), preloaded, the cluster restarted: idempotent, 2-3 min the first time.
# TIMESCALEDB_INSTALL: the install script (default: the shared tools beside this checkout).
TIMESCALEDB_INSTALL ?= $(firstword $(wildcard ../shared/tools/install-timescaledb.sh /work/shared/tools/install-timescaledb.sh))
timescaledb:
	@test -n "$(TIMESCALEDB_INSTALL)" && test -f "$(TIMESCALEDB_INSTALL)" || { echo "error: install-timescaledb.sh not found (../shared/tools/); set TIMESCALEDB_INSTALL=/path/to/it" >&2; exit 1; }
	bash "$(TIMESCALEDB_INSTALL)"

setup: $(STAMP) browser conformance

demo: $(STAMP) browser
	$(BIN)/chargeops demo --strict

test: $(STAMP) browser conformance
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/dg check defs --log-level warning

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .data $(NODE_DIR)/node_modules

# the Dagster UI (dg dev) on the demo's instance, .data/dagster (settings: deploy/dagster.yaml),
# with the embedded PostgreSQL started once for all its runs when DATABASE_URL is unset
ui: $(STAMP)
	$(BIN)/chargeops ui
