"""`python -m benchmarks.server_overhead`: overhead under real servers, driven by wrk on loopback.

Every configuration is served by gunicorn (one sync worker; gthread and uvicorn variants)
pinned to its own core, while wrk and the real OpenTelemetry Collector that the
instrumented configurations export to share the other cores. Repetitions alternate the
configurations (A B C … A B C …), each server start gets a fresh copy of the seeded
database and a warm-up, and every figure is reported as median (min-max) across
repetitions. `--profile` records the serving process with py-spy instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import server_report, wrk
from .server_collector import BenchCollector, collector_version, start_bench_collector
from .server_db import build_template, copy_for_run
from .server_matrix import VIEWS, Configuration, select, select_views
from .server_process import Cores, Server, start_server
from .server_report import Lifetime, Results, Run

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "performance-server.png"
# gthread and uvicorn differ from the sync worker in how they serve, not in what Fleetscope
# does per request: they are compared on the two views the targets name, which keeps
# the full comparison inside 15 minutes on 2 cores.
SERVER_VARIANT_VIEWS = ("hello", "mixed")
console = Console(stderr=True, width=160)
out = Console(width=160)


@dataclass(frozen=True)
class Plan:
    configs: list[Configuration]
    views: list[str]
    repetitions: int
    duration_s: int
    warmup_s: int
    connections: int

    def views_of(self, config: Configuration) -> list[str]:
        if config.server == "sync":
            return self.views
        return [v for v in self.views if v in SERVER_VARIANT_VIEWS] or self.views

    def seconds(self, start_s: float = 3.0) -> float:
        """Planned wall time, counting `start_s` to start and stop each server."""
        per_rep = sum(
            start_s + self.warmup_s + self.duration_s * len(self.views_of(c)) for c in self.configs
        )
        return per_rep * self.repetitions


class Progress:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.started = time.monotonic()
        self.done_planned = 0.0
        self.total_planned = plan.seconds()

    def advance(self, planned_s: float) -> None:
        self.done_planned += planned_s

    def eta(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.done_planned <= 0:
            return _clock(self.total_planned)
        rate = elapsed / self.done_planned
        return _clock((self.total_planned - self.done_planned) * rate)


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def wrk_version() -> str:
    try:
        out = subprocess.run(
            [wrk.locate_wrk(), "--version"], capture_output=True, text=True, timeout=10
        )
    except (wrk.WrkError, OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = (out.stdout + out.stderr).strip().splitlines()
    return first[0].split()[1] if first and len(first[0].split()) > 1 else "unknown"


@contextmanager
def bench_collector(workdir: Path, cores: Cores | None) -> Iterator[BenchCollector]:
    collector = start_bench_collector(workdir / "collector", cores.load if cores else None)
    try:
        yield collector
    finally:
        collector.stop()


@contextmanager
def served(
    config: Configuration,
    template: Path,
    workdir: Path,
    collector: BenchCollector,
    cores: Cores | None,
    tag: str,
) -> Iterator[Server]:
    database = copy_for_run(template, workdir / f"{config.name}-{tag}.sqlite3")
    server = start_server(config, database, collector.otlp_endpoint, workdir, cores)
    try:
        yield server
    finally:
        server.stop()
        database.unlink(missing_ok=True)


def measure(
    plan: Plan,
    workdir: Path,
    collector: BenchCollector,
    template: Path,
    cores: Cores | None,
    results: Results,
) -> None:
    script = wrk.write_script(workdir)
    load_cpus = cores.load if cores else None
    progress = Progress(plan)
    for rep in range(1, plan.repetitions + 1):
        for config in plan.configs:
            views = plan.views_of(config)
            paths = [VIEWS[v][0] for v in views]
            before = collector.received()
            served_requests = 0
            with served(config, template, workdir, collector, cores, f"r{rep}") as server:
                warm = wrk.run(
                    server.url, paths, plan.warmup_s, script, plan.connections, load_cpus
                )
                _check(warm, config, "warm-up", server)
                served_requests += warm.requests + 1
                progress.advance(3.0 + plan.warmup_s)
                for view in views:
                    result = wrk.run(
                        server.url,
                        [VIEWS[view][0]],
                        plan.duration_s,
                        script,
                        plan.connections,
                        load_cpus,
                    )
                    _check(result, config, view, server)
                    served_requests += result.requests
                    results.runs.append(
                        Run(
                            config.name,
                            view,
                            rep,
                            result.requests,
                            result.duration_s,
                            result.rps,
                            result.p50_ms,
                            result.p90_ms,
                            result.p99_ms,
                            result.errors,
                        )
                    )
                    progress.advance(plan.duration_s)
                    print(
                        f"rep {rep}/{plan.repetitions}  {config.name:<22} {view:<16} "
                        f"{result.rps:8.1f} req/s  p50 {result.p50_ms:7.2f} ms  "
                        f"p99 {result.p99_ms:7.2f} ms   ETA {progress.eta()}",
                        file=sys.stderr,
                        flush=True,
                    )
            received = collector.received() - before  # the server flushed on its way out
            results.lifetimes.append(
                Lifetime(config.name, rep, served_requests, received.spans, received.metric_points)
            )


def _check(result: wrk.WrkResult, config: Configuration, what: str, server: Server) -> None:
    if result.requests == 0 or result.errors:
        raise SystemExit(
            f"{config.name} {what}: {result.requests} requests, {result.errors} errors; "
            f"server log:\n{server.process.log_tail(40)}"
        )


def print_table(results: Results) -> None:
    table = Table(title="Real-server overhead: median (min-max) across repetitions")
    for column in ("configuration", "view", "req/s", "ratio to bare", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for s in server_report.summarize(results):
        ratio = s.ratio
        table.add_row(
            s.config,
            s.view,
            f"{s.rps.median:.0f} ({s.rps.low:.0f}-{s.rps.high:.0f})",
            f"{ratio.median:.3f} ({ratio.low:.3f}-{ratio.high:.3f})" if ratio else "-",
            f"{s.p50_ms.median:.2f} ({s.p50_ms.low:.2f}-{s.p50_ms.high:.2f})",
            f"{s.p99_ms.median:.2f} ({s.p99_ms.low:.2f}-{s.p99_ms.high:.2f})",
        )
    out.print(table)
    for name, value, met in server_report.targets(server_report.summarize(results)):
        out.print(f"{'[green]met' if met else '[red]NOT met'}[/] {name}: {value}")


def run_comparison(plan: Plan, workdir: Path, note: str | None) -> Results:
    cores = Cores.split()
    results = Results()
    results.meta = {
        **server_report.machine(),
        "pinning": (
            f"server on core {sorted(cores.server)}, wrk and collector on {sorted(cores.load)}"
            if cores
            else "no pinning (one core)"
        ),
        "wrk": wrk_version(),
        "collector": collector_version(),
        "repetitions": plan.repetitions,
        "configs": len(plan.configs),
        "duration_s": plan.duration_s,
        "warmup_s": plan.warmup_s,
        "connections": plan.connections,
        "note": note,
    }
    started = time.monotonic()
    console.print(
        f"[bold]{len(plan.configs)} configurations x {len(plan.views)} views x "
        f"{plan.repetitions} repetitions, {plan.duration_s} s per view: about "
        f"{_clock(plan.seconds())}[/] ({results.meta['pinning']})"
    )
    console.print("building the benchmark database (once)…")
    template = build_template(workdir / "template.sqlite3")
    with bench_collector(workdir, cores) as collector:
        measure(plan, workdir, collector, template, cores, results)
    results.meta["elapsed_s"] = round(time.monotonic() - started)
    return results


def main(
    config: Annotated[
        list[str] | None,
        typer.Option("--config", "-c", help="Configuration to run (repeatable; default all)."),
    ] = None,
    view: Annotated[
        list[str] | None, typer.Option("--view", "-v", help="View to load (repeatable).")
    ] = None,
    repetitions: Annotated[int, typer.Option(help="Alternating repetitions.")] = 5,
    duration: Annotated[int, typer.Option(help="Seconds of load per view and run.")] = 2,
    warmup: Annotated[int, typer.Option(help="Seconds of warm-up per server start.")] = 3,
    connections: Annotated[int, typer.Option(help="wrk connections.")] = 4,
    quick: Annotated[
        bool, typer.Option(help="One repetition: a look in about 3 minutes, not a result.")
    ] = False,
    docs: Annotated[
        bool | None,
        typer.Option(help="Write docs/performance.md and the plot (default: unless --quick)."),
    ] = None,
    note: Annotated[
        str | None, typer.Option(help="Conditions of this run, printed with the figures.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Raw results file.")] = None,
    from_json: Annotated[
        Path | None, typer.Option(help="Report a saved --json file instead of measuring.")
    ] = None,
    profile: Annotated[
        bool, typer.Option(help="Profile one configuration with py-spy instead of comparing.")
    ] = False,
    profile_seconds: Annotated[int, typer.Option(help="Seconds of py-spy recording.")] = 20,
    workdir: Annotated[
        Path | None, typer.Option(help="Keep servers' logs and data here (default: temporary).")
    ] = None,
    list_all: Annotated[
        bool, typer.Option("--list", help="List configurations and views, then exit.")
    ] = False,
) -> None:
    """Measure Fleetscope's overhead under a real server against bare Django and its peers."""
    if list_all:
        from .server_matrix import CONFIGURATIONS

        for c in CONFIGURATIONS:
            print(f"{c.name:<24} {c.label}")
        for name, (path, what) in VIEWS.items():
            print(f"view {name:<19} {path}  {what}")
        return
    try:
        configs = select(config)
        views = select_views(view)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    own_workdir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="fleetscope-bench-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        if profile:
            from .profiling import profile_server

            target = next((c for c in configs if config and c.name in config), None)
            profile_server(target, views if view else ["mixed"], profile_seconds, work)
            return
        if from_json:
            results = Results.from_json(json.loads(from_json.read_text()))
        else:
            if quick:
                repetitions = 1
            plan = Plan(configs, views, repetitions, duration, warmup, connections)
            results = run_comparison(plan, work, note)
        if json_out:
            json_out.write_text(json.dumps(results.to_json(), indent=1))
        print_table(results)
        if docs if docs is not None else not quick:
            server_report.plot(results, PLOT)
            server_report.write_docs(DOC, server_report.markdown(results, PLOT.name))
            console.print(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    finally:
        if own_workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
