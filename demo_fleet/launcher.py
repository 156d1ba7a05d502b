"""The demo fleet launcher: collector, Prometheus, PostgreSQL/Redis, N gunicorn nodes, the load
balancer (HAProxy) in front of them, load.

`DemoLauncher` starts each piece, records its pid in the workdir's state file as soon as it
runs (so `fleetscope demo down` can stop it even if this process dies), and stops them in
reverse order. The CLI (`demo_fleet.cli`) decides when.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fleetscope.collector.locate import locate_collector, locate_prometheus
from fleetscope.collector.process import ManagedProcess, free_port, port_in_use
from fleetscope.collector.prometheus import PrometheusSettings, start_prometheus
from fleetscope.collector.run import CollectorPorts, CollectorSettings, start_collector
from fleetscope.errors import FleetscopeError

from . import balancer, datastores, loadgen
from .ports import HOST, PortPlan, check_plan, fixed_plan, free_plan
from .progress import BalancedLoad, DemoDisplay, LoadProgress, NodeLoad
from .state import (
    Component,
    DemoState,
    LoadWindow,
    is_alive,
    load_state,
    remove_state,
    stop_components,
)

Database = Literal["sqlite", "postgres"]
CacheBackend = Literal["locmem", "redis"]

SETTINGS_MODULE = "fleetscope.demo.settings"
WSGI_APP = "fleetscope.demo.wsgi:application"
SERVICE_NAME = "demo-shop"
MAX_NODES = 50
MAX_WEIGHT = 256  # HAProxy's largest server weight
# Behind the balancer the nodes differ by workers instead of by load: the last ones get 2
# and 1, the others 3, so the smallest saturates first (`--workers` overrides).
BALANCED_MAX_WORKERS = 3
# How long a node may take to import Django and bind its port.
NODE_START_TIMEOUT_S = 90.0
# Locust gets this long past its --run-time before it is stopped by force.
LOAD_GRACE_S = 20.0
# Sent/seen counts refresh this often while the load runs.
PROGRESS_INTERVAL_S = 2.0
# After the first settle time, how many more `settle` waits for counts that still grow.
SETTLE_ROUNDS = 3
# The locust behind the balancer: its stats prefix, log and state name (`locust-balancer`).
BALANCER_LOAD = "balancer"


def _default_workdir() -> Path:
    return Path(".fleetscope/demo")


@dataclass
class DemoOptions:
    """Everything `fleetscope demo up` can be told."""

    nodes: int = 3
    workers: int = 2
    # Workers of each node (overrides `workers`): `--workers 4,2,1`.
    node_workers: tuple[int, ...] = ()
    duration_s: int | None = None
    users: int | None = None
    db: Database = "sqlite"
    cache: CacheBackend = "locmem"
    workdir: Path = field(default_factory=_default_workdir)
    base_port: int = 8001
    prometheus_port: int = 9090
    collector_ports: CollectorPorts = field(default_factory=CollectorPorts)
    free_ports: bool = False
    keep: bool = False
    export_interval_ms: int = 5000
    scrape_interval_s: int = 5
    trace_sample_ratio: float = 0.1
    # The load balancer in front of the nodes (locust then loads it, not the nodes).
    balancer: bool = True
    balancer_port: int = 8000
    balancer_metrics_port: int = 8404
    weights: tuple[int, ...] = ()  # HAProxy server weights, one per node; default all 1

    # Celery: one worker node (worker-1) on a Redis broker, fed by the shop's views.
    tasks: bool = True
    task_concurrency: int = 2

    @property
    def workers_per_node(self) -> list[int]:
        if self.node_workers:
            return list(self.node_workers)
        return [self.workers] * self.nodes

    @property
    def server_weights(self) -> list[int]:
        return list(self.weights) if self.weights else [1] * self.nodes

    @property
    def total_users(self) -> int:
        return self.users if self.users is not None else loadgen.default_users(self.nodes)

    @property
    def settle_s(self) -> float:
        """One export interval plus one scrape, plus the collector's 1 s batch timeout and a
        second of slack."""
        return self.export_interval_ms / 1000 + self.scrape_interval_s + 2

    def validate(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise FleetscopeError(f"--nodes must be between 1 and {MAX_NODES}, not {self.nodes}.")
        if self.workers < 1:
            raise FleetscopeError(f"--workers must be at least 1, not {self.workers}.")
        if self.node_workers and len(self.node_workers) != self.nodes:
            raise FleetscopeError(
                f"--workers lists {len(self.node_workers)} numbers for {self.nodes} nodes; give "
                "one number for every node, or a single number for all."
            )
        if any(w < 1 for w in self.node_workers):
            raise FleetscopeError("--workers: every node needs at least 1 worker.")
        if self.weights and not self.balancer:
            raise FleetscopeError("--weights sets the load balancer's weights: drop --no-balancer.")
        if self.weights and len(self.weights) != self.nodes:
            raise FleetscopeError(
                f"--weights lists {len(self.weights)} numbers for {self.nodes} nodes; give one "
                "weight per node."
            )
        if any(not 1 <= w <= MAX_WEIGHT for w in self.weights):
            raise FleetscopeError(f"--weights must be between 1 and {MAX_WEIGHT}.")
        if self.duration_s is not None and self.duration_s < 1:
            raise FleetscopeError(f"--duration must be at least 1 second, not {self.duration_s}.")
        if self.db not in ("sqlite", "postgres"):
            raise FleetscopeError(f"--db must be sqlite or postgres, not {self.db!r}.")
        if self.cache not in ("locmem", "redis"):
            raise FleetscopeError(f"--cache must be locmem or redis, not {self.cache!r}.")
        if self.export_interval_ms < 100:
            raise FleetscopeError("--export-interval-ms must be at least 100.")
        if self.scrape_interval_s < 1:
            raise FleetscopeError("--scrape-interval must be at least 1 second.")
        if not 0.0 <= self.trace_sample_ratio <= 1.0:
            raise FleetscopeError("--trace-sample-ratio must be between 0 and 1.")
        if self.task_concurrency < 1:
            raise FleetscopeError(
                f"--task-concurrency must be at least 1, not {self.task_concurrency}."
            )
        if self.balancer:
            if self.total_users < 1:
                raise FleetscopeError(f"--users must be at least 1, not {self.total_users}.")
        else:
            loadgen.users_per_node(self.total_users, self.nodes)

    def port_plan(self) -> PortPlan:
        if self.free_ports:
            return free_plan(self.nodes, balancer=self.balancer)
        ports = (self.balancer_port, self.balancer_metrics_port) if self.balancer else None
        return fixed_plan(
            self.collector_ports, self.prometheus_port, self.base_port, self.nodes, ports
        )


def balanced_workers(nodes: int) -> tuple[int, ...]:
    """Default workers per node behind the balancer: ..., 3, 2, 1 (node-N smallest)."""
    return tuple(max(1, min(BALANCED_MAX_WORKERS, nodes - i)) for i in range(nodes))


def node_name(index: int) -> str:
    return f"node-{index}"


def node_env(
    base: dict[str, str],
    *,
    workdir: Path,
    node: str,
    otlp_endpoint: str,
    export_interval_ms: int,
    trace_sample_ratio: float,
    database_url: str | None,
    redis_url: str | None,
) -> dict[str, str]:
    """The environment of one node (and of migrate/seed): identity, export target, stores.

    Inherited OTEL_* variables and DATABASE_URL/REDIS_URL are dropped first, so the demo
    exports to its own collector and uses the stores the options chose, whatever the shell
    has set.
    """
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith("OTEL_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        FLEETSCOPE_DEMO_DIR=str(workdir),
        FLEETSCOPE_DEMO_DB=str(workdir / "demo.sqlite3"),
        FLEETSCOPE_NODE=node,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
        OTEL_METRIC_EXPORT_INTERVAL=str(export_interval_ms),
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG=str(trace_sample_ratio),
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def gunicorn_command(port: int, workers: int) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        WSGI_APP,
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        # Load Django once in the master; the telemetry app starts exporting per worker.
        "--preload",
        "--graceful-timeout",
        "5",
        "--timeout",
        "60",
    ]
    if _gunicorn_version() >= (25, 1):
        # Since 25.1 every gunicorn opens a control socket at one fixed path per user;
        # several nodes on one machine would fight over it, and the demo never uses it.
        command.append("--no-control-socket")
    return command


def _gunicorn_version() -> tuple[int, ...]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple(int(part) for part in re.findall(r"\d+", version("gunicorn"))[:2])
    except PackageNotFoundError:
        return (0,)


TASK_WORKER = "worker-1"
TASK_QUEUES = ("celery", "reports")
CELERY_APP = "fleetscope.demo.celery_app"
BROKER_ENV = "FLEETSCOPE_DEMO_BROKER_URL"
# Redis database of the task broker; database 0 is the cache's with --cache redis.
BROKER_DB = 1


def celery_worker_command(name: str, concurrency: int) -> list[str]:
    """A prefork Celery worker node consuming the shop's queues."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        CELERY_APP,
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--queues",
        ",".join(TASK_QUEUES),
        "--hostname",
        f"{name}@%h",
        # INFO: the "ready." line the launcher waits for (and one line per task).
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def _log_says(path: Path, text: bytes) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return text in path.read_bytes()
        except OSError:
            return False

    return probe


