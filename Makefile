# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
PG_TEST_DB ?= webapp_test
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/$(PG_TEST_DB)
UV_VERSION := 0.13.8

.PHONY: run test test-sqlite test-postgres lint install static migrate bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Pinned, hash-checked versions come from requirements.lock; the project itself is then installed in place
# (editable, without resolving again) for the `webapp` console script.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The only way the lock files are made (tests/test_lock.py checks their headers against these lines).
# requirements.lock: everything `make test` needs; requirements-prod.lock: the app alone, at the same versions
# (the Docker image). Existing pins are kept; to upgrade one package, delete its lines from requirements.lock first.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 --generate-hashes -o requirements.lock --quiet
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -c requirements.lock -o requirements-prod.lock --quiet

install: $(VENV)/.installed

static:
	./scripts/fetch-htmx.sh

migrate: install
	$(BIN)/python -m webapp.migrate

# uvloop and httptools (uvicorn[standard]) named outright, so a missing one fails here rather than falling back.
# --no-proxy-headers: uvicorn would trust 127.0.0.1's X-Forwarded-For; the app trusts only FORWARDED_ALLOW_IPS.
# HOST and PORT reach the app too: without APP_BASE_URL, links in mail point at http://localhost:PORT.
run: install static migrate
	@echo "Open http://localhost:$(PORT) (passkeys need localhost: browsers refuse WebAuthn on an IP address)"
	HOST=$(HOST) PORT=$(PORT) $(BIN)/uvicorn webapp.asgi:app --host $(HOST) --port $(PORT) \
		--loop uvloop --http httptools --no-proxy-headers --no-server-header

test: install static lint test-sqlite test-postgres

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The multi-instance suite (tests/multi) needs PostgreSQL: this pass skips it with a reason, whatever REQUIRE_POSTGRES
# says; the PostgreSQL pass below runs it, and fails when REQUIRE_POSTGRES=1 and there is no server.
test-sqlite: install static
	REQUIRE_POSTGRES=0 $(BIN)/pytest -q

# PostgreSQL runs the same suite when it is reachable; REQUIRE_POSTGRES=1 (set by CI) turns its absence into a failure.
test-postgres: install static
	@if $(BIN)/python scripts/ensure-pg-db.py "$(PG_ADMIN_URL)" "$(PG_TEST_DB)"; then \
		TEST_DATABASE_URL="$(PG_TEST_URL)" $(BIN)/pytest -q -p no:cacheprovider; \
	elif [ "$$REQUIRE_POSTGRES" = "1" ]; then \
		echo "PostgreSQL is required but not reachable at $(PG_ADMIN_URL)" >&2; exit 1; \
	else \
		echo "SKIPPED: the PostgreSQL run (no server at $(PG_ADMIN_URL)); the SQLite run above still counts."; \
	fi

# Extra tools for the bench only (chart, profiler) live in bench/requirements.txt; ARGS=--postgres etc. pass through.
bench: install static
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) static/vendor .pytest_cache .mypy_cache .ruff_cache webapp.egg-info
