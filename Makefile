# univr — the commands a user types. `make demo` and `make test` set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.univr-installed
LOCK := requirements.lock
DEMO_OUT ?= demo-out
DEMO_ARGS ?=
PYTEST_ARGS ?=
# pytest processes of `make test` (pytest-xdist; 0: one process, no xdist)
TEST_WORKERS ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test bench reliability up down lint tools clean lock stack

## setup: create the virtual environment and install univr with its test tools from the lock file
## (the exact versions CI tested; idempotent)
setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel
	$(BIN)/pip install -q -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e '.[dev]'
	@touch $(STAMP)

## lock: refresh requirements.lock from pyproject.toml with pip-tools (keeps the pins that still
## fit; `make lock UPGRADE=1` moves every pin to the newest release that fits)
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q pip-tools
	$(BIN)/pip-compile -q --extra dev --strip-extras --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade) \
	  -o $(LOCK) pyproject.toml

## tools: Debian's chromium (browser tests), docker-compose (validates compose.yaml, no engine needed)
## and ffmpeg (CI proves a machine's own ffmpeg on PATH changes nothing: univr runs the pinned one)
APT_TOOLS := chromium:chromium docker-compose:docker-compose ffmpeg:ffmpeg
tools:
	@for pair in $(APT_TOOLS); do bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$bin >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else echo "missing $$pkg: install it for its tests"; continue; fi; \
	  $$SUDO apt-get install -y -q $$pkg >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$pkg >/dev/null; } || echo "could not install $$pkg"; \
	done

## demo: the whole loop on the embedded default (no services, no GPU, no downloads)
demo: setup
	$(BIN)/univr demo --out $(DEMO_OUT) $(DEMO_ARGS)

## test: the test suite (CI=true makes tests that need Postgres/RabbitMQ/Redis fail instead of skip)
test: setup tools
	$(BIN)/pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup) $(PYTEST_ARGS)

## bench: every benchmark; each prints ratios against a baseline measured in the same run
bench: setup
	@set -e; for f in bench/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f; done

## reliability: the fault-injection suite against the real services in its full form (10 worker
## kills in a ~50-video job, 3 broker / database / object-store outages, a minute of search load),
## with its figures table; `make test` runs the same scenarios in a short form
reliability: setup
	UNIVR_TEST_RELIABILITY=full $(BIN)/pytest -q -s tests/reliability --timeout 1800 $(PYTEST_ARGS)

## up / down: the full stack with Docker Compose (GPU hosts: add --profile gpu)
up:
	docker compose up -d
down:
	docker compose down

## lint: ruff's checks and its formatting (whole tree) and mypy on shared/ and services/, all clean
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(DEMO_OUT) .univr .pytest_cache

## stack: every compose.yaml service as a host process (no Docker), against the PostgreSQL,
## RabbitMQ and Redis on localhost, moto for MinIO and the Qdrant REST stand-in; Ctrl-C stops all.
## Logs and PIDs under .stack/. STACK_ARGS: e.g. --set RABBITMQ_PASSWORD=x --port rabbitmq=5673
STACK_ARGS ?=
stack: setup
	$(BIN)/python -m shared.stack $(STACK_ARGS)
