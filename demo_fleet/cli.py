"""`fleetscope demo up|down|status|report`: run the demo fleet under load and summarise it."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import psutil
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleetscope.collector.run import CollectorPorts
from fleetscope.errors import FleetscopeError

from .launcher import (
    DemoLauncher,
    DemoOptions,
    Terminated,
    balanced_workers,
    generated_dir,
    provisioning_dir,
)
from .progress import DemoDisplay
from .report import collect_report, render_report, requests_seen
from .scaletest import DEFAULT_STEPS, ScaleTestOptions, run_scale_test
from .scaletest_report import render_scale_test
from .state import LoadWindow, is_alive, load_state, remove_state, stop_components

app = typer.Typer(
    help="The demo fleet: N Django nodes under load, exporting to a local collector and "
    "Prometheus, and a report read back with the dashboards' queries.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out_console = Console(soft_wrap=False)
err_console = Console(stderr=True)

DEFAULT_WORKDIR = Path(".fleetscope/demo")
DEFAULT_SCALE_WORKDIR = Path(".fleetscope/scale-test")
DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"
DEFAULT_REPORT_WINDOW = "5m"
# How long `down` lets a running `up` stop its own processes before stopping them itself.
LAUNCHER_STOP_TIMEOUT_S = 60.0
PORTS = "Ports"
TUNING = "Telemetry tuning"


class DatabaseChoice(StrEnum):
    sqlite = "sqlite"
    postgres = "postgres"


class CacheChoice(StrEnum):
    locmem = "locmem"
    redis = "redis"


WorkdirOption = Annotated[
    Path, typer.Option(help="Where the demo keeps its state file, logs, database and data.")
]


def _fail(exc: FleetscopeError) -> typer.Exit:
    err_console.print(f"[red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM (`fleetscope demo down` from another terminal) unwinds like Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _uninterruptible() -> Iterator[None]:
    """While stopping, a second Ctrl-C must not leave half the fleet running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def int_list(value: str, option: str) -> tuple[int, ...]:
    """ "4,2,1" -> (4, 2, 1), with an error naming the option."""
    try:
        numbers = tuple(int(part) for part in value.replace(" ", "").split(","))
    except ValueError:
        raise FleetscopeError(
            f"{option} takes a number or a comma-separated list of numbers (e.g. 4,2,1), "
            f"not {value!r}."
        ) from None
    return numbers


def node_workers(workers: str | None, nodes: int, balanced: bool) -> tuple[int, tuple[int, ...]]:
    """(workers, per-node workers) from `--workers`: one number for all nodes, a list of one
    per node, or by default 2 each, or 3…2,1 behind the balancer."""
    if workers is None:
        return (2, ()) if not balanced else (2, balanced_workers(nodes))
    numbers = int_list(workers, "--workers")
    if len(numbers) == 1:
        return numbers[0], ()
    return max(numbers), numbers


