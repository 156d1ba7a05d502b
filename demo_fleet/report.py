"""`fleetscope demo report`: the fleet's numbers read from Prometheus with the dashboards' queries.

Every number comes from an expression built by the same helpers and selectors as the
Grafana panels (`dashboards.fleet`, `dashboards.database`, `dashboards.cache`), with the
template variables set to All (`.*`, or `--service`) and `$__range` / `$__rate_interval`
set to the report window, so the terminal and the dashboards never disagree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fleetscope.dashboards import metrics as m
from fleetscope.dashboards.cache import hit_ratio
from fleetscope.dashboards.capacity import CAPACITY, traffic_share_per_node, utilization
from fleetscope.dashboards.check import duration_seconds, substitute
from fleetscope.dashboards.database import CALLS, DB, DB_BY_ROUTE, DB_SECONDS, FP, ROUTED
from fleetscope.dashboards.fleet import FLEET, REQUESTS
from fleetscope.dashboards.queries import (
    RANGE_WINDOW,
    aggregate,
    exact_increase,
    exact_rate,
    gauge,
    mean,
    quantile,
    share,
    with_statement_text,
)
from fleetscope.dashboards.tasks import (
    BY_QUEUE,
    BY_TASK,
    FAILED,
    NODES,
    RUNS,
    TASK_WORK,
    queue_depth,
)
from fleetscope.errors import FleetscopeError

DEFAULT_WINDOW = "5m"
TOP_ROWS = 10
STATEMENT_WIDTH = 400
MISSING = "-"

# key -> PromQL with Grafana variables, as the panel named in the comment sends it.
NODE_QUERIES: dict[str, str] = {
    # Fleet overview / "Requests/s per node"
    "requests_per_s": exact_rate(REQUESTS, FLEET, (m.NODE,)),
    # Fleet overview / "Latency per node", p95 target
    "p95_latency_s": quantile(0.95, m.REQUEST_DURATION, FLEET, (m.NODE,)),
    # Fleet overview / "CPU per node (cores)"
    "cpu_cores": exact_rate(m.PROCESS_CPU, FLEET, (m.NODE,)),
    # Fleet overview / "Resident memory per node"
    "rss_bytes": gauge(m.PROCESS_RSS, FLEET, (m.NODE,)),
    # Report only: requests served in the window, exact (series born inside it included).
    "requests": exact_increase(REQUESTS, FLEET, (m.NODE,), RANGE_WINDOW),
}
# Slow queries / "Slow queries across the fleet" columns.
SLOW_QUERY_QUERIES: dict[str, str] = {
    "share_of_db_time": with_statement_text(
        share(exact_increase(DB_SECONDS, DB, FP), exact_increase(DB_SECONDS, DB)), DB
    ),
    "calls_per_s": exact_rate(CALLS, DB, FP, RANGE_WINDOW),
    "mean_s": mean(m.DB_DURATION, DB, FP, RANGE_WINDOW),
    "p95_s": quantile(0.95, m.DB_DURATION, DB, FP, RANGE_WINDOW),
    "slow_runs": exact_increase(m.DB_SLOW_QUERIES, DB_BY_ROUTE, FP),
}
# Slow queries / "N+1 detections by route and query".
N_PLUS_ONE_QUERY = with_statement_text(exact_increase(m.DB_N_PLUS_ONE, ROUTED, (m.ROUTE, *FP)), DB)
# Cache / the "Hit ratio by alias" and "by node" panels' expression, split by both.
CACHE_QUERY = hit_ratio((m.CACHE_ALIAS, m.NODE))
# Capacity / "Nodes: traffic, queue time and utilization" columns.
CAPACITY_QUERIES: dict[str, str] = {
    "share_of_traffic": traffic_share_per_node(RANGE_WINDOW),
    "queue_p50_s": quantile(0.5, m.QUEUE_TIME, CAPACITY, (m.NODE,), RANGE_WINDOW),
    "queue_p95_s": quantile(0.95, m.QUEUE_TIME, CAPACITY, (m.NODE,), RANGE_WINDOW),
    "utilization": utilization((m.NODE,), RANGE_WINDOW),
    "workers": gauge(m.WORKER_BUSY, CAPACITY, (m.NODE,), "count"),
}
# Tasks / the "Tasks by time spent" columns, and exact totals like the nodes' requests.
TASK_QUERIES: dict[str, str] = {
    "runs": exact_increase(RUNS, TASK_WORK, BY_TASK, RANGE_WINDOW),
    "runs_per_s": exact_rate(RUNS, TASK_WORK, BY_TASK, RANGE_WINDOW),
    "p95_duration_s": quantile(0.95, m.TASK_DURATION, TASK_WORK, BY_TASK, RANGE_WINDOW),
    "p95_queue_wait_s": quantile(0.95, m.TASK_QUEUE_WAIT, TASK_WORK, BY_TASK, RANGE_WINDOW),
    "failures": exact_increase(RUNS, FAILED, BY_TASK, RANGE_WINDOW),
    "retries": exact_increase(m.TASK_RETRIES, TASK_WORK, BY_TASK, RANGE_WINDOW),
}
# Tasks / "Messages waiting by queue": at the report's time, and the window's peak.
QUEUE_QUERIES: dict[str, str] = {
    "waiting": queue_depth(),
    "peak": aggregate(f"max_over_time({NODES(m.QUEUE_DEPTH)}[{RANGE_WINDOW}])", BY_QUEUE, "max"),
}
# What `demo up` shows as "seen (Prometheus)" while the load runs.
SEEN_QUERY = gauge(REQUESTS, FLEET, (m.NODE,))


@dataclass(frozen=True)
class NodeRow:
    node: str
    requests: int | None
    requests_per_s: float | None
    p95_latency_s: float | None
    cpu_cores: float | None
    rss_bytes: float | None


@dataclass(frozen=True)
class SlowQuery:
    fingerprint: str
    summary: str
    statement: str
    slow_runs: float
    share_of_db_time: float | None
    calls_per_s: float | None
    mean_s: float | None
    p95_s: float | None


@dataclass(frozen=True)
class NPlusOne:
    route: str
    fingerprint: str
    summary: str
    statement: str
    detections: float


@dataclass(frozen=True)
class CacheRatio:
    alias: str
    node: str
    hit_ratio: float


@dataclass(frozen=True)
class CapacityRow:
    """One node as the balancer and its workers saw it over the window."""

    node: str
    share_of_traffic: float | None  # of the balancer's responses; None without a balancer
    queue_p50_s: float | None  # None when no request carried X-Request-Start
    queue_p95_s: float | None
    utilization: float | None  # busy workers / workers
    workers: int | None


@dataclass(frozen=True)
class TaskRow:
    task: str
    runs: int | None
    runs_per_s: float | None
    p95_duration_s: float | None
    p95_queue_wait_s: float | None
    failures: int
    retries: int


@dataclass(frozen=True)
class QueueRow:
    queue: str
    waiting: int | None
    peak: int | None


@dataclass(frozen=True)
class Report:
    prometheus_url: str
    window: str
    evaluated_at: float
    service: str
    nodes: list[NodeRow]
    slow_queries: list[SlowQuery]
    n_plus_one: list[NPlusOne]
    cache: list[CacheRatio]
    capacity: list[CapacityRow] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    queues: list[QueueRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- running the queries -----------------------------------------------------------------


def all_queries() -> dict[str, str]:
    """Every expression the report runs, by key, with Grafana variables unsubstituted."""
    return {
        **{f"nodes.{k}": v for k, v in NODE_QUERIES.items()},
        **{f"slow_queries.{k}": v for k, v in SLOW_QUERY_QUERIES.items()},
        "n_plus_one": N_PLUS_ONE_QUERY,
        "cache": CACHE_QUERY,
        **{f"capacity.{k}": v for k, v in CAPACITY_QUERIES.items()},
        **task_queries(),
    }


def task_queries() -> dict[str, str]:
    """The tasks section's expressions, keyed like `all_queries()`."""
    return {
        **{f"tasks.{k}": v for k, v in TASK_QUERIES.items()},
        **{f"queues.{k}": v for k, v in QUEUE_QUERIES.items()},
    }


