"""REQUEST_INSTRUMENTATION = "opentelemetry-instrumentation-django" delegates request telemetry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.telemetry.contrib_probe"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_contrib_middleware_owns_request_spans(probe: dict[str, Any]) -> None:
    assert probe["middleware"][0].startswith("opentelemetry.instrumentation.django")
    # The contrib package reports routes without the leading slash (see docs/telemetry.md).
    assert "items/<int:pk>/" in probe["span_routes"]


def test_contrib_emits_the_same_request_duration_metric(probe: dict[str, Any]) -> None:
    assert "http.server.request.duration" in probe["sdk_metrics"]
    assert probe["own_request_points"] == 0  # not recorded twice


def test_fleetscope_keeps_sql_detection_with_the_route(probe: dict[str, Any]) -> None:
    assert [route for (_, route), _count in probe["n_plus_one"]] == ["/books/n-plus-one/"]
