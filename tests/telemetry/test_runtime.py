"""Per-process runtime: node identity, sampler choice, forks, reloads, processors, and exit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased

from telemetry.conf import build_config
from telemetry.runtime import ConfigurationError, Runtime, active_runtime, build_sampler

ROOT = Path(__file__).resolve().parents[2]


def test_resource_carries_node_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments")
    runtime = Runtime(
        build_config(
            {"EXPORT": False, "NODE": "node-2", "SERVICE_NAME": "shop", "ENVIRONMENT": "demo"}
        )
    )
    attributes = runtime.resource.attributes
    assert attributes["service.name"] == "shop"
    assert attributes["host.name"] == "node-2"
    assert attributes["service.instance.id"] == f"node-2/{os.getpid()}"
    assert attributes["deployment.environment.name"] == "demo"
    assert attributes["team"] == "payments"


def test_default_sampler_is_parent_based_ratio() -> None:
    sampler = build_sampler(build_config({"TRACES_SAMPLE_RATE": 0.25}, environ={}))
    assert isinstance(sampler, ParentBased)
    assert "0.25" in sampler.get_description()


def test_unknown_sampler_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "sometimes")
    with pytest.raises(ConfigurationError, match="OTEL_TRACES_SAMPLER"):
        build_sampler(build_config({}))


def test_after_fork_the_child_starts_from_nothing() -> None:
    runtime = Runtime(build_config({"EXPORT": False}, environ={}))
    runtime.instruments.cache_operations.add(("default", "get", "hit"))
    runtime.ensure_started()
    old_lock = runtime.aggregator._lock
    runtime.after_fork_in_child()
    assert not runtime.started
    assert runtime.aggregator.collect() == []
    assert runtime.aggregator._lock is not old_lock
    assert runtime.instruments.cache_operations._lock is runtime.aggregator._lock


def test_a_forked_worker_exports_under_its_own_instance_id() -> None:
    runtime = Runtime(build_config({"EXPORT": False, "NODE": "n"}, environ={}))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a gunicorn --preload worker goes through
        runtime.after_fork_in_child()
        os.write(write, str(runtime.resource.attributes["service.instance.id"]).encode())
        os._exit(0)
    os.close(write)
    child_instance = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    assert child_instance == f"n/{pid}"
    assert runtime.resource.attributes["service.instance.id"] == f"n/{os.getpid()}"


def _probe(module: str, env: dict[str, str] | None = None, timeout: float = 180) -> Any:
    return subprocess.run(
        [sys.executable, "-m", f"tests.telemetry.probes.{module}"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_forks_never_hang_and_every_child_exports_under_its_own_id() -> None:
    """Regression: the fork hook started exporters in every child and kept the aggregator
    lock, so a fork while the export thread collected deadlocked the child."""
    result = _probe("forks")
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["hung"] == 0
    assert probe["preexec_fn"] is True
    assert probe["mp_exitcode"] == 0
    assert probe["parent_exported"] is True
    # A multiprocessing child exports under its own instance id and flushes as it exits.
    assert probe["mp_child_exported"] is True


def test_subprocess_with_preexec_fn_in_a_view_works(rt: Runtime) -> None:
    response = Client().get("/preexec/")
    assert response.status_code == 200
    assert response.json() == {"returncode": 0}


def test_an_app_reload_reconfigures_the_one_runtime() -> None:
    """Regression: each ready() (override_settings(INSTALLED_APPS=...)) built a new runtime
    with its own exporter threads and exit handler."""
    before = active_runtime()
    threads_before = {t.name for t in threading.enumerate()}
    for _ in range(3):
        with override_settings(
            INSTALLED_APPS=[*settings.INSTALLED_APPS, "django.contrib.humanize"]
        ):
            assert apps.is_installed("django.contrib.humanize")
            assert active_runtime() is before
    assert active_runtime() is before
    assert {t.name for t in threading.enumerate()} == threads_before


def test_a_reload_with_new_settings_applies_them_in_place() -> None:
    runtime = active_runtime()
    assert runtime is not None
    with override_settings(TELEMETRY={"EXPORT": False, "SLOW_QUERY_MS": 7}):
        apps.get_app_config("telemetry").ready()
        assert active_runtime() is runtime
        assert runtime.slow_query_seconds == 0.007
    apps.get_app_config("telemetry").ready()
    assert runtime.slow_query_seconds == 0.1


class Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[Any] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


class Broken(SpanProcessor):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("processor bug at start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor bug at end")


@pytest.mark.django_db
def test_a_users_processor_sees_every_span_as_a_readable_span(make_runtime: Any) -> None:
    """Regression: deferred DB spans bypassed processors added to the tracer provider."""
    runtime = make_runtime(TRACES_SAMPLE_RATE=1.0)
    recorder = Recorder()
    runtime.tracer_provider.add_span_processor(recorder)
    Client().get("/books/fixed/")
    db = [s for s in recorder.ended if "django.db.fingerprint" in (s.attributes or {})]
    assert db and all(isinstance(s, ReadableSpan) for s in recorder.ended)
    server = next(s for s in recorder.ended if s.name.startswith("GET"))
    assert {s.parent.span_id for s in db} == {server.context.span_id}


@pytest.mark.django_db
def test_a_broken_processor_never_fails_a_request_or_a_query(make_runtime: Any) -> None:
    runtime = make_runtime(TRACES_SAMPLE_RATE=1.0)
    runtime.tracer_provider.add_span_processor(Broken())
    assert Client().get("/books/fixed/").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _exit_delay(env: dict[str, str]) -> tuple[float, str]:
    started = time.time()
    result = _probe("exit", env, timeout=120)
    ended = time.time()
    assert result.returncode == 0, result.stderr[-3000:]
    marker = next(line for line in result.stdout.splitlines() if line.startswith("done "))
    printed = float(marker.split()[1])
    assert started <= printed <= ended
    return ended - printed, result.stderr


@pytest.mark.parametrize("endpoint", ["closed", "blackhole"])
def test_exit_is_bounded_and_quiet_when_the_collector_is_away(
    endpoint: str, blackhole: str
) -> None:
    """Regression: exit waited 10-60 s retrying, and the SDK's retry messages went to stderr.
    The unreachable endpoint's export timeout (30 s) is far above the exit budget (1 s)."""
    url = blackhole if endpoint == "blackhole" else _closed_port()
    baseline, _ = _exit_delay({"PROBE_EXPORT": "0"})
    delay, stderr = _exit_delay(
        {
            "PROBE_EXPORT": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "30000",
            "OTEL_METRIC_EXPORT_INTERVAL": "100",
        }
    )
    # Bounded by the exit budget (EXIT_FLUSH_TIMEOUT_MS, 1 s here), not by the 30 s timeout.
    assert delay < baseline + 5.0, (delay, baseline)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert not any("Transient error" in line or "Failed to export" in line for line in lines)
    assert sum("Fleetscope could not export" in line for line in lines) <= 2  # per signal


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:99999", "collector:4318"])
def test_a_malformed_endpoint_is_one_log_line_naming_it(
    endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: a traceback that named neither the URL nor the setting (invalid port), or no
    # word at all while exports went to 127.0.0.1:80 (no scheme).
    runtime = Runtime(build_config({"ENDPOINT": endpoint}, environ={}))
    with caplog.at_level("ERROR", logger="telemetry"):
        runtime.ensure_started()
    assert runtime.worker is None
    [record] = caplog.records
    message = record.getMessage()
    assert endpoint in message and "TELEMETRY['ENDPOINT']" in message
    assert "requests are not affected" in message and record.exc_info is None
