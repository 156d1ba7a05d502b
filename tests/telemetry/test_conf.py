"""Settings: the environment first, then TELEMETRY, then defaults; cache cleared on change.

Per-node identity and endpoints must come from the environment first: a settings file
shared by every node with NODE set made every node report the same host_name (regression).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from telemetry.conf import DEFAULTS, Config, build_config, get_config


def test_defaults_apply_when_nothing_is_set() -> None:
    config = build_config(None, environ={})
    assert config.service_name == DEFAULTS["SERVICE_NAME"]
    assert config.traces.url == "http://127.0.0.1:4318/v1/traces"
    assert config.metrics.url == "http://127.0.0.1:4318/v1/metrics"
    assert config.metric_export_interval_ms == 10_000
    assert (config.sampler, config.sampler_arg) == ("parentbased_traceidratio", "0.1")
    assert config["SLOW_QUERY_MS"] == 100 and config["N_PLUS_ONE_THRESHOLD"] == 5
    assert config.exporting


def test_user_settings_override_defaults() -> None:
    config = build_config({"SLOW_QUERY_MS": 20, "NODE": "node-9"}, environ={})
    assert config["SLOW_QUERY_MS"] == 20
    assert config.slow_query_seconds == 0.02
    assert config.node == "node-9"
    assert config["N_PLUS_ONE_THRESHOLD"] == DEFAULTS["N_PLUS_ONE_THRESHOLD"]


# (what, environment variables, TELEMETRY settings, how to read the result from a Config,
#  the value with the variable, the value with the setting only)
PRECEDENCE: list[tuple[str, dict[str, str], dict[str, Any], Any, Any, Any]] = [
    (
        "node",
        {"FLEETSCOPE_NODE": "node-env"},
        {"NODE": "node-setting"},
        lambda c: c.node,
        "node-env",
        "node-setting",
    ),
    (
        "node from resource attributes",
        {"OTEL_RESOURCE_ATTRIBUTES": "host.name=node-attr"},
        {"NODE": "node-setting"},
        lambda c: c.node,
        "node-attr",
        "node-setting",
    ),
    (
        "service",
        {"OTEL_SERVICE_NAME": "svc-env"},
        {"SERVICE_NAME": "svc-setting"},
        lambda c: c.service_name,
        "svc-env",
        "svc-setting",
    ),
    (
        "environment",
        {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod"},
        {"ENVIRONMENT": "staging"},
        lambda c: c.environment,
        "prod",
        "staging",
    ),
    (
        "version",
        {"OTEL_RESOURCE_ATTRIBUTES": "service.version=2.0"},
        {"SERVICE_VERSION": "1.0"},
        lambda c: c.service_version,
        "2.0",
        "1.0",
    ),
    (
        "endpoint",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"},
        {"ENDPOINT": "http://setting:4318"},
        lambda c: (c.traces.url, c.metrics.url),
        ("http://env:4318/v1/traces", "http://env:4318/v1/metrics"),
        ("http://setting:4318/v1/traces", "http://setting:4318/v1/metrics"),
    ),
    (
        "traces endpoint",
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env:9999/custom"},
        {"ENDPOINT": "http://setting:4318"},
        lambda c: (c.traces.url, c.metrics.url),
        ("http://env:9999/custom", "http://setting:4318/v1/metrics"),
        ("http://setting:4318/v1/traces", "http://setting:4318/v1/metrics"),
    ),
    (
        "protocol",
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"PROTOCOL": "http/protobuf"},
        lambda c: (c.traces.protocol, c.traces.url),
        ("grpc", "http://127.0.0.1:4317"),
        ("http/protobuf", "http://127.0.0.1:4318/v1/traces"),
    ),
    (
        "timeout",
        {"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"},
        {"EXPORT_TIMEOUT_MS": 700},
        lambda c: (c.traces.timeout_s, c.metrics.timeout_s),
        (2.5, 2.5),
        (0.7, 0.7),
    ),
    (
        "metric interval",
        {"OTEL_METRIC_EXPORT_INTERVAL": "2500"},
        {"METRIC_EXPORT_INTERVAL_MS": 700},
        lambda c: c.metric_export_interval_ms,
        2500,
        700,
    ),
    (
        "sampler argument without a sampler",
        {"OTEL_TRACES_SAMPLER_ARG": "0.5"},
        {"TRACES_SAMPLE_RATE": 0.25},
        lambda c: (c.sampler, c.sampler_arg),
        ("parentbased_traceidratio", "0.5"),
        ("parentbased_traceidratio", "0.25"),
    ),
    (
        "SDK disabled",
        {"OTEL_SDK_DISABLED": "true"},
        {"EXPORT": True},
        lambda c: (c.exporting, c.sampler),
        (False, "always_off"),
        (True, "parentbased_traceidratio"),
    ),
    (
        "traces exporter none",
        {"OTEL_TRACES_EXPORTER": "none"},
        {"EXPORT": True},
        lambda c: (c.export_traces, c.export_metrics),
        (False, True),
        (True, True),
    ),
]


@pytest.mark.parametrize(
    ("environ", "setting", "read", "from_env", "from_setting"),
    [row[1:] for row in PRECEDENCE],
    ids=[row[0] for row in PRECEDENCE],
)
def test_the_environment_wins_over_telemetry_settings(
    environ: dict[str, str], setting: dict[str, Any], read: Any, from_env: Any, from_setting: Any
) -> None:
    assert read(build_config(setting, environ=environ)) == from_env
    assert read(build_config(setting, environ={})) == from_setting


def test_grpc_without_an_endpoint_uses_4317() -> None:
    config = build_config({}, environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert (config.traces.url, config.metrics.url) == (
        "http://127.0.0.1:4317",
        "http://127.0.0.1:4317",
    )


def test_headers_general_and_per_signal() -> None:
    config = build_config(
        {},
        environ={
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,x-team=shop",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-metrics=1",
        },
    )
    assert dict(config.traces.headers) == {"authorization": "Bearer abc", "x-team": "shop"}
    assert dict(config.metrics.headers) == {"x-metrics": "1"}
    assert config.traces.header_names == ["authorization", "x-team"]


def test_where_each_value_came_from_is_recorded() -> None:
    config = build_config({"NODE": "n"}, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert config.sources["host.name"] == "TELEMETRY['NODE']"
    assert dict(config.traces.sources)["endpoint"] == "OTEL_EXPORTER_OTLP_ENDPOINT"


def test_unusable_values_are_reported_not_used() -> None:
    config = build_config(
        {}, environ={"OTEL_METRIC_EXPORT_INTERVAL": "soon", "OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}
    )
    assert config.metric_export_interval_ms == 10_000
    assert config.traces.timeout_s == 10.0
    assert len(config.problems) == 3  # the interval, and the timeout of each signal


def test_build_config_never_writes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    before = dict(os.environ)
    build_config({"REQUEST_INSTRUMENTATION": "opentelemetry-instrumentation-django"})
    assert dict(os.environ) == before


def test_override_settings_clears_the_cached_config() -> None:
    before = get_config()["SLOW_QUERY_MS"]
    with override_settings(TELEMETRY={"SLOW_QUERY_MS": before + 1}):
        assert get_config()["SLOW_QUERY_MS"] == before + 1
    assert get_config()["SLOW_QUERY_MS"] == before
    assert isinstance(get_config(), Config)


def test_node_from_the_environment_beats_a_shared_settings_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The regression as users met it: NODE in a settings file shared by every node."""
    monkeypatch.setenv("FLEETSCOPE_NODE", "node-2")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector-2:4318")
    config = build_config({"NODE": "node-1", "ENDPOINT": "http://collector-1:4318"})
    assert config.node == "node-2"
    assert config.endpoint.startswith("http://collector-2:4318")
