"""Starts one benchmark configuration as a real server on loopback, pinned to its own cores."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from fleetscope.collector.process import ManagedProcess, free_port

from .server_matrix import Configuration

ROOT = Path(__file__).resolve().parent.parent
GTHREAD_THREADS = 4  # one per wrk connection


@dataclass(frozen=True)
class Cores:
    """Which cores serve and which drive the load (and run the collector)."""

    server: set[int]
    load: set[int]

    @classmethod
    def split(cls) -> Cores | None:
        """First allowed core for the server, the others for the rest; None on one core."""
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < 2:
            return None
        return cls({allowed[0]}, set(allowed[1:]))


def _taskset(cpus: set[int] | None) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []


@dataclass
class Server:
    config: Configuration
    url: str
    process: ManagedProcess

    def worker_pid(self) -> int:
        """The process that serves requests: gunicorn's one worker, or uvicorn itself."""
        if self.config.server == "uvicorn":
            return self.process.pid
        children = psutil.Process(self.process.pid).children()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(children)}")
        return children[0].pid

    def stop(self) -> None:
        self.process.stop()


def server_env(config: Configuration, database: Path, otlp_endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.server_settings",
        FLEETSCOPE_BENCH_SETUP=config.setup,
        FLEETSCOPE_BENCH_DB=str(database),
        FLEETSCOPE_NODE="bench",
        OTEL_SERVICE_NAME=config.service_name,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
        PYTHONPATH=str(ROOT),
    )
    if config.sample_rate is not None:
        env["FLEETSCOPE_BENCH_SAMPLE_RATE"] = repr(config.sample_rate)
    return env


def server_args(config: Configuration, port: int, workdir: Path) -> list[str]:
    if config.server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks.server_asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "benchmarks.server_wsgi:application",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "1",
        "--graceful-timeout",
        "5",
        # gunicorn >= 25.1 opens a control socket at one fixed path per user by default.
        "--control-socket",
        str(workdir / f"gunicorn-{config.name}.ctl"),
    ]
    if config.server == "gthread":
        args += ["--worker-class", "gthread", "--threads", str(GTHREAD_THREADS)]
    return args


def start_server(
    config: Configuration,
    database: Path,
    otlp_endpoint: str,
    workdir: Path,
    cores: Cores | None,
    ready_path: str = "/hello/",
    timeout: float = 60.0,
) -> Server:
    port = free_port()
    args = _taskset(cores.server if cores else None) + server_args(config, port, workdir)
    process = ManagedProcess(
        f"server {config.name}",
        args,
        workdir / f"server-{config.name}.log",
        env=server_env(config, database, otlp_endpoint),
        cwd=ROOT,
    ).start()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(url + ready_path, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        process.wait_ready(ready, timeout)
    except BaseException:
        process.stop()
        raise
    return Server(config, url, process)