def _port_open(port: int) -> Callable[[], bool]:
    # A bare TCP connect, not an HTTP request: Prometheus' request counts then equal
    # exactly what locust sent.
    return lambda: port_in_use(port, HOST)


@dataclass
class LoadResult:
    progress: LoadProgress
    interrupted: bool


class Terminated(KeyboardInterrupt):
    """SIGTERM (e.g. from `fleetscope demo down`): stop everything, print no report."""


def _counts_or_none(seen: Callable[[], dict[str, int]]) -> dict[str, int] | None:
    try:
        return seen()
    except FleetscopeError:
        return None


class DemoLauncher:
    def __init__(self, options: DemoOptions, display: DemoDisplay) -> None:
        self.options = options
        self.display = display
        self.workdir = options.workdir.resolve()
        self.state = DemoState(self.workdir)
        self.processes: dict[str, ManagedProcess] = {}
        self.plan: PortPlan | None = None
        self.database_url: str | None = None
        self.redis_url: str | None = None
        self.redis_server: datastores.RedisServer | None = None
        self.broker_url: str | None = None
        self.node_urls: dict[str, str] = {}
        self.load_processes: dict[str, ManagedProcess] = {}
        self.balancer: balancer.BalancerSettings | None = None

    # -- before anything starts ------------------------------------------------------

    def preflight(self) -> PortPlan:
        """Check options, binaries, a demo already running here and every port; start nothing."""
        self.options.validate()
        previous = load_state(self.workdir)
        if previous is not None:
            running = [c for c in previous.components if is_alive(c)]
            if running:
                listed = ", ".join(f"{c.name} (pid {c.pid})" for c in running[:4])
                raise FleetscopeError(
                    f"A demo is already running from {self.workdir}: {listed}. Stop it with "
                    f"`fleetscope demo down --workdir {self.options.workdir}` or choose another "
                    "--workdir."
                )
            remove_state(previous)
        plan = self.options.port_plan()
        check_plan(plan)
        locate_collector()
        locate_prometheus()
        for module, extra in (("gunicorn", "demo"), ("locust", "demo")):
            if importlib.util.find_spec(module) is None:
                raise FleetscopeError(
                    f"The demo needs {module}; install it with `pip install 'fleetscope[{extra}]'`."
                )
        if self.options.db == "postgres":
            datastores.locate_postgres()
        if self.options.cache == "redis":
            datastores.locate_redis()
        if self.options.balancer:
            balancer.locate_haproxy()
        if self.options.tasks:
            self._preflight_tasks()
        self.plan = plan
        return plan

    # -- starting ----------------------------------------------------------------------

    def start(self) -> None:
        """Everything but the load, in dependency order. On failure what did start stays
        recorded in the state file; `stop()` (or `fleetscope demo down`) ends it."""
        plan = self.plan or self.preflight()
        self.state.launcher = Component.of("launcher", "launcher", os.getpid())
        self.state.save()
        self._start_collector(plan)
        self._start_prometheus(plan)
        if self.options.db == "postgres":
            self._start_postgres()
        if self.options.cache == "redis":
            self._start_redis()
        if self.options.tasks:
            self._start_broker()
        self._prepare_database()
        self._start_nodes(plan)
        if self.options.balancer:
            self._start_balancer(plan)
        if self.options.tasks:
            self._start_task_worker()

    def _record(
        self,
        name: str,
        role: str,
        process: ManagedProcess,
        endpoint: str,
        stop_signal: str = "SIGTERM",
    ) -> None:
        self.processes[name] = process
        self.state.add(
            Component.of(
                name,
                role,
                process.pid,
                endpoint=endpoint,
                log=str(process.log_path),
                stop_signal=stop_signal,
            )
        )

    def add_process(self, name: str, role: str, process: ManagedProcess, endpoint: str) -> None:
        """Record a process started beside the launcher (the scale test's locust), so that
        `stop()` and `fleetscope demo down` stop it like every other."""
        self._record(name, role, process, endpoint)

    def _start_collector(self, plan: PortPlan) -> None:
        settings = CollectorSettings(ports=plan.collector, workdir=self.workdir / "collector")
        settings.traces_file.unlink(missing_ok=True)
        endpoint = plan.collector.otlp_http_endpoint
        self.display.component("collector", "starting", endpoint=endpoint)
        process = start_collector(settings)
        self._record("collector", "collector", process, endpoint)
        self.state.otlp_endpoint = endpoint
        self.state.save()
        self.display.component(
            "collector",
            "ready",
            process.pid,
            endpoint,
            f"Prometheus exporter {plan.collector.prometheus_exporter_target}",
        )

    def _start_prometheus(self, plan: PortPlan) -> None:
        workdir = self.workdir / "prometheus"
        # Every run starts with empty storage: no series of an earlier run in the report.
        shutil.rmtree(workdir / "prometheus-data", ignore_errors=True)
        settings = PrometheusSettings(
            port=plan.prometheus,
            workdir=workdir,
            exporter_targets=(plan.collector.prometheus_exporter_target,),
            self_metrics_targets=(plan.collector.self_metrics_target,),
            scrape_interval=f"{self.options.scrape_interval_s}s",
            rule_files=_rule_files(),
            balancer_targets=(
                (f"{HOST}:{plan.balancer_metrics}",) if plan.balancer_metrics is not None else ()
            ),
        )
        self.display.component("prometheus", "starting", endpoint=settings.url)
        process = start_prometheus(settings)
        self._record("prometheus", "prometheus", process, settings.url)
        self.state.prometheus_url = settings.url
        self.state.save()
        self.display.component("prometheus", "ready", process.pid, settings.url)

    def _start_postgres(self) -> None:
        port = free_port(HOST)
        self.display.component("postgres", "starting", endpoint=f"{HOST}:{port}")
        data_dir, outside = datastores.postgres_data_dir(self.workdir)
        if outside:
            self.state.cleanup_dirs.append(str(data_dir.parent))
            self.state.save()
        cluster = datastores.start_postgres(
            self.workdir, port, self.workdir / "logs" / "postgres.log", data_dir, outside
        )
        # Fast shutdown: SIGTERM would wait for every client to disconnect.
        self._record("postgres", "database", cluster.process, cluster.url, "SIGINT")
        self.database_url = cluster.url
        self.display.component("postgres", "ready", cluster.process.pid, cluster.url)

    def _start_redis(self) -> None:
        port = free_port(HOST)
        self.display.component("redis", "starting", endpoint=f"{HOST}:{port}")
        server = datastores.start_redis(self.workdir, port, self.workdir / "logs" / "redis.log")
        self._record("redis", "cache", server.process, server.url)
        self.redis_server = server
        self.redis_url = server.url
        self.display.component("redis", "ready", server.process.pid, server.url)

    # -- Celery tasks ------------------------------------------------------------------

    def _preflight_tasks(self) -> None:
        if importlib.util.find_spec("celery") is None:
            raise FleetscopeError(
                "The demo's background tasks need Celery; install it with "
                "`pip install 'fleetscope[demo]'`, or run without tasks (--no-tasks)."
            )
        try:
            datastores.locate_redis()
        except FleetscopeError as exc:
            raise FleetscopeError(
                f"The demo's task broker is Redis, whatever --cache says. {exc} Or run without "
                "tasks (--no-tasks)."
            ) from None

    def _start_broker(self) -> None:
        """The task broker: the cache's Redis (its database 1) with --cache redis, else a
        Redis of its own. Locmem stays the cache then: only the tasks use this Redis."""
        server = self.redis_server
        if server is None:
            port = free_port(HOST)
            self.display.component("redis", "starting", endpoint=f"{HOST}:{port}")
            server = datastores.start_redis(self.workdir, port, self.workdir / "logs" / "redis.log")
            self._record("redis", "broker", server.process, server.url)
            self.redis_server = server
            self.display.component("redis", "ready", server.process.pid, server.url, "broker")
        self.broker_url = f"redis://127.0.0.1:{server.port}/{BROKER_DB}"

    def _start_task_worker(self) -> None:
        """One Celery worker node (prefork), exporting like the web nodes."""
        name = TASK_WORKER
        log = self.workdir / "logs" / f"{name}.log"
        process = ManagedProcess(
            name,
            celery_worker_command(name, self.options.task_concurrency),
            log,
            env=self._env(name),
            cwd=self.workdir,
        ).start()
        self._record(name, "worker", process, self.broker_url or "")
        self.display.component(name, "starting", process.pid, self.broker_url or "")
        process.wait_ready(_log_says(log, b" ready."), NODE_START_TIMEOUT_S)
        self.display.component(
            name,
            "ready",
            process.pid,
            self.broker_url or "",
            f"{self.options.task_concurrency} processes, queues {', '.join(TASK_QUEUES)}",
        )

    def _env(self, node: str) -> dict[str, str]:
        env = self._node_env(node)
        env.pop(BROKER_ENV, None)  # never a broker inherited from the shell
        if self.broker_url:
            env[BROKER_ENV] = self.broker_url
        return env

    def _node_env(self, node: str) -> dict[str, str]:
        return node_env(
            dict(os.environ),
            workdir=self.workdir,
            node=node,
            otlp_endpoint=self.state.otlp_endpoint,
            export_interval_ms=self.options.export_interval_ms,
            trace_sample_ratio=self.options.trace_sample_ratio,
            database_url=self.database_url,
            redis_url=self.redis_url,
        )

    def _prepare_database(self) -> None:
        """migrate + seed_shop once, before any node starts (they share the database)."""
        target = "PostgreSQL" if self.database_url else str(self.workdir / "demo.sqlite3")
        # Management commands export like any process; the demo's dashboards and report are
        # about the nodes under load, so the one-off setup stays out of them.
        env = {**self._env("setup"), "OTEL_SDK_DISABLED": "true"}
        log = self.workdir / "logs" / "setup.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        for step, args in (
            ("migrating", ["migrate", "--no-input", "-v", "1"]),
            ("seeding", ["seed_shop", "-v", "1"]),
        ):
            self.display.component("database", step, note=target)
            with log.open("ab") as out:
                result = subprocess.run(
                    [sys.executable, "-m", "django", *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=600,
                )
            if result.returncode != 0:
                self.display.component("database", "failed", note=f"log: {log}")
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise FleetscopeError(f"`django-admin {args[0]}` failed (log {log}):\n{tail}")
        self.display.component("database", "ready", note=target)

    def _start_nodes(self, plan: PortPlan) -> None:
        started: list[tuple[str, int, ManagedProcess]] = []
        workers = self.options.workers_per_node
        for index, port in enumerate(plan.nodes, 1):
            name = node_name(index)
            url = f"http://{HOST}:{port}"
            process = ManagedProcess(
                name,
                gunicorn_command(port, workers[index - 1]),
                self.workdir / "logs" / f"{name}.log",
                env=self._env(name),
                cwd=self.workdir,
            ).start()
            self._record(name, "node", process, url)
            self.display.component(name, "starting", process.pid, url)
            started.append((name, port, process))
        for index, (name, port, process) in enumerate(started):
            process.wait_ready(_port_open(port), NODE_START_TIMEOUT_S)
            self.node_urls[name] = f"http://{HOST}:{port}"
            self.display.component(
                name,
                "ready",
                process.pid,
                self.node_urls[name],
                f"{workers[index]} workers",
            )

    def _start_balancer(self, plan: PortPlan) -> None:
        """HAProxy in front of the nodes (started once they listen), scraped by Prometheus."""
        assert plan.balancer is not None and plan.balancer_metrics is not None
        servers = [
            balancer.Server(node_name(index), port, weight)
            for index, (port, weight) in enumerate(
                zip(plan.nodes, self.options.server_weights, strict=True), 1
            )
        ]
        settings = balancer.BalancerSettings(
            port=plan.balancer,
            metrics_port=plan.balancer_metrics,
            backend=SERVICE_NAME,
            servers=servers,
            workdir=self.workdir / "haproxy",
        )
        self.display.component("balancer", "starting", endpoint=settings.url)
        process = balancer.start_balancer(settings, self.workdir / "logs" / "haproxy.log")
        self._record("balancer", "balancer", process, settings.url)
        self.balancer = settings
        weights = ", ".join(f"{s.name} {s.weight}" for s in servers)
        self.display.component(
            "balancer",
            "ready",
            process.pid,
            settings.url,
            f"HAProxy round-robin, weights {weights}; exporter {settings.metrics_target}",
        )

    # -- load ------------------------------------------------------------------------

    def start_load(self) -> LoadProgress:
        if self.balancer is not None:
            return self._start_balanced_load(self.balancer)
        shares = loadgen.users_per_node(self.options.total_users, self.options.nodes)
        locust_dir = self.workdir / "locust"
        shutil.rmtree(locust_dir, ignore_errors=True)
        locust_dir.mkdir(parents=True)
        progress = LoadProgress(time.time(), self.options.duration_s)
        for (name, url), users in zip(self.node_urls.items(), shares, strict=True):
            process = ManagedProcess(
                f"locust {name}",
                loadgen.locust_command(url, users, locust_dir / name, self.options.duration_s),
                self.workdir / "logs" / f"locust-{name}.log",
                cwd=self.workdir,
            ).start()
            self._record(f"locust-{name}", "load", process, url)
            self.load_processes[name] = process
            progress.nodes.append(NodeLoad(name, users))
        self.state.load = LoadWindow(started=progress.started, settle_s=self.options.settle_s)
        self.state.save()
        self.display.start_load(progress)
        return progress

    def _start_balanced_load(self, settings: balancer.BalancerSettings) -> LoadProgress:
        """One locust against the balancer, which spreads the requests over the nodes."""
        locust_dir = self.workdir / "locust"
        shutil.rmtree(locust_dir, ignore_errors=True)
        locust_dir.mkdir(parents=True)
        users = self.options.total_users
        progress = LoadProgress(
            time.time(), self.options.duration_s, balancer=BalancedLoad(settings.url, users)
        )
        process = ManagedProcess(
            "locust balancer",
            loadgen.locust_command(
                settings.url, users, locust_dir / BALANCER_LOAD, self.options.duration_s
            ),
            self.workdir / "logs" / f"locust-{BALANCER_LOAD}.log",
            cwd=self.workdir,
        ).start()
        self._record(f"locust-{BALANCER_LOAD}", "load", process, settings.url)
        self.load_processes[BALANCER_LOAD] = process
        workers = self.options.workers_per_node
        weights = self.options.server_weights
        for index, name in enumerate(self.node_urls):
            progress.nodes.append(NodeLoad(name, 0, workers=workers[index], weight=weights[index]))
        self.state.load = LoadWindow(started=progress.started, settle_s=self.options.settle_s)
        self.state.save()
        self.display.start_load(progress)
        return progress

    def run_load(self, progress: LoadProgress, seen: Callable[[], dict[str, int]]) -> LoadResult:
        """Wait for the load to finish (or Ctrl-C), watching every process and the counts."""
        interrupted = False
        last_counts = 0.0
        try:
            while True:
                self.check_alive()
                if all(not p.running() for p in self.load_processes.values()):
                    self._check_load_ran(progress)
                    break
                duration = self.options.duration_s
                if duration is not None and progress.elapsed() > duration + LOAD_GRACE_S:
                    break
                if time.monotonic() - last_counts >= PROGRESS_INTERVAL_S:
                    self._update_counts(progress, seen)
                    last_counts = time.monotonic()
                self.display.update_load()
                time.sleep(0.25)
        except Terminated:
            raise
        except KeyboardInterrupt:
            interrupted = True
        self.stop_load()
        self.display.end_load(summary=False)
        self.state.load = LoadWindow(
            started=progress.started, ended=progress.ended, settle_s=self.options.settle_s
        )
        self.state.save()
        self._update_counts(progress, seen)
        return LoadResult(progress, interrupted)

    def _check_load_ran(self, progress: LoadProgress) -> None:
        """Locust stopping well before --duration (or at all, without one) is a failure."""
        duration = self.options.duration_s
        if duration is not None and progress.elapsed() >= duration - 2:
            return
        name, process = next(iter(self.load_processes.items()))
        raise FleetscopeError(
            f"The load for {name} stopped after {progress.elapsed():.0f} s (exit code "
            f"{process.popen.returncode if process.popen else None}); log {process.log_path}:\n"
            f"{process.log_tail()}"
        )

    def stop_load(self) -> None:
        for name in self.load_processes:
            component = self.state.component(f"locust-{name}")
            if component is not None:
                stop_components([component], timeout=15)

    def settle(self, progress: LoadProgress, seen: Callable[[], dict[str, int]]) -> None:
        """Wait one export interval + one scrape so the last requests reach Prometheus, then
        until the counts Prometheus holds stop growing (a busy machine delays the last
        export), at most SETTLE_ROUNDS more settle times. The report is evaluated then."""
        self.display.component(
            "metrics", "settling", note=f"{self.options.settle_s:.0f} s for the last export+scrape"
        )
        time.sleep(self.options.settle_s)
        before = _counts_or_none(seen)
        for _ in range(SETTLE_ROUNDS):
            time.sleep(self.options.settle_s)
            after = _counts_or_none(seen)
            if after == before:
                break
            before = after
        load = self.state.load
        if load is not None and load.ended is not None:
            # The report is evaluated at `ended + settle_s`: now, once the counts are in.
            settle_s = max(self.options.settle_s, time.time() - load.ended)
            self.state.load = dataclasses.replace(load, settle_s=settle_s)
            self.state.save()
        self._update_counts(progress, seen)
        self.display.component("metrics", "done")
        self.display.end_load()

    def _update_counts(self, progress: LoadProgress, seen: Callable[[], dict[str, int]]) -> None:
        try:
            seen_counts = seen()
        except FleetscopeError:
            seen_counts = {}
        if progress.balancer is not None:
            self._update_balanced_counts(progress.balancer, progress.nodes)
        for node in progress.nodes:
            if progress.balancer is None:
                stats = loadgen.read_stats(self.workdir / "locust" / node.node)
                if stats is not None:
                    node.sent, node.failures = stats.requests, stats.failures
            if node.node in seen_counts:
                node.seen = seen_counts[node.node]
        self.display.update_load()

    def _update_balanced_counts(self, load: BalancedLoad, nodes: list[NodeLoad]) -> None:
        """What locust sent to the balancer, and what the balancer passed to each node."""
        stats = loadgen.read_stats(self.workdir / "locust" / BALANCER_LOAD)
        if stats is not None:
            load.sent, load.failures = stats.requests, stats.failures
        if self.balancer is None:
            return
        try:
            forwarded = balancer.server_responses(self.balancer.metrics_url)
        except FleetscopeError:
            return
        for node in nodes:
            if node.node in forwarded:
                node.sent = forwarded[node.node]

    def check_alive(self) -> None:
        """Raise with the log tail when a server process (not the load) has exited."""
        for name, process in self.processes.items():
            if name.startswith("locust-"):
                continue
            if not process.running():
                code = process.popen.returncode if process.popen else None
                self.display.component(name, "failed", note=f"exit code {code}")
                raise FleetscopeError(
                    f"{name} exited unexpectedly (code {code}); log {process.log_path}:\n"
                    f"{process.log_tail()}"
                )

    # -- stopping --------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Stop every recorded process, newest first, and forget the state file; the names
        of those that were still running."""
        stopped = []
        for component in reversed(self.state.components):
            if is_alive(component):
                stop_components([component])
                stopped.append(component.name)
        for process in self.processes.values():
            if process.popen is not None:
                process.popen.poll()  # already reaped by the stop: settle its Popen
        remove_state(self.state)
        return stopped

    def keep_running_note(self) -> str:
        return (
            f"The fleet keeps running (Prometheus {self.state.prometheus_url}). "
            f"`fleetscope demo status --workdir {self.options.workdir}` lists it, "
            f"`fleetscope demo down --workdir {self.options.workdir}` stops it."
        )


def _rule_files() -> tuple[Path, ...]:
    """The generated alert and SLO rules, so the demo's Prometheus evaluates what users would
    deploy (and the SLO dashboard has its recorded series)."""
    names = ("fleetscope-rules.yml", "fleetscope-slo-rules.yml")
    return tuple(path for name in names if (path := generated_dir() / name).is_file())


def generated_dir() -> Path:
    """dashboards/generated: the dashboard JSON and alert rules `fleetscope dashboards build`
    writes (found without importing the Grafana SDK)."""
    import fleetscope.dashboards

    return Path(fleetscope.dashboards.__file__).resolve().parent / "generated"


def provisioning_dir() -> Path:
    import fleetscope.dashboards

    return Path(fleetscope.dashboards.__file__).resolve().parent / "provisioning"
