"""The real local pipeline for integration tests: collector + Prometheus on free loopback ports."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from fleetscope.collector.process import ManagedProcess
from fleetscope.collector.prometheus import PrometheusSettings, start_prometheus
from fleetscope.collector.run import CollectorPorts, CollectorSettings, start_collector

T = TypeVar("T")


@dataclass
class LocalStack:
    collector: CollectorSettings
    prometheus: PrometheusSettings
    processes: list[ManagedProcess]
    _held: list[socket.socket] = field(default_factory=list)  # ports of a killed process

    @property
    def otlp_endpoint(self) -> str:
        return self.collector.ports.otlp_http_endpoint

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = httpx.get(f"{self.prometheus_url}/api/v1/query", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def value(self, promql: str) -> float | None:
        """The value of a query that returns one series (None when it returns none)."""
        rows = self.query(promql)
        if not rows:
            return None
        assert len(rows) == 1, f"{promql} returned {len(rows)} series: {rows}"
        return float(rows[0]["value"][1])

    def samples(self, selector: str, window: str) -> list[list[tuple[float, float]]]:
        """The raw samples (timestamp, value) of each series of `selector` over `window`."""
        rows = self.query(f"{selector}[{window}]")
        return [[(float(t), float(v)) for t, v in row["values"]] for row in rows]

    def _process(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)

    def _replace(self, name: str, new: ManagedProcess) -> None:
        self.processes = [new if p.name == name else p for p in self.processes]

    @property
    def collector_process(self) -> ManagedProcess:
        return self._process("collector")

    @property
    def prometheus_process(self) -> ManagedProcess:
        return self._process("prometheus")

    def kill_collector(self, sig: int = signal.SIGKILL) -> None:
        """Kill the collector (SIGKILL: a crash) and hold its ports until `restart_collector`."""
        self.collector_process.kill(sig)
        self._held.extend(hold_ports(self.collector.ports.listening()))

    def restart_collector(self) -> None:
        """Start the collector again on the same ports (after a kill or a stop)."""
        self._release()
        self._replace("collector", start_collector(self.collector))

    def kill_prometheus(self) -> None:
        """SIGKILL Prometheus and hold its port until `restart_prometheus`."""
        self.prometheus_process.kill()
        self._held.extend(hold_ports([self.prometheus.port]))

    def restart_prometheus(self) -> None:
        """Start Prometheus again on the same port and data directory."""
        self._release()
        self._replace("prometheus", start_prometheus(self.prometheus))

    def _release(self) -> None:
        held, self._held = self._held, []
        for sock in held:
            sock.close()

    def spans(self, service: str | None = None) -> Iterator[dict[str, Any]]:
        """Every span the collector's file exporter wrote so far (of one service if given)."""
        path = self.collector.traces_file
        if not path.exists():
            return
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            for resource_spans in json.loads(line).get("resourceSpans", []):
                if service is not None and service != _service_of(resource_spans):
                    continue
                for scope_spans in resource_spans.get("scopeSpans", []):
                    yield from scope_spans.get("spans", [])

    def stop(self) -> None:
        self._release()
        for process in reversed(self.processes):
            process.stop()


def _service_of(resource_spans: dict[str, Any]) -> str | None:
    for attribute in resource_spans.get("resource", {}).get("attributes", []):
        if attribute["key"] == "service.name":
            return str(attribute["value"].get("stringValue"))
    return None


def hold_ports(ports: Iterable[int], host: str = "127.0.0.1") -> list[socket.socket]:
    """Bind each port without listening: connections to it are refused, as to the dead
    process, and the OS hands it to nobody else (another test's free port, an outgoing
    connection) until the sockets are closed, so the process can come back on it."""
    held: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            # The dead process's connections linger in TIME_WAIT on its ports.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held


def start_stack(
    workdir: Path,
    scrape_interval: str = "1s",
    configs: tuple[Path, ...] | None = None,
    collector_env: dict[str, str] | None = None,
    rule_files: tuple[Path, ...] = (),
) -> LocalStack:
    """A collector (local.yaml unless `configs` says otherwise) scraped by Prometheus."""
    ports = CollectorPorts.free()
    collector = CollectorSettings(ports=ports, workdir=workdir, extra_env=collector_env or {})
    if configs is not None:
        collector.configs = configs
    processes: list[ManagedProcess] = []
    try:
        processes.append(start_collector(collector))
        # Prometheus's port is picked once the collector listens on its own ports.
        prometheus = PrometheusSettings.on_free_port(
            workdir=workdir,
            exporter_targets=(ports.prometheus_exporter_target,),
            self_metrics_targets=(ports.self_metrics_target,),
            scrape_interval=scrape_interval,
            rule_files=rule_files,
        )
        processes.append(start_prometheus(prometheus))
    except BaseException:
        for process in processes:
            process.stop()
        raise
    return LocalStack(collector, prometheus, processes)