def resolve(expr: str, window: str, service: str = ".*") -> str:
    """The expression as a dashboard over `window` with every variable at All sends it."""
    return substitute(expr, {"service": service}, rate_interval=window, range_=window)


class PrometheusAPI:
    """Instant queries against Prometheus' HTTP API, with errors a user can act on."""

    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=timeout)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            response = self.client.get("/api/v1/query", params=params)
        except httpx.TransportError as exc:
            raise FleetscopeError(
                f"Cannot reach Prometheus at {self.url} ({exc}). Is the demo running "
                "(`fleetscope demo status`)? Point --prometheus at your Prometheus otherwise."
            ) from None
        try:
            payload = response.json()
        except ValueError:
            raise FleetscopeError(
                f"{self.url} answered HTTP {response.status_code} without Prometheus JSON; "
                "does --prometheus point at Prometheus?"
            ) from None
        if payload.get("status") != "success":
            raise FleetscopeError(
                f"Prometheus rejected a report query ({payload.get('error')}): {expr}"
            )
        data = payload.get("data", {})
        return list(data.get("result") or []) if data.get("resultType") == "vector" else []

    def close(self) -> None:
        self.client.close()


def fetch(
    api: PrometheusAPI, window: str, at: float | None = None, service: str = ".*"
) -> dict[str, list[dict[str, Any]]]:
    """Raw API results of every report query, keyed like `all_queries()`."""
    duration_seconds(window)  # a clear error for a bad --window before any query
    return {
        key: api.query(resolve(expr, window, service), at) for key, expr in all_queries().items()
    }


