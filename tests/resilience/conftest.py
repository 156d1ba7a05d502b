"""The resilience suite: real faults against the real pipeline (docs/reliability.md).

Every test here is an integration test (real collector, Prometheus, gunicorn on loopback);
the figures each one measures are printed at the end of the run and, when
FLEETSCOPE_RESILIENCE_FIGURES names a file, written there as JSON.
"""

from __future__ import annotations

import json
import os

import pytest
from _pytest.terminal import TerminalReporter

from .figures import FIGURES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/resilience" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("resilience figures")
    for row, values in FIGURES.items():
        terminalreporter.write_line(f"{row}: {json.dumps(values, sort_keys=True)}")
    path = os.environ.get("FLEETSCOPE_RESILIENCE_FIGURES")
    if path:
        with open(path, "w") as handle:
            json.dump(FIGURES, handle, indent=2, sort_keys=True)