def eventually(
    probe: Callable[[], T | None],
    timeout: float = 60.0,
    interval: float = 0.5,
    what: str = "condition",
) -> T:
    """Poll until probe returns something truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def port_open(port: int) -> Callable[[], bool]:
    import socket

    def probe() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    return probe


@dataclass
class Node:
    name: str
    url: str
    process: ManagedProcess


def start_gunicorn_node(
    stack: LocalStack,
    workdir: Path,
    name: str,
    settings_module: str,
    wsgi: str,
    workers: int = 2,
    preload: bool = True,
    env: dict[str, str] | None = None,
    databases: tuple[str, ...] = ("default", "other"),
    server: str = "gunicorn",
    graceful_timeout: int = 5,
    server_args: tuple[str, ...] = (),
) -> Node:
    """Migrate, then serve the app (gunicorn WSGI, or uvicorn ASGI when server="uvicorn"),
    exporting to the stack's collector. `server_args` go to gunicorn as they are
    (`--max-requests 50`)."""
    import os
    import sys

    from fleetscope.collector.process import free_port

    workdir.mkdir(parents=True, exist_ok=True)
    node_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "FLEETSCOPE_TEST_NODE_DIR": str(workdir),
        "FLEETSCOPE_NODE": name,
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        **(env or {}),  # a test's own settings win
    }
    import subprocess

    for database in databases:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "django",
                "migrate",
                "--run-syncdb",
                "-v",
                "0",
                "--database",
                database,
            ],
            # Management commands export too: the setup must not add series to the node's.
            env={**node_env, "OTEL_SDK_DISABLED": "true"},
            check=True,
            timeout=120,
        )
    port = free_port()
    if server == "uvicorn":
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            wsgi,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ]
        process = ManagedProcess(
            f"node {name}", args, workdir / "uvicorn.log", env=node_env
        ).start()
        try:
            process.wait_ready(port_open(port), timeout=60)
        except BaseException:
            process.stop()
            raise
        return Node(name, f"http://127.0.0.1:{port}", process)
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        wsgi,
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(workers),
        "--graceful-timeout",
        str(graceful_timeout),
        # gunicorn >= 25.1 opens a control socket at one fixed path per user by default;
        # several nodes on one machine each need their own.
        "--control-socket",
        str(workdir / "gunicorn.ctl"),
    ]
    if preload:
        args.append("--preload")
    args.extend(server_args)
    process = ManagedProcess(f"node {name}", args, workdir / "gunicorn.log", env=node_env).start()
    try:
        process.wait_ready(port_open(port), timeout=60)
    except BaseException:
        process.stop()
        raise
    return Node(name, f"http://127.0.0.1:{port}", process)


def seed_books(workdir: Path, count: int = 6) -> None:
    """Authors and one book each in a test node's database: the N+1 views' data."""
    import sqlite3

    with sqlite3.connect(workdir / "db.sqlite3") as db:
        for i in range(count):
            db.execute("INSERT INTO testapp_author (name) VALUES (?)", (f"author {i}",))
            db.execute(
                "INSERT INTO testapp_book (author_id, title) VALUES (?, ?)", (i + 1, f"book {i}")
            )


def start_balancer(
    stack: LocalStack, workdir: Path, backend: str, nodes: list[Node]
) -> tuple[str, ManagedProcess]:
    """The real HAProxy (the demo's generated config) in front of `nodes`, its exporter added
    to the stack's Prometheus (config rewritten, then reloaded); returns its URL and process.

    The backend is named after the service and each server after its node, as docs/capacity.md
    asks, so the Capacity dashboard's variables select its series."""
    from urllib.parse import urlsplit

    from fleetscope.collector.process import free_port
    from fleetscope.collector.prometheus import write_config
    from fleetscope.demo.balancer import BalancerSettings, Server, start_balancer

    settings = BalancerSettings(
        port=free_port(),
        metrics_port=free_port(),
        backend=backend,
        servers=[Server(node.name, int(urlsplit(node.url).port or 0)) for node in nodes],
        workdir=workdir,
    )
    process = start_balancer(settings)
    try:
        prometheus = stack.prometheus
        prometheus.balancer_targets = (*prometheus.balancer_targets, settings.metrics_target)
        write_config(prometheus)
        httpx.post(f"{stack.prometheus_url}/-/reload", timeout=10).raise_for_status()
        target = settings.metrics_target
        eventually(
            lambda: stack.query(f'up{{job="haproxy", instance="{target}"}} == 1'),
            what=f"Prometheus scraping the balancer at {target}",
        )
    except BaseException:
        process.stop()
        raise
    return settings.url, process


def start_redis_broker(workdir: Path) -> tuple[ManagedProcess, str]:
    """redis-server from the distribution on a free port; (process, broker URL)."""
    from fleetscope.collector.process import free_port
    from fleetscope.demo.datastores import start_redis

    server = start_redis(workdir, free_port(), workdir / "redis.log")
    return server.process, server.url


def start_celery_worker(
    stack: LocalStack,
    workdir: Path,
    name: str,
    broker_url: str,
    *,
    pool: str = "prefork",
    concurrency: int = 2,
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    """A real `celery worker` of tests/integration/celery_app.py exporting to the stack; the
    node's FLEETSCOPE_TEST_NODE_DIR (its SQLite files) is `workdir`."""
    import os
    import sys

    log = workdir / f"celery-{name}.log"
    offset = log.stat().st_size if log.exists() else 0
    worker_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.node_settings",
        "FLEETSCOPE_TEST_NODE_DIR": str(workdir),
        "FLEETSCOPE_TEST_BROKER_URL": broker_url,
        "FLEETSCOPE_NODE": name,
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        **(env or {}),
    }
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.integration.celery_app",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        "-O",
        "fair",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    process = ManagedProcess(f"celery {name}", args, log, env=worker_env).start()

    def ready() -> bool:
        with log.open("rb") as out:
            out.seek(offset)
            return b" ready." in out.read()

    try:
        process.wait_ready(ready, timeout=90)
    except BaseException:
        process.stop()
        raise
    return process
