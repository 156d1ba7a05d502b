# The two commands a newcomer needs: `make demo` and `make test`. Both install
# what they need: Debian packages (as root), a virtualenv, the collector build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help setup system-deps venv collector lint format test test-unit test-integration \
        test-resilience test-transparency demo dashboards bench clean

help:
	@echo "make demo   - bring up a demo fleet under load and print its report"
	@echo "make test   - install everything needed, lint, type-check and run all tests"
	@echo "make test-transparency - Django's own tests with and without Fleetscope, compared"
	@echo "make test-resilience - real faults against the real pipeline (docs/reliability.md)"
	@echo "make bench  - overhead benchmark against bare Django and the peer libraries"

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

bench: venv
	$(BIN)/python -m benchmarks.overhead

clean:
	rm -rf .fleetscope .pytest_cache .mypy_cache .ruff_cache
