"""REQUEST_INSTRUMENTATION = "opentelemetry-instrumentation-django" delegates request telemetry."""

from __future__ import annotations

import json
import os
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
        # The contrib package reports the stable HTTP conventions only when asked (check E008).
        env={**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": "http"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_contrib_middleware_owns_request_spans(probe: dict[str, Any]) -> None:
    assert probe["middleware"][0].startswith("opentelemetry.instrumentation.django")


def test_both_modes_label_routes_alike(probe: dict[str, Any]) -> None:
    """Regression: contrib mode reported `items/<int:pk>/` (no leading slash) and no route for
    unmatched requests, so `http_*` and `django_db_*` series did not join."""
    assert probe["span_routes"] == ["/books/n-plus-one/", "/items/<int:pk>/", "unmatched"]
    assert probe["metric_routes"] == ["/books/n-plus-one/", "/items/<int:pk>/", "unmatched"]


def test_the_middleware_check_is_right_in_contrib_mode(probe: dict[str, Any]) -> None:
    """Regression: W002 told users to move TelemetryMiddleware above the contrib middleware,
    which the contrib instrumentor inserts at index 0 itself."""
    assert probe["check_ids"] == []


def test_contrib_emits_the_same_request_duration_metric(probe: dict[str, Any]) -> None:
    assert "http.server.request.duration" in probe["sdk_metrics"]
    assert probe["own_request_points"] == 0  # not recorded twice


def test_fleetscope_keeps_sql_detection_with_the_route(probe: dict[str, Any]) -> None:
    assert [route for (_, route), _count in probe["n_plus_one"]] == ["/books/n-plus-one/"]


def test_capacity_signals_are_fleetscope_s_own_in_contrib_mode_too(probe: dict[str, Any]) -> None:
    assert probe["busy_seconds"] > 0
    assert probe["busy_in_flight"] == 0
    assert probe["queue_time_routes"] == [["/items/<int:pk>/"]]
