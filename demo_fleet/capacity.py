"""`fleetscope capacity --prometheus URL`: the scalability fit on a live fleet's history.

No load is generated: the points are the fleet's own moments over `--window`, one per
`--step`, each the throughput and the concurrency (requests in the system, served or
queued: Little's law) of that step, read with the Capacity dashboard's expressions. The fit
is per node, for each node that reported, and the current load is the last `--current`
of throughput. A fleet that only ever ran at one level of load gives points that span too
little of the curve; the command says so instead of inventing a peak.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from fleetscope.dashboards import metrics as m
from fleetscope.dashboards.capacity import CAPACITY, REQUESTS, concurrency
from fleetscope.dashboards.check import duration_seconds, substitute
from fleetscope.dashboards.queries import rate
from fleetscope.errors import FleetscopeError

from . import usl
from .report import MISSING, format_ratio
from .scaletest_report import fit_summary, format_number

app = typer.Typer(
    help="Capacity of a running fleet: the Universal Scalability Law fitted to its history "
    "in Prometheus.",
    pretty_exceptions_enable=False,
)
out_console = Console(soft_wrap=False)
err_console = Console(stderr=True)

BY_NODE = (m.NODE,)
THROUGHPUT = rate(REQUESTS, CAPACITY, BY_NODE)
CONCURRENCY = concurrency(BY_NODE)
MAX_POINTS = 11_000  # Prometheus refuses longer range queries


@dataclass
class NodeCapacity:
    node: str
    concurrency: list[float]
    throughput: list[float]
    current_rps: float | None = None
    fit: usl.Fit | None = None
    assessment: usl.Assessment | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "points": len(self.throughput),
            "current_rps": self.current_rps,
            "fit": self.fit.to_dict() if self.fit else None,
            "conclusive": bool(self.assessment and self.assessment.conclusive),
            "notes": (self.assessment.notes if self.assessment else []),
            "headroom": self.fit.headroom(self.current_rps)
            if self.fit and self.current_rps is not None
            else None,
            "error": self.error,
        }


@dataclass
class FleetCapacity:
    prometheus_url: str
    window: str
    step: str
    evaluated_at: float
    nodes: list[NodeCapacity] = field(default_factory=list)

    def fleet_peak(self) -> float | None:
        """Sum of the nodes' peaks, when every node's fit is conclusive."""
        peaks = [n.fit.peak_throughput for n in self.nodes if n.fit and n.assessment]
        if not self.nodes or len(peaks) != len(self.nodes):
            return None
        if not all(n.assessment and n.assessment.conclusive for n in self.nodes):
            return None
        return sum(peaks) if all(math.isfinite(p) for p in peaks) else None

    def current_rps(self) -> float | None:
        values = [n.current_rps for n in self.nodes if n.current_rps is not None]
        return sum(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        peak, current = self.fleet_peak(), self.current_rps()
        return {
            "prometheus_url": self.prometheus_url,
            "window": self.window,
            "step": self.step,
            "evaluated_at": self.evaluated_at,
            "nodes": [n.to_dict() for n in self.nodes],
            "fleet_current_rps": current,
            "fleet_peak_rps": peak,
            "fleet_headroom": 1 - current / peak if peak and current is not None else None,
        }


def query_range(
    client: httpx.Client, expr: str, start: float, end: float, step_s: float
) -> list[dict[str, Any]]:
    try:
        response = client.get(
            "/api/v1/query_range",
            params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step_s},
        )
        payload = response.json()
    except httpx.TransportError as exc:
        raise FleetscopeError(
            f"Cannot reach Prometheus at {client.base_url} ({exc}); check --prometheus."
        ) from None
    except ValueError:
        raise FleetscopeError(
            f"{client.base_url} answered HTTP {response.status_code} without Prometheus JSON; "
            "does --prometheus point at Prometheus?"
        ) from None
    if payload.get("status") != "success":
        raise FleetscopeError(f"Prometheus rejected a query ({payload.get('error')}): {expr}")
    return list(payload.get("data", {}).get("result") or [])


def _series(result: list[dict[str, Any]]) -> dict[str, dict[float, float]]:
    """node -> {timestamp: value}, finite values only."""
    by_node: dict[str, dict[float, float]] = {}
    for series in result:
        node = series.get("metric", {}).get(m.NODE, "")
        values = by_node.setdefault(node, {})
        for timestamp, raw in series.get("values", []):
            value = float(raw)
            if math.isfinite(value):
                values[float(timestamp)] = value
    return by_node


def collect(
    prometheus_url: str,
    window: str = "6h",
    step: str = "1m",
    current: str = "5m",
    service: str = ".*",
    node: str = ".*",
    at: float | None = None,
) -> FleetCapacity:
    window_s, step_s = duration_seconds(window), duration_seconds(step)
    duration_seconds(current)  # a clear error for a bad --current before any query
    if window_s / step_s > MAX_POINTS:
        raise FleetscopeError(
            f"--window {window} in steps of {step} is more than {MAX_POINTS} points; "
            "choose a longer --step."
        )
    end = at or time.time()
    variables = {"service": service, "node": node}
    with httpx.Client(base_url=prometheus_url.rstrip("/"), timeout=60) as client:
        # One rate window per step: consecutive points never share requests.
        throughput = _series(
            query_range(
                client,
                substitute(THROUGHPUT, variables, rate_interval=step),
                end - window_s,
                end,
                step_s,
            )
        )
        held = _series(
            query_range(
                client,
                substitute(CONCURRENCY, variables, rate_interval=step),
                end - window_s,
                end,
                step_s,
            )
        )
        now = _series(
            query_range(
                client,
                substitute(THROUGHPUT, variables, rate_interval=current),
                end,
                end,
                step_s,
            )
        )
    result = FleetCapacity(prometheus_url, window, step, end)
    for name in sorted(set(throughput) & set(held)):
        times = sorted(set(throughput[name]) & set(held[name]))
        capacity = NodeCapacity(
            name,
            concurrency=[held[name][t] for t in times],
            throughput=[throughput[name][t] for t in times],
            current_rps=next(iter(now.get(name, {}).values()), None),
        )
        try:
            capacity.fit = usl.fit(capacity.concurrency, capacity.throughput)
            capacity.assessment = usl.assess(capacity.fit)
        except usl.NotEnoughData as exc:
            capacity.error = str(exc)
        result.nodes.append(capacity)
    return result


def render(result: FleetCapacity, console: Console) -> None:
    console.print(
        f"[bold]Fleetscope capacity[/] — {result.window} of history in {result.step} steps, "
        f"Prometheus {result.prometheus_url}",
        highlight=False,
    )
    table = Table(title="Per node", title_justify="left")
    table.add_column("Node")
    for column in ("Points", "Concurrency", "λ", "σ", "κ", "R²", "N*", "Peak", "Now", "Headroom"):
        table.add_column(column, justify="right")
    for node in result.nodes:
        fit = node.fit
        table.add_row(
            node.node,
            str(len(node.throughput)),
            f"{min(node.concurrency):.2g}-{max(node.concurrency):.2g}"
            if node.concurrency
            else MISSING,
            format_number(fit.lam if fit else None),
            format_number(fit.sigma if fit else None),
            format_number(fit.kappa if fit else None),
            f"{fit.r_squared:.3f}" if fit else MISSING,
            format_number(fit.peak_concurrency if fit else None),
            format_number(fit.peak_throughput if fit else None, "/s"),
            format_number(node.current_rps, "/s"),
            format_ratio(fit.headroom(node.current_rps) if fit and node.current_rps else None),
        )
    if not result.nodes:
        table.caption = "No node reported requests in this window."
    console.print(table)
    for node in result.nodes:
        console.print()
        console.print(f"[bold]{node.node}[/]", highlight=False)
        if node.fit is None or node.assessment is None:
            console.print(f"No fit: {node.error}", highlight=False)
            continue
        for line in fit_summary(node.fit, node.assessment, scope=f"for {node.node}"):
            console.print(line, highlight=False)
    data = result.to_dict()
    console.print()
    if data["fleet_headroom"] is not None:
        console.print(
            f"Fleet: {data['fleet_current_rps']:.3g} req/s now of a predicted peak of "
            f"{data['fleet_peak_rps']:.3g} req/s: {data['fleet_headroom']:.0%} headroom.",
            highlight=False,
        )
    else:
        console.print(
            "Fleet: no headroom figure, because not every node's fit is conclusive (see the "
            "notes above). `fleetscope demo scale-test` measures the curve under a stepped "
            "load; on a live fleet, a longer --window that includes its busiest hours helps.",
            highlight=False,
        )


@app.callback(invoke_without_command=True)
def capacity(
    prometheus: Annotated[
        str, typer.Option(help="Prometheus fed by Fleetscope nodes.")
    ] = "http://127.0.0.1:9090",
    window: Annotated[str, typer.Option(help="How much history to fit, e.g. 6h or 7d.")] = "6h",
    step: Annotated[str, typer.Option(help="One point per step (and its rate window).")] = "1m",
    current: Annotated[
        str, typer.Option(help="The recent window whose throughput is 'now'.")
    ] = "5m",
    service: Annotated[str, typer.Option(help="Regex on the `job` label.")] = ".*",
    node: Annotated[str, typer.Option(help="Regex on `host_name`.")] = ".*",
    plot_dir: Annotated[
        Path | None, typer.Option("--plot-dir", help="Write one PNG per node here.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fit the Universal Scalability Law to each node's throughput against its concurrency."""
    try:
        result = collect(prometheus, window, step, current, service, node)
    except FleetscopeError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if plot_dir is not None:
        for capacity_ in result.nodes:
            if capacity_.fit is not None:
                usl.plot(
                    capacity_.fit,
                    capacity_.concurrency,
                    capacity_.throughput,
                    plot_dir / f"capacity-{capacity_.node}.png",
                    title=f"{capacity_.node}: {window} of history",
                    x_label="concurrency (requests in the system)",
                    y_label="throughput (requests/s)",
                )
    if json_output:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        render(result, out_console)
