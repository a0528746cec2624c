# The two commands: `make run` and `make test`. Everything installs from this repo's files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
# PostgreSQL for the second test leg (CI has it on 127.0.0.1:5432 with trust auth).
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/governance
# The Redis server for the integration tests; each run claims a database of its own on it
# (tests/redis_db.py), so two runs at once never share one. A database number here is used as is.
export TEST_REDIS_URL ?= redis://127.0.0.1:6379

.PHONY: install run test test-sqlite test-postgres lint format bench chromium clean

# The Python client (clients/python) is its own package, installed editable next to the app
# (with its OpenFeature extra); tests/clients tests it against a live server.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q -e 'clients/python[openfeature]'
	touch $(STAMP)

install: $(STAMP)

# Playwright cannot download its browser here; tests drive Debian's chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
	  || echo "Could not install chromium: browser tests will skip (and fail under CI=true)."; }

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py keys generate --if-missing
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Open http://localhost:$(PORT)/  (web, Celery worker and beat start below; Ctrl-C stops all)"
	@echo "  (localhost rather than 127.0.0.1: passkeys need a domain name as their relying party)"
	@echo ""
	PORT=$(PORT) $(BIN)/honcho -f Procfile.dev start

# The two legs run at once (CI has 2 cores and the PostgreSQL leg is the longer one, so the
# wall time is about that leg's): each leg's output is held back and printed whole when it ends
# (--output-sync), both run to their end even when one fails (-k), and a failed leg fails
# `make test`. Each writes its own coverage data file; they are combined for the report.
# PYTEST_ARGS narrows both legs (`make test PYTEST_ARGS="tests/accounts -x"`).
test: install chromium
	@rm -f .coverage .coverage.sqlite .coverage.sqlite.* .coverage.pg .coverage.pg.*
	@# One leg after the other (-k: the second runs even when the first fails), their output live.
	@# Run at once (-j2) on two cores, each leg took about twice as long: nothing was gained.
	@$(MAKE) --no-print-directory -k test-sqlite test-postgres
	$(BIN)/coverage combine .coverage.sqlite .coverage.pg
	$(BIN)/coverage report --fail-under=85

# Integration tests (Chromium, a real Celery worker) run on PostgreSQL, as production does:
# "unit tests may use SQLite and eager tasks; integration tests may not". They are not run
# a second time on SQLite.
INTEGRATION := browser or celery_worker

# Extra pytest arguments for both legs (paths, -k, -x...).
PYTEST_ARGS ?=

# $(call own_var_dir,leg): a shell prefix giving the rest of the recipe line a folder of its own
# as GOVERNANCE_VAR_DIR (the settings keep the SQLite test database, the content store, the
# filesystem broker, backups and mail under it), removed when the line ends. The two legs, run
# at once, then never share a file; the developer's var/ is left alone.
own_var_dir = mkdir -p var && GOVERNANCE_VAR_DIR=$$(mktemp -d "$(CURDIR)/var/test-$(1).XXXXXX") \
	&& export GOVERNANCE_VAR_DIR && trap 'rm -rf "$$GOVERNANCE_VAR_DIR"' EXIT &&

# Leg 1: the unit tests on the embedded SQLite default (PostgreSQL-only and integration
# tests deselected: leg 2 runs them).
test-sqlite: install
	@echo "== SQLite leg"
	@rm -f .coverage.sqlite .coverage.sqlite.*
	$(call own_var_dir,sqlite) COVERAGE_FILE=.coverage.sqlite \
	  $(BIN)/pytest --cov --cov-report= -m "not postgres and not ($(INTEGRATION))" $(PYTEST_ARGS)

# Leg 2: on PostgreSQL, what needs it (--pg-leg, tests/conftest.py): the tests marked postgres
# (locking, races, triggers), the integration tests, and the tests of the code that takes a
# PostgreSQL path of its own (the event log, recovery, rollouts); the other unit tests ran in
# leg 1 and are not run twice. Without a server, the integration tests run on
# SQLite instead (so they still run somewhere) and the PostgreSQL-only tests skip with a
# reason (a skip fails under CI=true).
test-postgres: install
	@rm -f .coverage.pg .coverage.pg.*
	@$(call own_var_dir,postgres) export COVERAGE_FILE=.coverage.pg; \
	if $(BIN)/python -m tests.pg_ready "$(PG_TEST_URL)"; then \
	  echo "== PostgreSQL leg: $(PG_TEST_URL)"; \
	  DATABASE_URL="$(PG_TEST_URL)" $(BIN)/pytest --cov --cov-report= --ignore=tests/clients --pg-leg $(PYTEST_ARGS); \
	else \
	  echo "== PostgreSQL not reachable at $(PG_TEST_URL): integration tests run on SQLite, PostgreSQL-only tests will skip"; \
	  $(BIN)/pytest --cov --cov-report= -m "postgres or $(INTEGRATION)" $(PYTEST_ARGS); \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/events.py verify --events 1000000
	$(BIN)/python bench/registry_bench.py
	$(BIN)/python bench/governance_bench.py
	$(BIN)/python bench/rollouts_bench.py http
	$(BIN)/python bench/rollouts_bench.py history
	$(BIN)/python bench/telemetry_bench.py --rounds 10
	$(BIN)/python bench/client_bench.py
	$(BIN)/python bench/backup_bench.py
	@if $(BIN)/python -m tests.pg_ready "$(PG_TEST_URL)"; then \
	  $(BIN)/python bench/events.py append --database-url "$(PG_TEST_URL)_bench"; \
	  $(BIN)/python bench/events.py verify --events 100000 --database-url "$(PG_TEST_URL)_bench_verify"; \
	  $(BIN)/python bench/registry_bench.py --database-url "$(PG_TEST_URL)_bench_registry"; \
	  $(BIN)/python bench/governance_bench.py --database-url "$(PG_TEST_URL)_bench_governance"; \
	  $(BIN)/python bench/rollouts_bench.py --database-url "$(PG_TEST_URL)_bench_rollouts" history; \
	  $(BIN)/python bench/telemetry_bench.py --database-url "$(PG_TEST_URL)_bench_telemetry"; \
	  $(BIN)/python bench/backup_bench.py --database-url "$(PG_TEST_URL)_bench_backup"; \
	else echo "PostgreSQL not reachable: append benchmark skipped"; fi

clean:
	rm -rf $(VENV) var .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache
