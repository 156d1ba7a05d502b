"""`fleetscope demo scale-test`: the demo fleet under a stepped load, its throughput and
latency per step read from Prometheus, and the Universal Scalability Law fitted to them.

The fleet is the demo's (identical nodes behind HAProxy). One locust runs a LoadTestShape
(demo_fleet/locustfile_steps.py) with users sending back to back, more at every step. For
each step the measurement window leaves out its first seconds (the ramp and the pipeline's
lag) and every figure comes from Prometheus with the Capacity dashboard's expressions:
throughput, concurrency (requests in the system, served or queued: Little's law),
p95 latency, p95 queue time, worker utilization. The fit is per node: the fleet's figures
divided by the number of nodes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fleetscope.collector.process import ManagedProcess
from fleetscope.dashboards import metrics as m
from fleetscope.dashboards.capacity import CAPACITY, REQUESTS, concurrency, utilization
from fleetscope.dashboards.queries import exact_rate, quantile
from fleetscope.errors import FleetscopeError

from . import usl
from .launcher import DemoLauncher, DemoOptions
from .loadgen import LOCUSTFILE
from .progress import DemoDisplay
from .report import PrometheusAPI, resolve

STEPS_LOCUSTFILE = LOCUSTFILE.with_name("locustfile_steps.py")
DEFAULT_STEPS = (1, 2, 4, 8, 16, 32)  # users per node
# Each step's first seconds are left out: the ramp, and a request's way to Prometheus (one
# export interval, one scrape, the collector's batch).
PIPELINE_LAG_S = 1.0

STEP_QUERIES = {
    "throughput": exact_rate(REQUESTS, CAPACITY),
    "concurrency": concurrency(),
    "p95_latency_s": quantile(0.95, m.REQUEST_DURATION, CAPACITY),
    "p95_queue_s": quantile(0.95, m.QUEUE_TIME, CAPACITY),
    "utilization": utilization(),
}


@dataclass
class ScaleTestOptions:
    nodes: int = 2
    workers: int = 2
    steps: tuple[int, ...] = DEFAULT_STEPS
    step_s: int = 40
    warmup_s: int = 12
    think_ms: int = 100
    workdir: Path = field(default_factory=lambda: Path(".fleetscope/scale-test"))
    out: Path | None = None  # default: the workdir
    current_rps: float | None = None
    keep: bool = False
    export_interval_ms: int = 2000
    scrape_interval_s: int = 2

    @property
    def out_dir(self) -> Path:
        return self.out or self.workdir

    def validate(self) -> None:
        if len(self.steps) < usl.MIN_POINTS:
            raise FleetscopeError(
                f"--steps needs at least {usl.MIN_POINTS} steps for the fit, not {len(self.steps)}."
            )
        if min(self.steps) < 1 or list(self.steps) != sorted(set(self.steps)):
            raise FleetscopeError(
                "--steps must be increasing numbers of users per node, e.g. 1,2,4."
            )
        lag = (self.export_interval_ms / 1000) + self.scrape_interval_s + PIPELINE_LAG_S
        if self.warmup_s < lag:
            raise FleetscopeError(
                f"--warmup-seconds must cover the way to Prometheus ({lag:.0f} s or more)."
            )
        if self.think_ms < 0:
            raise FleetscopeError("--think-ms must be 0 or more.")
        if self.step_s < self.warmup_s + 4 * self.scrape_interval_s:
            raise FleetscopeError(
                "--step-seconds must leave at least four scrapes after --warmup-seconds."
            )

    def demo_options(self) -> DemoOptions:
        return DemoOptions(
            nodes=self.nodes,
            workers=self.workers,
            workdir=self.workdir,
            free_ports=True,
            balancer=True,
            users=max(self.steps) * self.nodes,
            export_interval_ms=self.export_interval_ms,
            scrape_interval_s=self.scrape_interval_s,
            trace_sample_ratio=0.01,
            # The web nodes' own capacity: no Celery worker competing for the same cores.
            tasks=False,
        )


@dataclass(frozen=True)
class Step:
    users_per_node: int
    started: float
    ended: float
    throughput: float | None = None  # fleet requests/s
    concurrency: float | None = None  # fleet requests in the system
    p95_latency_s: float | None = None
    p95_queue_s: float | None = None
    utilization: float | None = None


@dataclass
class ScaleResult:
    options: dict[str, Any]
    nodes: int
    steps: list[Step]
    fit: usl.Fit | None
    assessment: usl.Assessment | None
    current_rps: float | None
    current_source: str
    duration_s: float
    plot: str | None = None
    error: str | None = None

    def per_node(self, value: float | None) -> float | None:
        return None if value is None else value / self.nodes

    def headroom(self) -> dict[str, Any]:
        if self.fit is None or self.current_rps is None:
            return {}
        fleet_peak = self.fit.peak_throughput * self.nodes
        fraction = self.fit.headroom(self.current_rps / self.nodes)
        return {
            "current_rps": self.current_rps,
            "current_source": self.current_source,
            "fleet_peak_rps": fleet_peak if math.isfinite(fleet_peak) else None,
            "headroom": fraction,
            "headroom_rps": fleet_peak - self.current_rps if math.isfinite(fleet_peak) else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "nodes": self.nodes,
            "duration_s": self.duration_s,
            "steps": [
                {
                    **asdict(step),
                    "throughput_per_node": self.per_node(step.throughput),
                    "concurrency_per_node": self.per_node(step.concurrency),
                    "fitted_throughput_per_node": (
                        float(self.fit.predict(step.concurrency / self.nodes))
                        if self.fit and step.concurrency
                        else None
                    ),
                }
                for step in self.steps
            ],
            "fit_per_node": self.fit.to_dict() if self.fit else None,
            "conclusive": self.assessment.conclusive if self.assessment else False,
            "notes": self.assessment.notes if self.assessment else [],
            "headroom": self.headroom(),
            "plot": self.plot,
            "error": self.error,
        }


def start_steps(launcher: DemoLauncher, options: ScaleTestOptions, log: Path) -> ManagedProcess:
    """The stepped locust against the balancer, recorded like every demo process."""
    import sys

    assert launcher.balancer is not None
    log.unlink(missing_ok=True)
    env = {
        **_environ(),
        "FLEETSCOPE_SCALE_STEPS": ",".join(str(u * options.nodes) for u in options.steps),
        "FLEETSCOPE_SCALE_STEP_S": str(options.step_s),
        "FLEETSCOPE_SCALE_LOG": str(log),
        "FLEETSCOPE_SCALE_THINK_S": str(options.think_ms / 1000),
    }
    process = ManagedProcess(
        "locust scale-test",
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(STEPS_LOCUSTFILE),
            "--headless",
            "--host",
            launcher.balancer.url,
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        launcher.workdir / "logs" / "locust-scale-test.log",
        env=env,
        cwd=launcher.workdir,
    ).start()
    launcher.add_process("locust-scale-test", "load", process, launcher.balancer.url)
    return process


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def wait_for_steps(
    process: ManagedProcess,
    launcher: DemoLauncher,
    options: ScaleTestOptions,
    display: DemoDisplay,
) -> None:
    expected = len(options.steps) * options.step_s
    started = time.monotonic()
    shown = -1
    while process.running():
        launcher.check_alive()
        elapsed = time.monotonic() - started
        step = min(int(elapsed // options.step_s), len(options.steps) - 1)
        if step != shown:
            shown = step
            display.component(
                "scale-test",
                "running",
                note=f"step {step + 1}/{len(options.steps)}: "
                f"{options.steps[step]} users per node ({options.step_s} s each)",
            )
        if elapsed > expected + 60:
            raise FleetscopeError(
                f"The stepped load did not end after {elapsed:.0f} s; log {process.log_path}:\n"
                f"{process.log_tail()}"
            )
        time.sleep(0.5)
    if process.popen is not None and process.popen.returncode not in (0, None):
        raise FleetscopeError(
            f"The stepped load failed (exit code {process.popen.returncode}); log "
            f"{process.log_path}:\n{process.log_tail()}"
        )


def read_steps(log: Path, options: ScaleTestOptions) -> list[Step]:
    """When each step really started (the shape logs it), and ended (the next one's start)."""
    try:
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise FleetscopeError(f"The stepped load left no step log at {log} ({exc}).") from None
    steps = []
    for index, record in enumerate(records):
        started = float(record["started"])
        ended = (
            float(records[index + 1]["started"])
            if index + 1 < len(records)
            else started + options.step_s
        )
        steps.append(Step(options.steps[int(record["step"])], started, ended))
    return steps


def measure(prometheus_url: str, steps: list[Step], options: ScaleTestOptions) -> list[Step]:
    """Each step's figures over its measured window, from Prometheus."""
    api = PrometheusAPI(prometheus_url)
    measured = []
    try:
        for step in steps:
            at = step.ended - 1.0
            window = f"{max(1, int(at - step.started - options.warmup_s))}s"
            values: dict[str, float | None] = {}
            for key, expr in STEP_QUERIES.items():
                result = api.query(resolve(expr, window), at)
                values[key] = _first(result)
            measured.append(Step(step.users_per_node, step.started, step.ended, **values))
    finally:
        api.close()
    return measured


def _first(result: list[dict[str, Any]]) -> float | None:
    if not result:
        return None
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def analyse(
    steps: list[Step], options: ScaleTestOptions, duration_s: float, out_dir: Path
) -> ScaleResult:
    """The per-node fit, the headroom and the plot from the measured steps."""
    nodes = options.nodes
    usable = [s for s in steps if s.throughput and s.concurrency]
    n = [s.concurrency / nodes for s in usable if s.concurrency]
    x = [s.throughput / nodes for s in usable if s.throughput]
    current = options.current_rps
    source = "--current-rps"
    if current is None and usable and usable[0].throughput is not None:
        current, source = usable[0].throughput, "the first step"
    result = ScaleResult(
        options={
            "nodes": options.nodes,
            "workers": options.workers,
            "steps": list(options.steps),
            "step_s": options.step_s,
            "warmup_s": options.warmup_s,
            "think_ms": options.think_ms,
        },
        nodes=nodes,
        steps=steps,
        fit=None,
        assessment=None,
        current_rps=current,
        current_source=source,
        duration_s=duration_s,
    )
    try:
        result.fit = usl.fit(n, x)
    except usl.NotEnoughData as exc:
        result.error = str(exc)
        return result
    result.assessment = usl.assess(result.fit)
    plot_path = out_dir / "scale-test.png"
    usl.plot(
        result.fit,
        n,
        x,
        plot_path,
        title=f"Demo shop: {nodes} nodes x {options.workers} workers behind HAProxy",
    )
    result.plot = str(plot_path)
    return result


def write_result(result: ScaleResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "scale-test.json"
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return path


def run_scale_test(options: ScaleTestOptions, display: DemoDisplay) -> ScaleResult:
    """Start the fleet, step the load, measure, fit; stop the fleet unless `keep`."""
    options.validate()
    began = time.monotonic()
    launcher = DemoLauncher(options.demo_options(), display)
    launcher.preflight()
    keep = False
    try:
        launcher.start()
        log = launcher.workdir / "scale-test-steps.jsonl"
        process = start_steps(launcher, options, log)
        wait_for_steps(process, launcher, options, display)
        display.component("scale-test", "settling", note="the last step's figures")
        time.sleep(options.demo_options().settle_s)
        steps = measure(launcher.state.prometheus_url, read_steps(log, options), options)
        display.component("scale-test", "done", note=f"{len(steps)} steps measured")
        result = analyse(steps, options, time.monotonic() - began, options.out_dir)
        write_result(result, options.out_dir)
        keep = options.keep
        return result
    finally:
        if keep:
            display.note(launcher.keep_running_note())
        else:
            launcher.stop()
