# The two commands a newcomer needs: `make demo` and `make test`. Both install
# what they need: Debian packages (as root), a virtualenv, the collector build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help setup system-deps venv collector lint format test test-unit test-integration \
        test-resilience test-transparency test-matrix test-package demo dashboards bench bench-inprocess \
        bench-server bench-profile clean

help:
	@echo "make demo   - bring up a demo fleet under load and print its report"
	@echo "make test   - install everything needed, lint, type-check and run all tests"
	@echo "make test-transparency - Django's own tests with and without Fleetscope, compared"
	@echo "make test-matrix - unit tests on every supported Python x Django pair, integration"
	@echo "              on the oldest and newest (nox; CI runs it after make test)"
	@echo "make test-package - build the sdist and wheel, install it fresh, check what users get"
	@echo "make bench  - overhead benchmarks (in process, then under a real server) against bare"
	@echo "              Django and the peer libraries; make bench-server runs the second alone"
	@echo "make test-resilience - real faults against the real pipeline (docs/reliability.md)"

system-deps:
	@scripts/install-system-deps.sh

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed

collector: venv
	$(BIN)/fleetscope collector build

setup: system-deps venv collector

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-transparency

# Django's own test suites without and with Fleetscope, compared per test; also checks that
# the instrumentation was active and that the process exits promptly (docs/transparency.md).
test-transparency: system-deps venv
	$(BIN)/python -m tests.transparency

# Every supported Python x Django pair (noxfile.py), MATRIX_JOBS sessions at once; the
# integration sessions need the collector and the services, hence setup.
MATRIX_JOBS ?= 3
test-matrix: setup
	$(BIN)/python scripts/test_matrix.py --jobs $(MATRIX_JOBS) $(MATRIX_ARGS)

# The built wheel in fresh virtualenvs: top-level names, dependencies, a minimal project, the
# CLI with [cli] (scripts/check_package.py).
test-package: venv
	$(BIN)/python scripts/check_package.py

test-unit: venv
	$(BIN)/python -m pytest --ignore=tests/integration --ignore=tests/resilience $(PYTEST_ARGS)

test-integration: setup
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# Collector killed, endpoints that hang or refuse, Prometheus down, recycled workers: part of
# `make test` too (tests/resilience is under tests/); this runs it alone, with its figures.
test-resilience: setup
	$(BIN)/python -m pytest tests/resilience $(PYTEST_ARGS)

demo: setup
	$(BIN)/fleetscope demo up --duration 120

dashboards: venv
	$(BIN)/fleetscope dashboards build

bench: bench-inprocess bench-server

bench-inprocess: venv
	$(BIN)/python -m benchmarks.overhead

# Real gunicorn/uvicorn servers driven by wrk, exporting to the real collector; writes its
# figures into docs/performance.md. BENCH_ARGS=--quick for a 3-minute look.
BENCH_ARGS ?=
bench-server: setup
	$(BIN)/python -m benchmarks.server_overhead $(BENCH_ARGS)

bench-profile: setup
	$(BIN)/python -m benchmarks.server_overhead --profile $(BENCH_ARGS)

clean:
	rm -rf .fleetscope .pytest_cache .mypy_cache .ruff_cache .nox
