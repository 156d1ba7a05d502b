"""What the bad-input and access tests share: the real stack with a metrics file, nodes of the
resilience settings under gunicorn or uvicorn, timing, and a secret scanner.

Kept apart from tests/integration/stack.py (which it reuses) so the pipeline-fault suite and
this one evolve without stepping on each other.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetscope.collector.process import ManagedProcess, free_ports, port_in_use
from fleetscope.collector.prometheus import PrometheusSettings, start_prometheus
from fleetscope.collector.run import CollectorPorts, CollectorSettings, config_path, start_collector
from tests.integration.stack import LocalStack, eventually

SETTINGS = "tests.resilience.input_settings"
WSGI = "tests.resilience.input_wsgi:application"
ASGI = "tests.integration.node_asgi:application"

# The collector's local pipeline, plus every metric written to a JSON-lines file: what left
# the node, before Prometheus' own translation (scanned for secrets like the traces file).
_METRICS_OVERLAY = """\
exporters:
  file/metrics:
    path: {path}
    format: json
service:
  pipelines:
    metrics:
      exporters: [prometheus, file/metrics]
"""


@dataclass
class InputStack(LocalStack):
    metrics_file: Path = field(default_factory=Path)

    def metrics_text(self) -> str:
        return self.metrics_file.read_text() if self.metrics_file.exists() else ""

    def traces_text(self) -> str:
        path = self.collector.traces_file
        return path.read_text() if path.exists() else ""

    def self_metric(self, name: str) -> float:
        """A sum over every series of one of the collector's own metrics (0 when absent), read
        from its self-metrics endpoint; with or without the `_total` suffix of counters."""
        url = f"http://{self.collector.ports.self_metrics_target}/metrics"
        total = 0.0
        for line in httpx.get(url, timeout=10).text.splitlines():
            metric = line.split("{", 1)[0].split(" ", 1)[0]
            if metric in (name, f"{name}_total"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def exporter_text(self) -> str:
        url = f"http://{self.collector.ports.prometheus_exporter_target}/metrics"
        return httpx.get(url, timeout=10).text

    def value(self, promql: str) -> float | None:
        rows = self.query(promql)
        return float(rows[0]["value"][1]) if rows else None


@contextmanager
def running_stack(workdir: Path) -> Iterator[InputStack]:
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_file = (workdir / "metrics.jsonl").resolve()
    overlay = workdir / "metrics-file.yaml"
    overlay.write_text(_METRICS_OVERLAY.format(path=metrics_file))
    ports = CollectorPorts.free()
    collector = CollectorSettings(
        ports=ports, workdir=workdir, configs=(config_path("local"), overlay)
    )
    prometheus = PrometheusSettings.on_free_port(
        workdir=workdir,
        exporter_targets=(ports.prometheus_exporter_target,),
        self_metrics_targets=(ports.self_metrics_target,),
        scrape_interval="1s",
    )
    processes: list[ManagedProcess] = []
    try:
        processes.append(start_collector(collector))
        processes.append(start_prometheus(prometheus))
        yield InputStack(collector, prometheus, processes, metrics_file=metrics_file)
    finally:
        for process in reversed(processes):
            process.stop()


# -- nodes ------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    url: str
    process: ManagedProcess
    workdir: Path

    @property
    def database(self) -> Path:
        return self.workdir / "db.sqlite3"

    def log_text(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.stop()


def node_env(
    workdir: Path,
    name: str,
    endpoint: str | None,
    telemetry: dict[str, Any] | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "FLEETSCOPE_DEMO_DIR": str(workdir),
        "FLEETSCOPE_DEMO_DB": str(workdir / "db.sqlite3"),
        "FLEETSCOPE_NODE": name,
        "FLEETSCOPE_SILK_RATE": "0",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "FLEETSCOPE_TEST_TELEMETRY": json.dumps(telemetry or {}),
        "PYTHONUNBUFFERED": "1",
    }
    if endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env.update(extra or {})
    return env


def migrated_database(tmp_path_factory: pytest.TempPathFactory, target: Path) -> None:
    """A migrated SQLite file at `target`: migrated once per session, then copied."""
    template = tmp_path_factory.getbasetemp() / "resilience-template.sqlite3"
    if not template.exists():
        workdir = tmp_path_factory.mktemp("template")
        env = node_env(workdir, "setup", None, extra={"OTEL_SDK_DISABLED": "true"})
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--skip-checks", "-v", "0"],
            env=env,
            check=True,
            timeout=300,
        )
        shutil.copyfile(workdir / "db.sqlite3", template)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)


@dataclass
class NodeSpec:
    """What `start_nodes` starts: one node of the resilience settings."""

    name: str
    endpoint: str | None
    telemetry: dict[str, Any] | None = None
    env: dict[str, str] | None = None
    server: str = "gunicorn"
    workers: int = 1


def start_nodes(tmp_path_factory: pytest.TempPathFactory, *specs: NodeSpec) -> list[Node]:
    """Nodes on free loopback ports, their databases migrated; started together (each takes
    seconds to import Django), returned once every one accepts connections."""
    launched: list[tuple[Node, int]] = []
    # Picked together: one at a time, the OS can hand two nodes the same port (a run had the
    # second node fail to bind while its requests went to the first).
    ports = free_ports(len(specs))
    try:
        for spec, port in zip(specs, ports, strict=True):
            workdir = tmp_path_factory.mktemp(spec.name)
            migrated_database(tmp_path_factory, workdir / "db.sqlite3")
            environ = node_env(workdir, spec.name, spec.endpoint, spec.telemetry, spec.env)
            if spec.server == "uvicorn":
                args = [sys.executable, "-m", "uvicorn", ASGI, "--host", "127.0.0.1"]
                args += ["--port", str(port), "--workers", str(spec.workers), "--no-access-log"]
            else:
                args = [sys.executable, "-m", "gunicorn", WSGI, "-b", f"127.0.0.1:{port}"]
                args += ["-w", str(spec.workers), "--preload", "--graceful-timeout", "5"]
                args += ["--timeout", "120", "--no-control-socket"]
            process = ManagedProcess(f"node {spec.name}", args, workdir / "server.log", env=environ)
            url = f"http://127.0.0.1:{port}"
            launched.append((Node(spec.name, url, process.start(), workdir), port))
        for node, port in launched:
            node.process.wait_ready(lambda port=port: port_in_use(port), timeout=120)  # type: ignore[misc]
    except BaseException:
        for node, _ in launched:
            node.stop()
        raise
    return [node for node, _ in launched]


def start_node(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    endpoint: str | None,
    *,
    telemetry: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    server: str = "gunicorn",
    workers: int = 1,
) -> Node:
    """One node of the resilience settings (see `start_nodes`)."""
    spec = NodeSpec(name, endpoint, telemetry, env, server, workers)
    return start_nodes(tmp_path_factory, spec)[0]


def create_user(node: Node, username: str, password: str, *, staff: bool) -> None:
    """A user in the node's database, made by Django itself (its hasher, its models)."""
    code = (
        "from django.contrib.auth import get_user_model\n"
        f"get_user_model().objects.create_user({username!r}, password={password!r}, "
        f"is_staff={staff!r})\n"
    )
    env = node_env(node.workdir, "setup", None, extra={"OTEL_SDK_DISABLED": "true"})
    subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", code],
        env=env,
        check=True,
        timeout=120,
    )


@contextmanager
def signed_in(base_url: str, username: str, password: str) -> Iterator[httpx.Client]:
    """A client with a real session of that user (signed in through a view of the node)."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        response = client.post("/sign-in/", data={"username": username, "password": password})
        assert response.status_code == 200, response.text[:300]
        assert "sessionid" in client.cookies
        yield client


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Timing:
    """One request: wall-clock seconds at the client, CPU seconds of the serving thread."""

    wall: float
    cpu: float


def timed(call: Callable[..., httpx.Response], *args: Any) -> Timing:
    """Time `call(*args)`, which must answer 200 from a node serving `node_wsgi` (its CPU
    header)."""
    start = time.perf_counter()
    response = call(*args)
    wall = time.perf_counter() - start
    assert response.status_code == 200, response.text[:300]
    return Timing(wall, float(response.headers["X-Request-CPU"]))


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    return eventually(probe, timeout=timeout, what=what)
