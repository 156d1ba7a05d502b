"""Fixtures that start the real local pipeline once per session and always stop it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .stack import LocalStack, start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    workdir: Path = tmp_path_factory.mktemp("stack")
    local = start_stack(workdir)
    try:
        yield local
    finally:
        local.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