def collect_report(
    prometheus_url: str, window: str = DEFAULT_WINDOW, at: float | None = None, service: str = ".*"
) -> Report:
    api = PrometheusAPI(prometheus_url)
    try:
        results = fetch(api, window, at, service)
    finally:
        api.close()
    return build_report(results, prometheus_url, window, at or time.time(), service)


def requests_seen(prometheus_url: str, service: str = ".*") -> dict[str, int]:
    """Requests per node that reached Prometheus so far (cumulative counters, summed)."""
    api = PrometheusAPI(prometheus_url, timeout=3.0)
    try:
        result = api.query(resolve(SEEN_QUERY, DEFAULT_WINDOW, service))
    finally:
        api.close()
    counts = {}
    for series in result:
        value = _value(series)
        if value is not None:
            counts[series["metric"].get(m.NODE, "")] = round(value)
    return counts


# -- turning API results into rows -----------------------------------------------------------


def _value(series: Mapping[str, Any]) -> float | None:
    try:
        value = float(series["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _by(results: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float | None]:
    return {
        tuple(series.get("metric", {}).get(label, "") for label in labels): _value(series)
        for series in results
    }


def build_report(
    results: Mapping[str, list[dict[str, Any]]],
    prometheus_url: str,
    window: str,
    evaluated_at: float,
    service: str = ".*",
) -> Report:
    """The report from raw `/api/v1/query` results keyed like `all_queries()`."""
    return Report(
        prometheus_url=prometheus_url,
        window=window,
        evaluated_at=evaluated_at,
        service=service,
        nodes=_nodes(results),
        slow_queries=_slow_queries(results),
        n_plus_one=_n_plus_one(results.get("n_plus_one", [])),
        cache=_cache(results.get("cache", [])),
        capacity=_capacity(results),
        tasks=_tasks(results),
        queues=_queues(results),
    )


def _nodes(results: Mapping[str, list[dict[str, Any]]]) -> list[NodeRow]:
    columns = {key: _by(results.get(f"nodes.{key}", []), m.NODE) for key in NODE_QUERIES}
    names = sorted({key[0] for column in columns.values() for key in column if key[0]})
    rows = []
    for name in names:
        requests = columns["requests"].get((name,))
        rows.append(
            NodeRow(
                node=name,
                requests=round(requests) if requests is not None else None,
                requests_per_s=columns["requests_per_s"].get((name,)),
                p95_latency_s=columns["p95_latency_s"].get((name,)),
                cpu_cores=columns["cpu_cores"].get((name,)),
                rss_bytes=columns["rss_bytes"].get((name,)),
            )
        )
    return rows


def _capacity(results: Mapping[str, list[dict[str, Any]]]) -> list[CapacityRow]:
    columns = {key: _by(results.get(f"capacity.{key}", []), m.NODE) for key in CAPACITY_QUERIES}
    names = sorted({key[0] for column in columns.values() for key in column if key[0]})
    rows = []
    for name in names:
        workers = columns["workers"].get((name,))
        rows.append(
            CapacityRow(
                node=name,
                share_of_traffic=columns["share_of_traffic"].get((name,)),
                queue_p50_s=columns["queue_p50_s"].get((name,)),
                queue_p95_s=columns["queue_p95_s"].get((name,)),
                utilization=columns["utilization"].get((name,)),
                workers=round(workers) if workers is not None else None,
            )
        )
    return rows


def _statement_labels(series: Mapping[str, Any]) -> tuple[str, str]:
    labels = series.get("metric", {})
    return labels.get(m.QUERY_SUMMARY, ""), labels.get(m.QUERY_TEXT, "")


def _slow_queries(results: Mapping[str, list[dict[str, Any]]]) -> list[SlowQuery]:
    texts = {
        series.get("metric", {}).get(m.FINGERPRINT, ""): _statement_labels(series)
        for series in results.get("slow_queries.share_of_db_time", [])
    }
    columns = {
        key: _by(results.get(f"slow_queries.{key}", []), m.FINGERPRINT)
        for key in SLOW_QUERY_QUERIES
    }
    rows = []
    for (fingerprint,), slow_runs in columns["slow_runs"].items():
        if not fingerprint or not slow_runs or slow_runs <= 0:
            continue
        summary, statement = texts.get(fingerprint, ("", ""))
        rows.append(
            SlowQuery(
                fingerprint=fingerprint,
                summary=summary,
                statement=statement,
                slow_runs=slow_runs,
                share_of_db_time=columns["share_of_db_time"].get((fingerprint,)),
                calls_per_s=columns["calls_per_s"].get((fingerprint,)),
                mean_s=columns["mean_s"].get((fingerprint,)),
                p95_s=columns["p95_s"].get((fingerprint,)),
            )
        )
    rows.sort(key=lambda r: (-r.slow_runs, -(r.share_of_db_time or 0.0), r.fingerprint))
    return rows[:TOP_ROWS]


def _n_plus_one(results: list[dict[str, Any]]) -> list[NPlusOne]:
    rows = []
    for series in results:
        detections = _value(series)
        if not detections or detections <= 0:
            continue
        labels = series.get("metric", {})
        summary, statement = _statement_labels(series)
        rows.append(
            NPlusOne(
                route=labels.get(m.ROUTE, ""),
                fingerprint=labels.get(m.FINGERPRINT, ""),
                summary=summary,
                statement=statement,
                detections=detections,
            )
        )
    rows.sort(key=lambda r: (-r.detections, r.route, r.fingerprint))
    return rows[:TOP_ROWS]


def _cache(results: list[dict[str, Any]]) -> list[CacheRatio]:
    rows = [
        CacheRatio(alias, node, ratio)
        for (alias, node), ratio in _by(results, m.CACHE_ALIAS, m.NODE).items()
        if ratio is not None
    ]
    return sorted(rows, key=lambda r: (r.alias, r.node))


def _count(value: float | None) -> int | None:
    return None if value is None else round(value)


def _tasks(results: Mapping[str, list[dict[str, Any]]]) -> list[TaskRow]:
    columns = {key: _by(results.get(f"tasks.{key}", []), m.TASK) for key in TASK_QUERIES}
    names = sorted({key[0] for column in columns.values() for key in column if key[0]})
    rows = [
        TaskRow(
            task=name,
            runs=_count(columns["runs"].get((name,))),
            runs_per_s=columns["runs_per_s"].get((name,)),
            p95_duration_s=columns["p95_duration_s"].get((name,)),
            p95_queue_wait_s=columns["p95_queue_wait_s"].get((name,)),
            failures=_count(columns["failures"].get((name,))) or 0,
            retries=_count(columns["retries"].get((name,))) or 0,
        )
        for name in names
    ]
    rows.sort(key=lambda r: (-(r.runs or 0), r.task))
    return rows[:TOP_ROWS]


def _queues(results: Mapping[str, list[dict[str, Any]]]) -> list[QueueRow]:
    columns = {key: _by(results.get(f"queues.{key}", []), m.QUEUE) for key in QUEUE_QUERIES}
    names = sorted({key[0] for column in columns.values() for key in column if key[0]})
    return [
        QueueRow(
            name, _count(columns["waiting"].get((name,))), _count(columns["peak"].get((name,)))
        )
        for name in names
    ]


# -- rendering -------------------------------------------------------------------------------


def format_rate(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.1f}/s"


def format_seconds(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"


def format_bytes(value: float | None) -> str:
    if value is None:
        return MISSING
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


def format_ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f} %"


def format_count(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.0f}"


def _plain(value: str) -> Text:
    """A table cell holding text from Prometheus (label values are whatever a node reported):
    shown as it is, never read as rich markup, which would drop `[name]` and crash on `[/]`."""
    return Text(value)


def _shorten(statement: str) -> str:
    return (
        statement if len(statement) <= STATEMENT_WIDTH else statement[: STATEMENT_WIDTH - 1] + "…"
    )


def _statements_list(rows: list[tuple[str, str]]) -> Table:
    """Fingerprint -> normalized statement, below a table: statements need the full width."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="cyan")
    grid.add_column(overflow="fold", ratio=1, style="dim")
    seen = set()
    for fingerprint, statement in rows:
        if fingerprint not in seen:
            seen.add(fingerprint)
            grid.add_row(_plain(fingerprint), _plain(_shorten(statement) or "(no statement text)"))
    return grid


def render_report(report: Report, console: Console) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.evaluated_at))
    console.print(
        f"[bold]Fleetscope demo report[/] — window {escape(report.window)} up to {when}, "
        f"Prometheus {escape(report.prometheus_url)}, service {escape(report.service)}",
        highlight=False,
    )
    console.print()
    console.print(_nodes_table(report.nodes))
    console.print()
    console.print(_capacity_table(report.capacity))
    console.print()
    console.print(_slow_queries_table(report.slow_queries))
    if report.slow_queries:
        console.print(_statements_list([(r.fingerprint, r.statement) for r in report.slow_queries]))
    console.print()
    console.print(_n_plus_one_table(report.n_plus_one))
    if report.n_plus_one:
        console.print(_statements_list([(r.fingerprint, r.statement) for r in report.n_plus_one]))
    console.print()
    console.print(_cache_table(report.cache))
    render_tasks(report, console)


def render_tasks(report: Report, console: Console) -> None:
    """The tasks section: throughput, p95 duration and queue wait per task, queue depth."""
    console.print()
    console.print(_tasks_table(report.tasks))
    if report.queues:
        console.print(_queues_table(report.queues))


def _module_prefix(names: list[str]) -> str:
    """The dotted module path every task name shares (`shop.tasks.`), or ""."""
    modules = {name.rpartition(".")[0] for name in names}
    return f"{modules.pop()}." if len(modules) == 1 and "" not in modules else ""


def _tasks_table(rows: list[TaskRow]) -> Table:
    prefix = _module_prefix([row.task for row in rows])
    title = f"Tasks ({prefix}…)" if prefix else "Tasks"
    table = Table(title=title, title_justify="left")
    table.add_column("Task", overflow="fold")
    # Short headers: task names need the width in an 80-column terminal.
    for column in ("Runs", "Runs/s", "p95", "p95 wait", "Failed", "Retried"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            _plain(row.task.removeprefix(prefix)),
            format_count(row.runs),
            format_rate(row.runs_per_s),
            format_seconds(row.p95_duration_s),
            format_seconds(row.p95_queue_wait_s),
            format_count(row.failures),
            format_count(row.retries),
        )
    if not rows:
        return _empty(table, "No task ran in this window.")
    return table


def _queues_table(rows: list[QueueRow]) -> Table:
    table = Table(title="Queues", title_justify="left")
    table.add_column("Queue")
    table.add_column("Waiting now", justify="right")
    table.add_column("Peak in window", justify="right")
    for row in rows:
        table.add_row(row.queue, format_count(row.waiting), format_count(row.peak))
    return table


def _empty(table: Table, message: str) -> Table:
    table.caption = message
    return table


def _nodes_table(rows: list[NodeRow]) -> Table:
    table = Table(title="Nodes", title_justify="left")
    table.add_column("Node")
    for column in ("Requests total", "Requests/s", "p95 latency", "CPU (cores)", "RSS"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            _plain(row.node),
            format_count(row.requests),
            format_rate(row.requests_per_s),
            format_seconds(row.p95_latency_s),
            MISSING if row.cpu_cores is None else f"{row.cpu_cores:.2f}",
            format_bytes(row.rss_bytes),
        )
    if not rows:
        return _empty(table, "No node reported requests in this window.")
    return table


def _capacity_table(rows: list[CapacityRow]) -> Table:
    """Capacity: the balancer's split, queue time and worker utilization per node."""
    table = Table(title="Capacity", title_justify="left")
    table.add_column("Node")
    for column in ("Share of traffic", "Queue p50", "Queue p95", "Utilization", "Workers"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            _plain(row.node),
            format_ratio(row.share_of_traffic),
            format_seconds(row.queue_p50_s),
            format_seconds(row.queue_p95_s),
            format_ratio(row.utilization),
            format_count(row.workers),
        )
    if not rows:
        return _empty(table, "No worker reported busy time in this window.")
    if all(row.share_of_traffic is None for row in rows):
        table.caption = (
            "No load balancer in front (share and queue time come from HAProxy and its "
            "X-Request-Start stamp; see docs/capacity.md)."
        )
    return table


def _slow_queries_table(rows: list[SlowQuery]) -> Table:
    table = Table(title="Slow queries", title_justify="left")
    table.add_column("Fingerprint", no_wrap=True, style="cyan")
    table.add_column("Query", overflow="fold")
    for column in ("Slow runs", "DB time", "Mean", "p95"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            _plain(row.fingerprint),
            _plain(row.summary),
            format_count(row.slow_runs),
            format_ratio(row.share_of_db_time),
            format_seconds(row.mean_s),
            format_seconds(row.p95_s),
        )
    if not rows:
        return _empty(table, "No statement crossed the slow-query threshold in this window.")
    return table


def _n_plus_one_table(rows: list[NPlusOne]) -> Table:
    table = Table(title="N+1 patterns", title_justify="left")
    table.add_column("Route", overflow="fold")
    table.add_column("Fingerprint", no_wrap=True, style="cyan")
    table.add_column("Repeated query", overflow="fold")
    table.add_column("Detections", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            _plain(row.route),
            _plain(row.fingerprint),
            _plain(row.summary),
            format_count(row.detections),
        )
    if not rows:
        return _empty(table, "No N+1 pattern detected in this window.")
    return table


def _cache_table(rows: list[CacheRatio]) -> Table:
    table = Table(title="Cache hit ratio", title_justify="left")
    table.add_column("Alias")
    table.add_column("Node")
    table.add_column("Hit ratio", justify="right")
    for row in rows:
        table.add_row(_plain(row.alias), _plain(row.node), format_ratio(row.hit_ratio))
    if not rows:
        return _empty(table, "No cache lookups in this window.")
    return table
