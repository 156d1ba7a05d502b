"""Fleet overview dashboard: is every node up, how loaded, how fast, and which routes cost most."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries

from . import metrics as m
from .panels import (
    CAPACITY_UID,
    DATABASE_UID,
    FLEET_UID,
    SILK_ROUTE_URL,
    Column,
    KeyColumn,
    assemble,
    cell,
    dashboard_link,
    dashboard_url,
    data_link,
    new_dashboard,
    node_detail_link,
    node_variable,
    section,
    series_query,
    service_variable,
    silk_base_url_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from .queries import (
    RATE_WINDOW,
    Selector,
    count_distinct,
    exact_increase,
    exact_rate,
    exact_ratio,
    gauge,
    mean,
    missing,
    quantile,
    share,
    topk,
    with_default,
)

FLEET = Selector().using("service", "node")
SERVER_ERRORS = FLEET.matching(**{m.STATUS: "5.."})

BY_VERSION = (m.VERSION,)
VERSION_LEGEND = "{{service_version}}"

REQUESTS = f"{m.REQUEST_DURATION}_count"
REQUEST_SECONDS = f"{m.REQUEST_DURATION}_sum"
# A node counts as stopped when it reported within this window but not now.
STOPPED_WINDOW = "1h"


def _error_ratio(by: tuple[str, ...] = (), window: str = RATE_WINDOW) -> str:
    return exact_ratio(REQUESTS, SERVER_ERRORS, FLEET, by, window)


def nodes_reporting_stat() -> stat.Panel:
    return stat_panel(
        "Nodes reporting",
        "Nodes (host_name) whose workers exported metrics in the last few minutes.",
        "none",
        series_query(count_distinct(m.HEARTBEAT, FLEET, m.NODE), "nodes"),
    )


def nodes_stopped_stat() -> stat.Panel:
    return stat_panel(
        "Nodes stopped reporting",
        f"Nodes seen in the last {STOPPED_WINDOW} that export nothing now. Anything above 0 "
        "is a node that crashed, hung or lost its collector connection.",
        "none",
        series_query(missing(m.HEARTBEAT, FLEET, m.NODE, STOPPED_WINDOW), "stopped"),
        thresholds=((None, "green"), (1, "red")),
    )


def request_rate_stat() -> stat.Panel:
    return stat_panel(
        "Requests/s",
        "Requests per second served by the selected nodes.",
        "reqps",
        series_query(exact_rate(REQUESTS, FLEET), "req/s"),
    )


def error_ratio_stat() -> stat.Panel:
    return stat_panel(
        "5xx ratio",
        "Share of responses with a 5xx status code.",
        "percentunit",
        series_query(_error_ratio(), "5xx"),
        thresholds=((None, "green"), (0.01, "orange"), (0.05, "red")),
    )


def p95_latency_stat() -> stat.Panel:
    return stat_panel(
        "p95 latency",
        "95th percentile of request duration across the selected nodes.",
        "s",
        series_query(quantile(0.95, m.REQUEST_DURATION, FLEET), "p95"),
        thresholds=((None, "green"), (0.5, "orange"), (1, "red")),
    )


def active_requests_stat() -> stat.Panel:
    return stat_panel(
        "Requests in flight",
        "Requests being served right now, summed over every worker.",
        "none",
        series_query(gauge(m.ACTIVE_REQUESTS, FLEET), "in flight"),
    )


def requests_per_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Requests/s per node",
        "Throughput of each node; a node falling to zero while others carry on has stopped.",
        "reqps",
        [series_query(exact_rate(REQUESTS, FLEET, (m.NODE,)), "{{host_name}}")],
        links=[node_detail_link("${__field.labels.host_name:percentencode}")],
    )


def error_ratio_per_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "5xx ratio per node",
        "Share of 5xx responses per node: one node high, others low points at that node.",
        "percentunit",
        [series_query(_error_ratio((m.NODE,)), "{{host_name}}")],
        links=[node_detail_link("${__field.labels.host_name:percentencode}")],
    )


def latency_per_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Latency per node (p50 / p95 / p99)",
        "Request duration percentiles per node. Exemplar dots on p95 open the trace.",
        "s",
        [
            series_query(quantile(0.5, m.REQUEST_DURATION, FLEET, (m.NODE,)), "p50 {{host_name}}"),
            series_query(
                quantile(0.95, m.REQUEST_DURATION, FLEET, (m.NODE,)),
                "p95 {{host_name}}",
                exemplar=True,
            ),
            series_query(quantile(0.99, m.REQUEST_DURATION, FLEET, (m.NODE,)), "p99 {{host_name}}"),
        ],
        links=[node_detail_link("${__field.labels.host_name:percentencode}")],
    )


def active_requests_per_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Requests in flight per node",
        "Concurrent requests per node; a rising line at flat throughput means requests queue.",
        "none",
        [series_query(gauge(m.ACTIVE_REQUESTS, FLEET, (m.NODE,)), "{{host_name}}")],
    )


def cpu_per_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "CPU per node (cores)",
        "CPU seconds per second used by all workers of a node (user + system).",
        "none",
        [series_query(exact_rate(m.PROCESS_CPU, FLEET, (m.NODE,)), "{{host_name}}")],
        links=[node_detail_link("${__field.labels.host_name:percentencode}")],
    )


def memory_per_node_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Resident memory per node",
        "RSS summed over the workers of each node.",
        "bytes",
        [series_query(gauge(m.PROCESS_RSS, FLEET, (m.NODE,)), "{{host_name}}")],
        links=[node_detail_link("${__field.labels.host_name:percentencode}")],
    )


def top_routes_table() -> table.Panel:
    by = (m.ROUTE,)
    return table_panel(
        "Top routes by time spent",
        "Where the fleet's request time goes over the selected range. Click a route for its "
        "database queries or its Silk profiles.",
        [
            KeyColumn(
                m.ROUTE,
                "Route",
                links=[
                    data_link(
                        "Database queries of this route",
                        dashboard_url(
                            DATABASE_UID, ["service", "node"], route="${__value.raw:percentencode}"
                        ),
                    ),
                    data_link("Silk profiles of this route", SILK_ROUTE_URL, new_tab=True),
                ],
            )
        ],
        [
            Column("Time spent", exact_increase(REQUEST_SECONDS, FLEET, by), "s"),
            Column(
                "Share of time",
                share(
                    exact_increase(REQUEST_SECONDS, FLEET, by),
                    exact_increase(REQUEST_SECONDS, FLEET),
                ),
                "percentunit",
            ),
            Column("Requests/s", exact_rate(REQUESTS, FLEET, by, "$__range"), "reqps"),
            Column("p95", quantile(0.95, m.REQUEST_DURATION, FLEET, by, "$__range"), "s"),
            Column("5xx ratio", _error_ratio(by, "$__range"), "percentunit"),
        ],
        sort_by="Time spent",
    )


def time_by_route_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Time spent by route (top 10)",
        "Seconds of request time per second, per route: the routes worth optimising first.",
        "s",
        [series_query(topk(10, exact_rate(REQUEST_SECONDS, FLEET, (m.ROUTE,))), "{{http_route}}")],
        stacked=True,
    )


def _by_version(expr: str) -> str:
    return with_default(expr, m.VERSION, m.UNVERSIONED)


def requests_by_version_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Requests/s by version",
        "Traffic per deployed version (service.version): a rolling deploy shifts it from the "
        "old version to the new one.",
        "reqps",
        [series_query(_by_version(exact_rate(REQUESTS, FLEET, BY_VERSION)), VERSION_LEGEND)],
    )


def latency_by_version_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "p95 latency by version",
        "95th percentile request duration per version: compare a new release with the one "
        "it replaces while both serve.",
        "s",
        [
            series_query(
                _by_version(quantile(0.95, m.REQUEST_DURATION, FLEET, BY_VERSION)),
                VERSION_LEGEND,
                exemplar=True,
            )
        ],
    )


def error_ratio_by_version_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "5xx ratio by version",
        "Share of 5xx responses per version: a release that fails where its predecessor did "
        "not shows up here first.",
        "percentunit",
        [series_query(_by_version(_error_ratio(BY_VERSION)), VERSION_LEGEND)],
    )


def queries_per_request_by_version_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "SQL queries per request by version (mean)",
        "A release that adds an N+1 pattern or drops a select_related runs more statements "
        "per request than the version before it.",
        "short",
        [
            series_query(
                _by_version(mean(m.DB_QUERIES_PER_REQUEST, FLEET, BY_VERSION)), VERSION_LEGEND
            )
        ],
    )


def fleet_dashboard() -> dash.Dashboard:
    return assemble(
        new_dashboard(
            FLEET_UID,
            "Fleetscope / Fleet overview",
            "Every node of the fleet at a glance: reporting, load, errors, latency, resources.",
            [service_variable(), node_variable(), silk_base_url_variable()],
            links=[
                dashboard_link(
                    "Capacity",
                    CAPACITY_UID,
                    "Queue time, worker utilization, the load balancer and scalability.",
                )
            ],
        ),
        section(
            "Fleet health",
            cell(nodes_reporting_stat(), w=4, h=5),
            cell(nodes_stopped_stat(), w=4, h=5),
            cell(request_rate_stat(), w=4, h=5),
            cell(error_ratio_stat(), w=4, h=5),
            cell(p95_latency_stat(), w=4, h=5),
            cell(active_requests_stat(), w=4, h=5),
        ),
        section(
            "Traffic and errors",
            cell(requests_per_node_timeseries()),
            cell(error_ratio_per_node_timeseries()),
        ),
        section(
            "Latency",
            cell(latency_per_node_timeseries(), w=16),
            cell(active_requests_per_node_timeseries(), w=8),
        ),
        section(
            "Deploys: latency and errors by version",
            cell(requests_by_version_timeseries(), w=6),
            cell(latency_by_version_timeseries(), w=6),
            cell(error_ratio_by_version_timeseries(), w=6),
            cell(queries_per_request_by_version_timeseries(), w=6),
        ),
        section(
            "Resources",
            cell(cpu_per_node_timeseries()),
            cell(memory_per_node_timeseries()),
        ),
        section(
            "Routes",
            cell(top_routes_table(), w=24, h=10),
            cell(time_by_route_timeseries(), w=24, h=9),
        ),
    )
