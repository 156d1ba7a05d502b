"""A fresh, active telemetry runtime per test, with spans captured in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from telemetry import runtime as runtime_module
from telemetry.conf import build_config
from telemetry.db import instrument_databases
from telemetry.runtime import Runtime, activate


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def make_runtime(spans: InMemorySpanExporter) -> Iterator[Any]:
    previous = runtime_module.active_runtime()

    def make(**settings: Any) -> Runtime:
        rt = activate(Runtime(build_config({"EXPORT": False, **settings}), span_exporter=spans))
        instrument_databases()
        return rt

    yield make
    if previous is not None:
        activate(previous)
        instrument_databases()


@pytest.fixture
def rt(make_runtime: Any) -> Runtime:
    """Unsampled by default, like most production requests."""
    return make_runtime(TRACES_SAMPLE_RATE=0.0)