@app.command()
def up(
    nodes: Annotated[int, typer.Option(help="Gunicorn nodes (node-1 … node-N).")] = 3,
    workers: Annotated[
        str | None,
        typer.Option(
            help="Gunicorn workers: one number for every node, or one per node (4,2,1). "
            "Default: 2, or 3…3,2,1 behind the balancer so the nodes saturate differently."
        ),
    ] = None,
    duration: Annotated[
        int | None,
        typer.Option(
            help="Seconds of load; then report and stop (see --keep). Default: until Ctrl-C."
        ),
    ] = None,
    users: Annotated[
        int | None,
        typer.Option(
            help="Locust users: all through the balancer, or without it split N:…:2:1 over "
            "the nodes. Default: N*(N+1)."
        ),
    ] = None,
    balancer: Annotated[
        bool,
        typer.Option(
            help="Put HAProxy in front of the nodes (stamps X-Request-Start; locust loads it). "
            "--no-balancer loads each node directly."
        ),
    ] = True,
    weights: Annotated[
        str | None,
        typer.Option(help="The balancer's weight of each node, e.g. 3,2,1. Default: all equal."),
    ] = None,
    db: Annotated[
        DatabaseChoice,
        typer.Option(help="sqlite: one shared file; postgres: a throwaway local cluster."),
    ] = DatabaseChoice.sqlite,
    cache: Annotated[
        CacheChoice,
        typer.Option(help="locmem: per-worker memory; redis: a throwaway redis-server."),
    ] = CacheChoice.locmem,
    tasks: Annotated[
        bool,
        typer.Option(
            help="A Celery worker node (worker-1) on a Redis broker runs the shop's background "
            "tasks; Redis is started for it whatever --cache says."
        ),
    ] = True,
    task_concurrency: Annotated[
        int, typer.Option(help="Prefork processes of the Celery worker node.")
    ] = 2,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    keep: Annotated[
        bool, typer.Option(help="Leave everything running after the load; stop it with `down`.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the final report as JSON.")
    ] = False,
    free_ports: Annotated[
        bool,
        typer.Option(help="Pick free ports instead of the defaults.", rich_help_panel=PORTS),
    ] = False,
    base_port: Annotated[
        int, typer.Option(help="node-i listens on base-port + i - 1.", rich_help_panel=PORTS)
    ] = 8001,
    prometheus_port: Annotated[int, typer.Option(rich_help_panel=PORTS)] = 9090,
    balancer_port: Annotated[
        int, typer.Option(help="Where the balancer takes requests.", rich_help_panel=PORTS)
    ] = 8000,
    balancer_metrics_port: Annotated[
        int, typer.Option(help="The balancer's Prometheus exporter.", rich_help_panel=PORTS)
    ] = 8404,
    otlp_grpc_port: Annotated[int, typer.Option(rich_help_panel=PORTS)] = 4317,
    otlp_http_port: Annotated[int, typer.Option(rich_help_panel=PORTS)] = 4318,
    collector_health_port: Annotated[int, typer.Option(rich_help_panel=PORTS)] = 13133,
    collector_metrics_port: Annotated[int, typer.Option(rich_help_panel=PORTS)] = 8888,
    collector_exporter_port: Annotated[int, typer.Option(rich_help_panel=PORTS)] = 8889,
    collector_pprof_port: Annotated[int, typer.Option(rich_help_panel=PORTS)] = 1777,
    collector_zpages_port: Annotated[int, typer.Option(rich_help_panel=PORTS)] = 55679,
    export_interval_ms: Annotated[
        int, typer.Option(help="How often each worker exports metrics.", rich_help_panel=TUNING)
    ] = 5000,
    scrape_interval: Annotated[
        int, typer.Option(help="Prometheus scrape interval, seconds.", rich_help_panel=TUNING)
    ] = 5,
    trace_sample_ratio: Annotated[
        float, typer.Option(help="Share of requests traced.", rich_help_panel=TUNING)
    ] = 0.1,
) -> None:
    """Start collector, Prometheus, the shop's nodes behind a load balancer, and load; report
    when the load ends."""
    try:
        worker_count, per_node = node_workers(workers, nodes, balancer)
        node_weights = int_list(weights, "--weights") if weights is not None else ()
    except FleetscopeError as exc:
        raise _fail(exc) from None
    options = DemoOptions(
        nodes=nodes,
        workers=worker_count,
        node_workers=per_node,
        balancer=balancer,
        weights=node_weights,
        balancer_port=balancer_port,
        balancer_metrics_port=balancer_metrics_port,
        duration_s=duration,
        users=users,
        db=db.value,
        cache=cache.value,
        workdir=workdir,
        base_port=base_port,
        prometheus_port=prometheus_port,
        collector_ports=CollectorPorts(
            otlp_grpc=otlp_grpc_port,
            otlp_http=otlp_http_port,
            health=collector_health_port,
            self_metrics=collector_metrics_port,
            prometheus_exporter=collector_exporter_port,
            pprof=collector_pprof_port,
            zpages=collector_zpages_port,
        ),
        free_ports=free_ports,
        keep=keep,
        export_interval_ms=export_interval_ms,
        scrape_interval_s=scrape_interval,
        trace_sample_ratio=trace_sample_ratio,
        tasks=tasks,
        task_concurrency=task_concurrency,
    )
    display = DemoDisplay(err_console)
    launcher = DemoLauncher(options, display)
    try:
        launcher.preflight()
    except FleetscopeError as exc:
        raise _fail(exc) from None
    leave_running = False
    failure: FleetscopeError | None = None
    with _sigterm_raises():
        try:
            with display:
                launcher.start()
                progress = launcher.start_load()
                result = launcher.run_load(progress, launcher_seen(launcher))
                if not result.interrupted:
                    launcher.settle(progress, launcher_seen(launcher))
            # The same window and time `fleetscope demo report` picks later from the state file.
            window, at = report_window(launcher.state.load, time.time())
            _print_report(launcher.state.prometheus_url, window, at, json_output)
            leave_running = options.keep
        except Terminated:
            err_console.print("Terminated: stopping the demo.")
        except KeyboardInterrupt:
            err_console.print("Interrupted: stopping the demo.")
        except FleetscopeError as exc:
            failure = exc
        finally:
            if leave_running:
                err_console.print(launcher.keep_running_note(), highlight=False)
            else:
                with _uninterruptible():
                    stopped = launcher.stop()
                err_console.print(
                    f"Stopped {len(stopped)} processes ({', '.join(stopped) or 'none left'}).",
                    highlight=False,
                )
    if failure is not None:
        raise _fail(failure)


