"""Slow queries dashboard: which SQL statements cost the fleet most, N+1 patterns, DB load."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries

from . import metrics as m
from .panels import (
    DATABASE_UID,
    SILK_QUERY_URL,
    SILK_ROUTE_URL,
    Column,
    KeyColumn,
    assemble,
    cell,
    data_link,
    new_dashboard,
    node_variable,
    route_variable,
    section,
    series_query,
    service_variable,
    silk_base_url_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from .queries import (
    RANGE_WINDOW,
    Selector,
    aggregate,
    increase,
    mean,
    quantile,
    rate,
    share,
    with_statement_text,
)

# The operation histogram and statement info carry no route; the per-request DB
# metrics do, so only they follow the route variable.
DB = Selector().using("service", "node")
DB_BY_ROUTE = DB.using("route")
# Grouped by route: only work attributed to a route (tasks carry `celery_task_name` instead,
# and the route variable at All matches their missing `http_route`; see the Tasks dashboard).
ROUTED = DB_BY_ROUTE.excluding(**{m.ROUTE: ""})

CALLS = f"{m.DB_DURATION}_count"
DB_SECONDS = f"{m.DB_DURATION}_sum"
FP = (m.FINGERPRINT,)


def _fingerprint_key() -> KeyColumn:
    return KeyColumn(
        m.FINGERPRINT,
        "Fingerprint",
        links=[data_link("Silk profiles running this query", SILK_QUERY_URL, new_tab=True)],
    )


def _route_key() -> KeyColumn:
    return KeyColumn(
        m.ROUTE,
        "Route",
        links=[data_link("Silk profiles of this route", SILK_ROUTE_URL, new_tab=True)],
    )


def _text_keys() -> list[KeyColumn]:
    return [KeyColumn(m.QUERY_SUMMARY, "Summary"), KeyColumn(m.QUERY_TEXT, "Statement")]


def query_rate_stat() -> stat.Panel:
    return stat_panel(
        "Queries/s", "SQL statements executed per second.", "ops", series_query(rate(CALLS, DB))
    )


def mean_query_time_stat() -> stat.Panel:
    return stat_panel(
        "Mean query time",
        "Average duration of one SQL statement.",
        "s",
        series_query(mean(m.DB_DURATION, DB)),
        thresholds=((None, "green"), (0.05, "orange"), (0.2, "red")),
    )


def slow_query_rate_stat() -> stat.Panel:
    return stat_panel(
        "Slow queries/s",
        "Statements slower than the telemetry app's slow-query threshold.",
        "ops",
        series_query(rate(m.DB_SLOW_QUERIES, DB_BY_ROUTE)),
        thresholds=((None, "green"), (0.1, "orange"), (1, "red")),
    )


def n_plus_one_count_stat() -> stat.Panel:
    return stat_panel(
        "N+1 detections (range)",
        "Requests (and task runs) in which the same statement ran repeatedly (an N+1 pattern).",
        "short",
        series_query(increase(m.DB_N_PLUS_ONE, DB_BY_ROUTE)),
        thresholds=((None, "green"), (1, "orange")),
    )


def slow_queries_table() -> table.Panel:
    return table_panel(
        "Slow queries across the fleet",
        "One row per statement fingerprint over the selected range, most expensive first. "
        "Statement text is normalized (no literals). Click a fingerprint for Silk profiles.",
        [_fingerprint_key(), *_text_keys()],
        [
            Column(
                "Share of DB time",
                with_statement_text(
                    share(increase(DB_SECONDS, DB, FP), increase(DB_SECONDS, DB)), DB
                ),
                "percentunit",
            ),
            Column("Calls/s", rate(CALLS, DB, FP, RANGE_WINDOW), "ops"),
            Column("Mean", mean(m.DB_DURATION, DB, FP, RANGE_WINDOW), "s"),
            Column("p95", quantile(0.95, m.DB_DURATION, DB, FP, RANGE_WINDOW), "s"),
            Column("Total time", increase(DB_SECONDS, DB, FP), "s"),
            Column("Slow runs", increase(m.DB_SLOW_QUERIES, DB_BY_ROUTE, FP), "short", 0),
            Column(
                "Nodes with slow runs",
                aggregate(
                    f"{increase(m.DB_SLOW_QUERIES, DB_BY_ROUTE, (*FP, m.NODE))} > 0", FP, "count"
                ),
                "short",
                0,
            ),
        ],
        sort_by="Share of DB time",
    )


def n_plus_one_table() -> table.Panel:
    return table_panel(
        "N+1 detections by route and query",
        "Which view repeats which statement; fix with select_related / prefetch_related.",
        [_route_key(), _fingerprint_key(), *_text_keys()],
        [
            Column(
                "Detections",
                with_statement_text(increase(m.DB_N_PLUS_ONE, ROUTED, (m.ROUTE, *FP)), DB),
                "short",
                0,
            )
        ],
        sort_by="Detections",
    )


def n_plus_one_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "N+1 detections/s by route",
        "When N+1 patterns started or stopped, per route.",
        "ops",
        [series_query(rate(m.DB_N_PLUS_ONE, ROUTED, (m.ROUTE,)), "{{http_route}}")],
    )


def slow_queries_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Slow queries/s by route",
        "Slow statements per second, by the route that ran them.",
        "ops",
        [series_query(rate(m.DB_SLOW_QUERIES, ROUTED, (m.ROUTE,)), "{{http_route}}")],
    )


def queries_per_request_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Queries per request by route (mean)",
        "Average number of SQL statements one request of a route runs.",
        "short",
        [series_query(mean(m.DB_QUERIES_PER_REQUEST, DB_BY_ROUTE, (m.ROUTE,)), "{{http_route}}")],
    )


def queries_per_request_p95_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Queries per request by route (p95)",
        "The heavy tail: requests of a route that run many more statements than usual.",
        "short",
        [
            series_query(
                quantile(0.95, m.DB_QUERIES_PER_REQUEST, DB_BY_ROUTE, (m.ROUTE,)), "{{http_route}}"
            )
        ],
    )


def db_time_by_alias_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "DB time by alias",
        "Seconds spent in the database per second, per Django database alias.",
        "s",
        [series_query(rate(DB_SECONDS, DB, (m.DB_ALIAS,)), "{{django_db_alias}}")],
        stacked=True,
    )


def db_latency_by_operation_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Query latency p95 by operation",
        "95th percentile duration per SQL operation (SELECT, INSERT, ...). Exemplar dots "
        "open the trace of a slow statement.",
        "s",
        [
            series_query(
                quantile(0.95, m.DB_DURATION, DB, (m.DB_OPERATION,)),
                "{{db_operation_name}}",
                exemplar=True,
            )
        ],
    )


def database_dashboard() -> dash.Dashboard:
    return assemble(
        new_dashboard(
            DATABASE_UID,
            "Fleetscope / Slow queries",
            "SQL statements by fingerprint across the fleet: cost, slowness, N+1 patterns.",
            [service_variable(), node_variable(), route_variable(), silk_base_url_variable()],
        ),
        section(
            "Overview",
            cell(query_rate_stat(), w=6, h=5),
            cell(mean_query_time_stat(), w=6, h=5),
            cell(slow_query_rate_stat(), w=6, h=5),
            cell(n_plus_one_count_stat(), w=6, h=5),
        ),
        section("Slow queries", cell(slow_queries_table(), w=24, h=12)),
        section(
            "N+1 patterns",
            cell(n_plus_one_table(), w=14, h=9),
            cell(n_plus_one_timeseries(), w=10, h=9),
        ),
        section(
            "Per route",
            cell(slow_queries_timeseries(), w=8),
            cell(queries_per_request_timeseries(), w=8),
            cell(queries_per_request_p95_timeseries(), w=8),
        ),
        section(
            "Database load",
            cell(db_time_by_alias_timeseries()),
            cell(db_latency_by_operation_timeseries()),
        ),
    )
