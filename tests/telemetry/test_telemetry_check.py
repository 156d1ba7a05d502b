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
