# stratlog: `make run` starts the dashboard on demo data, `make test` runs every test.
# Each target sets up what it needs on its own and is fast when that is already done.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB := stratlog.db
DEMO_ROWS ?= 200000
PORT ?= 8501

.PHONY: run serve test lint bench load demo venv browser clean help

help:
	@echo "make run    - set up, create demo data if missing, start the dashboard on :$(PORT)"
	@echo "make serve  - WORKERS dashboard processes (default 2) behind nginx on :$(SERVE_PORT)"
	@echo "make test   - set up (venv, PostgreSQL, Chromium) and run lint + every test"
	@echo "make lint   - ruff check, ruff format --check, mypy, import contracts (lint-imports)"
	@echo "make bench  - benchmarks (heavy; not part of make test)"
	@echo "make load   - 20 concurrent dashboard sessions for 2 minutes (not part of make test)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(DEMO_DB): | $(STAMP)
	rm -f $(DEMO_DB).tmp $(DEMO_DB).tmp-wal $(DEMO_DB).tmp-shm
	$(BIN)/stratlog --database sqlite+aiosqlite:///$(DEMO_DB).tmp demo --rows $(DEMO_ROWS)
	$(BIN)/stratlog --database sqlite+aiosqlite:///$(DEMO_DB).tmp rollup
	mv $(DEMO_DB).tmp $(DEMO_DB)

demo: $(DEMO_DB)

run: $(STAMP) $(DEMO_DB)
	@# The dashboard only reads; bring the demo file's schema up to date for it.
	@if [ -z "$$STRATLOG_DATABASE_URL" ]; then \
		$(BIN)/stratlog --database sqlite+aiosqlite:///$(DEMO_DB) db upgrade; fi
	STRATLOG_DATABASE_URL=$${STRATLOG_DATABASE_URL:-sqlite+aiosqlite:///$(DEMO_DB)} \
		$(BIN)/streamlit run dashboard.py --server.port $(PORT)

WORKERS ?= 2
SERVE_PORT ?= 8080
CONNECTION_BUDGET ?= 20

# Production layout (docs/operating.md): nginx in front of WORKERS processes, sticky sessions.
serve: $(STAMP) $(DEMO_DB)
	bash scripts/ensure-system-deps.sh nginx
	@if [ -z "$$STRATLOG_DATABASE_URL" ]; then \
		$(BIN)/stratlog --database sqlite+aiosqlite:///$(DEMO_DB) db upgrade; fi
	STRATLOG_DATABASE_URL=$${STRATLOG_DATABASE_URL:-sqlite+aiosqlite:///$(CURDIR)/$(DEMO_DB)} \
		$(BIN)/stratlog serve --workers $(WORKERS) --port $(SERVE_PORT) \
		--connection-budget $(CONNECTION_BUDGET)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

browser:
	bash scripts/ensure-system-deps.sh

test: $(STAMP) browser lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) browser
	$(BIN)/python -m bench

load: $(BENCH_STAMP) browser
	$(BIN)/python -m bench.load_dashboard

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts
