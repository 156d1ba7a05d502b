"""Fixtures that start the real local pipeline once per session and always stop it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetscope.dashboards.objectives import SLO_RULES_FILE_NAME, render_slo_rules

from .stack import LocalStack, start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    workdir: Path = tmp_path_factory.mktemp("stack")
    # The SLO rules, evaluated every 2 s so the SLO dashboard's tests need not wait minutes.
    slo_rules = workdir / SLO_RULES_FILE_NAME
    slo_rules.write_text(render_slo_rules(interval="2s", period_interval="2s"))
    local = start_stack(workdir, rule_files=(slo_rules,))
    try:
        yield local
    finally:
        local.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