def launcher_seen(launcher: DemoLauncher) -> Callable[[], dict[str, int]]:
    """Requests per node Prometheus has seen so far (for the live display)."""
    return lambda: requests_seen(launcher.state.prometheus_url)


def _print_report(url: str, window: str, at: float | None, json_output: bool) -> None:
    report = collect_report(url, window, at)
    if json_output:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        render_report(report, out_console)
    (err_console if json_output else out_console).print(
        f"Grafana dashboards: {generated_dir()} (JSON); provisioning for Grafana: "
        f"{provisioning_dir()}; `docker compose -f demo_fleet/docker-compose.yml up` runs "
        "them with Grafana.",
        highlight=False,
    )


def report_window(load: LoadWindow | None, now: float) -> tuple[str, float | None]:
    """Default window and evaluation time: the recorded load (as `up` reported it), else 5m."""
    if load is None:
        return DEFAULT_REPORT_WINDOW, None
    if load.ended is not None:
        # From the load's start to the evaluation time, which waits for the last export.
        at = min(now, load.ended + load.settle_s)
        return f"{max(1, math.ceil(at - load.started))}s", at
    return f"{max(10, math.ceil(now - load.started))}s", None


@app.command()
def report(
    prometheus: Annotated[
        str | None,
        typer.Option(help="Prometheus URL. Default: the demo's (from --workdir), else :9090."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON for machines.")
    ] = False,
    window: Annotated[
        str | None,
        typer.Option(
            help="Prometheus duration, e.g. 5m. Default: the demo's load period, else 5m."
        ),
    ] = None,
    service: Annotated[str, typer.Option(help="Regex on service.name (the `job` label).")] = ".*",
    workdir: WorkdirOption = DEFAULT_WORKDIR,
) -> None:
    """Per-node load, slow queries, N+1 patterns and cache hit ratios, from Prometheus."""
    try:
        state = load_state(workdir)
        url = prometheus or (state.prometheus_url if state and state.prometheus_url else None)
        at: float | None = None
        if window is None:
            # The recorded load period only describes the demo's own Prometheus.
            own = state is not None and (prometheus is None or prometheus == state.prometheus_url)
            window, at = report_window(state.load if own and state else None, time.time())
        result = collect_report(url or DEFAULT_PROMETHEUS, window, at, service)
    except FleetscopeError as exc:
        raise _fail(exc) from None
    if json_output:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        render_report(result, out_console)


@app.command()
def status(workdir: WorkdirOption = DEFAULT_WORKDIR) -> None:
    """Which processes of the demo are alive."""
    try:
        state = load_state(workdir)
    except FleetscopeError as exc:
        raise _fail(exc) from None
    if state is None:
        out_console.print(f"No demo recorded in {workdir} (start one with `fleetscope demo up`).")
        return
    table = Table(title=f"Demo in {state.workdir}", title_justify="left")
    for column in ("component", "role", "pid", "state"):
        table.add_column(column, no_wrap=True)
    table.add_column("endpoint", overflow="fold")
    rows = ([state.launcher] if state.launcher else []) + state.components
    for component in rows:
        alive = is_alive(component)
        table.add_row(
            component.name,
            component.role,
            str(component.pid),
            Text("alive", style="green") if alive else Text("gone", style="red"),
            component.endpoint,
        )
    out_console.print(table)
    out_console.print(
        f"Logs: {state.workdir / 'logs'} (collector and Prometheus: their own directories)",
        highlight=False,
    )
    if state.prometheus_url:
        out_console.print(
            f"Prometheus: {state.prometheus_url}  (`fleetscope demo report --workdir {workdir}`)",
            highlight=False,
        )


@app.command()
def down(workdir: WorkdirOption = DEFAULT_WORKDIR) -> None:
    """Stop exactly the processes the demo in --workdir started (by pid and process group)."""
    try:
        state = load_state(workdir)
    except FleetscopeError as exc:
        raise _fail(exc) from None
    if state is None:
        out_console.print(f"Nothing to stop: no demo recorded in {workdir}.")
        return
    launcher = state.launcher
    if launcher is not None and launcher.pid != os.getpid() and is_alive(launcher):
        # A running `up` stops its own processes in order when told to.
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(launcher.pid)
            process.terminate()
            process.wait(LAUNCHER_STOP_TIMEOUT_S)
    running = [c for c in reversed(state.components) if is_alive(c)]
    stop_components(running)
    remove_state(state)
    names = ", ".join(c.name for c in running) or "none were still running"
    out_console.print(f"Stopped the demo in {workdir}: {names}.", highlight=False)


@app.command("scale-test")
def scale_test(
    nodes: Annotated[int, typer.Option(help="Identical nodes behind the balancer.")] = 2,
    workers: Annotated[int, typer.Option(help="Gunicorn workers per node.")] = 2,
    steps: Annotated[str, typer.Option(help="Users per node at each step, increasing.")] = ",".join(
        str(s) for s in DEFAULT_STEPS
    ),
    step_seconds: Annotated[int, typer.Option(help="Length of every step.")] = 40,
    warmup_seconds: Annotated[
        int, typer.Option(help="Left out of each step's measurement (ramp, pipeline lag).")
    ] = 12,
    think_ms: Annotated[
        int,
        typer.Option(help="Each user's pause between requests (0: back to back)."),
    ] = 100,
    current_rps: Annotated[
        float | None,
        typer.Option(
            help="The fleet's usual requests/s, for the headroom figure. Default: the first "
            "step's throughput."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where scale-test.json and .png go. Default: --workdir.")
    ] = None,
    workdir: Annotated[
        Path, typer.Option(help="The fleet's state, logs and data.")
    ] = DEFAULT_SCALE_WORKDIR,
    keep: Annotated[bool, typer.Option(help="Leave the fleet running afterwards.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Step the load on a demo fleet behind HAProxy, read throughput and latency per step from
    Prometheus, fit the Universal Scalability Law: σ, κ, λ, peak, headroom, a plot."""
    began = time.monotonic()
    try:
        options = ScaleTestOptions(
            nodes=nodes,
            workers=workers,
            steps=int_list(steps, "--steps"),
            step_s=step_seconds,
            warmup_s=warmup_seconds,
            think_ms=think_ms,
            workdir=workdir,
            out=out,
            current_rps=current_rps,
            keep=keep,
        )
        options.validate()
    except FleetscopeError as exc:
        raise _fail(exc) from None
    display = DemoDisplay(err_console)
    with _sigterm_raises():
        try:
            with display:
                result = run_scale_test(options, display)
        except (Terminated, KeyboardInterrupt):
            err_console.print("Interrupted: the fleet was stopped.")
            raise typer.Exit(130) from None
        except FleetscopeError as exc:
            raise _fail(exc) from None
    elapsed = time.monotonic() - began
    if json_output:
        print(json.dumps({**result.to_dict(), "command_s": elapsed}, indent=2))
    else:
        render_scale_test(result, out_console, elapsed)
    if result.fit is None:
        raise typer.Exit(1)
