"""Settings: TELEMETRY merged over defaults, OTEL_* variables on top, cache cleared on change."""

from __future__ import annotations

import pytest
from django.test import override_settings

from telemetry.conf import DEFAULTS, build_config, get_config


def test_defaults_apply_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_SERVICE_NAME",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
        "OTEL_METRIC_EXPORT_INTERVAL",
        "FLEETSCOPE_NODE",
    ):
        monkeypatch.delenv(name, raising=False)
    config = build_config(None)
    assert config.service_name == DEFAULTS["SERVICE_NAME"]
    assert config.endpoint == "http://127.0.0.1:4318"
    assert config.metric_export_interval_ms == 10_000
    assert (config.sampler, config.sampler_arg) == ("parentbased_traceidratio", "0.1")
    assert config["SLOW_QUERY_MS"] == 100 and config["N_PLUS_ONE_THRESHOLD"] == 5


def test_user_settings_override_defaults() -> None:
    config = build_config({"SLOW_QUERY_MS": 20, "NODE": "node-9"})
    assert config["SLOW_QUERY_MS"] == 20
    assert config.slow_query_seconds == 0.02
    assert config.node == "node-9"
    assert config["N_PLUS_ONE_THRESHOLD"] == DEFAULTS["N_PLUS_ONE_THRESHOLD"]


def test_standard_otel_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "2500")
    config = build_config({"SERVICE_NAME": "ignored"})
    assert config.service_name == "shop"
    assert config.endpoint == "http://collector:4318"
    assert config.sampler == "always_on"
    assert config.metric_export_interval_ms == 2500


def test_node_comes_from_fleetscope_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETSCOPE_NODE", "node-3")
    assert build_config({}).node == "node-3"
    assert build_config({"NODE": "explicit"}).node == "explicit"


def test_override_settings_clears_the_cached_config() -> None:
    before = get_config()["SLOW_QUERY_MS"]
    with override_settings(TELEMETRY={"SLOW_QUERY_MS": before + 1}):
        assert get_config()["SLOW_QUERY_MS"] == before + 1
    assert get_config()["SLOW_QUERY_MS"] == before
