"""`manage.py telemetry_check` prints the effective configuration and probes the endpoint."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from fleetscope.collector.process import free_port


def test_prints_configuration_and_fails_when_the_endpoint_is_down() -> None:
    out = StringIO()
    endpoint = f"http://127.0.0.1:{free_port()}"
    telemetry = {"EXPORT": False, "ENDPOINT": endpoint, "NODE": "node-7"}
    with override_settings(TELEMETRY=telemetry), pytest.raises(CommandError, match="answer"):
        call_command("telemetry_check", stdout=out)
    text = out.getvalue()
    assert "node-7" in text
    assert endpoint in text
    assert "unreachable" in text


def test_the_probe_sends_the_configured_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: OTEL_EXPORTER_OTLP_HEADERS were ignored by telemetry_check (and export)."""
    from tests.telemetry.test_export import Receiver

    receiver = Receiver()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=shop,authorization=Bearer%20t")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        out = StringIO()
        with override_settings(TELEMETRY={"EXPORT": False}):
            call_command("telemetry_check", stdout=out)
        assert {h.get("x-tenant") for h in receiver.headers} == {"shop"}
        assert "x-tenant, authorization" in out.getvalue()  # names only
        assert "Bearer" not in out.getvalue()
    finally:
        receiver.close()
