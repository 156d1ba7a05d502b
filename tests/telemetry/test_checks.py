"""System checks name the misconfiguration and what to change, with stable ids."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from telemetry.checks import MIDDLEWARE_PATH, telemetry_checks


def _ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [message.id or "" for message in telemetry_checks()]


def test_a_correct_setup_has_no_messages() -> None:
    assert _ids() == []


def test_missing_middleware_warns() -> None:
    middleware = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    assert _ids(MIDDLEWARE=middleware) == ["telemetry.W001"]


def test_middleware_not_first_warns() -> None:
    middleware = [*[m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH], MIDDLEWARE_PATH]
    assert _ids(MIDDLEWARE=middleware) == ["telemetry.W002"]


@pytest.mark.parametrize("endpoint", ["collector:4318", "http://", "ftp://x:1", "http://h:99999"])
def test_unparsable_endpoint_is_an_error(endpoint: str) -> None:
    assert _ids(TELEMETRY={"EXPORT": False, "ENDPOINT": endpoint}) == ["telemetry.E001"]


@pytest.mark.parametrize("rate", [1.5, -0.1])
def test_sampler_argument_out_of_range_is_an_error(rate: float) -> None:
    assert _ids(TELEMETRY={"EXPORT": False, "TRACES_SAMPLE_RATE": rate}) == ["telemetry.E002"]


def test_sampler_argument_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "lots")
    with override_settings(TELEMETRY={"EXPORT": False}):
        (message,) = telemetry_checks()
    assert message.id == "telemetry.E002"
    assert "OTEL_TRACES_SAMPLER_ARG" in message.msg


def test_unknown_keys_and_modes_are_reported() -> None:
    ids = _ids(
        TELEMETRY={
            "EXPORT": False,
            "SLOW_QUERY": 5,
            "REQUEST_INSTRUMENTATION": "magic",
            "PROTOCOL": "udp",
        }
    )
    assert sorted(ids) == ["telemetry.E003", "telemetry.E004", "telemetry.W003"]


def test_bad_numbers_are_errors() -> None:
    assert _ids(TELEMETRY={"EXPORT": False, "N_PLUS_ONE_THRESHOLD": 1}) == ["telemetry.E006"]


BAD_VALUES = [
    ("MAX_FINGERPRINTS", "many", "telemetry.E006"),
    ("MAX_FINGERPRINTS", -5, "telemetry.E006"),
    ("SLOW_QUERY_MS", "slow", "telemetry.E006"),
    ("N_PLUS_ONE_THRESHOLD", None, "telemetry.E006"),
    ("SPAN_QUEUE_SIZE", "big", "telemetry.E006"),
    ("MAX_STATEMENT_LENGTH", 0, "telemetry.E006"),
    ("METRIC_EXPORT_INTERVAL_MS", 1.5e300 * 1e10, "telemetry.E006"),
    ("EXIT_FLUSH_TIMEOUT_MS", "soon", "telemetry.E006"),
    ("SILK_RATE", "often", "telemetry.E007"),
    ("INSTRUMENTS", 5, "telemetry.E009"),
    ("CACHE_ALIASES", 5, "telemetry.E011"),
    ("MAX_ROUTE_NAMES", "all", "telemetry.E006"),
]


@pytest.mark.parametrize(("key", "value", "expected"), BAD_VALUES)
def test_unusable_values_are_named_and_replaced_by_defaults(
    key: str, value: Any, expected: str
) -> None:
    from telemetry.conf import DEFAULTS, build_config
    from telemetry.runtime import Runtime

    # The app still starts (before: the runtime raised from AppConfig.ready(), and even
    # `manage.py check` died with that traceback instead of naming the setting) ...
    config = build_config({"EXPORT": False, key: value})
    assert config[key] == DEFAULTS[key]
    Runtime(config)
    # ... and the check says which setting, what is wrong, and what is used meanwhile.
    with override_settings(TELEMETRY={"EXPORT": False, key: value}):
        (message,) = [m for m in telemetry_checks() if m.id == expected]
    assert f"TELEMETRY['{key}']" in message.msg and "default" in message.msg


def test_unknown_cache_alias_warns() -> None:
    assert _ids(TELEMETRY={"EXPORT": False, "CACHE_ALIASES": ["default", "nope"]}) == [
        "telemetry.W004"
    ]


def test_contrib_mode_without_the_semconv_opt_in_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    mode = {"EXPORT": False, "REQUEST_INSTRUMENTATION": "opentelemetry-instrumentation-django"}
    assert _ids(TELEMETRY=mode) == ["telemetry.E008"]
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    assert _ids(TELEMETRY=mode) == []


def test_unusable_environment_values_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "soon")
    assert _ids(TELEMETRY={"EXPORT": False}) == ["telemetry.W005"]
