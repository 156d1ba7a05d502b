"""Node detail dashboard: one node and its worker processes (instance), all signals."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries

from . import metrics as m
from .panels import (
    NODE_UID,
    SILK_QUERY_URL,
    SILK_ROUTE_URL,
    Column,
    KeyColumn,
    assemble,
    cell,
    data_link,
    instance_variable,
    new_dashboard,
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
    RANGE_WINDOW,
    RATE_WINDOW,
    Selector,
    count_distinct,
    exact_increase,
    exact_rate,
    exact_ratio,
    gauge,
    mean,
    quantile,
    share,
    with_statement_text,
)

WORKERS = Selector().using("service", "node", "instance")
SERVER_ERRORS = WORKERS.matching(**{m.STATUS: "5.."})
CACHE_HITS = WORKERS.where(**{m.CACHE_RESULT: "hit"})
CACHE_LOOKUPS = WORKERS.matching(**{m.CACHE_RESULT: "hit|miss"})

REQUESTS = f"{m.REQUEST_DURATION}_count"
REQUEST_SECONDS = f"{m.REQUEST_DURATION}_sum"
DB_SECONDS = f"{m.DB_DURATION}_sum"
BY_WORKER = (m.WORKER,)
WORKER_LEGEND = "{{instance}}"


def _error_ratio(by: tuple[str, ...] = (), window: str = RATE_WINDOW) -> str:
    return exact_ratio(REQUESTS, SERVER_ERRORS, WORKERS, by, window)


def workers_stat() -> stat.Panel:
    return stat_panel(
        "Workers reporting",
        "Worker processes (service.instance.id) of this node exporting metrics now. A drop "
        "means a worker died or is being recycled.",
        "none",
        series_query(count_distinct(m.HEARTBEAT, WORKERS, m.WORKER)),
    )


def request_rate_stat() -> stat.Panel:
    return stat_panel(
        "Requests/s",
        "Requests served by this node.",
        "reqps",
        series_query(exact_rate(REQUESTS, WORKERS)),
    )


def error_ratio_stat() -> stat.Panel:
    return stat_panel(
        "5xx ratio",
        "Share of this node's responses with a 5xx status.",
        "percentunit",
        series_query(_error_ratio()),
        thresholds=((None, "green"), (0.01, "orange"), (0.05, "red")),
    )


def p95_latency_stat() -> stat.Panel:
    return stat_panel(
        "p95 latency",
        "95th percentile request duration on this node.",
        "s",
        series_query(quantile(0.95, m.REQUEST_DURATION, WORKERS)),
        thresholds=((None, "green"), (0.5, "orange"), (1, "red")),
    )


def cpu_stat() -> stat.Panel:
    return stat_panel(
        "CPU (cores)",
        "CPU seconds per second used by this node's workers.",
        "none",
        series_query(exact_rate(m.PROCESS_CPU, WORKERS)),
    )


def memory_stat() -> stat.Panel:
    return stat_panel(
        "Resident memory",
        "RSS of all workers of this node.",
        "bytes",
        series_query(gauge(m.PROCESS_RSS, WORKERS)),
    )


def requests_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Requests/s per worker",
        "How evenly the server spreads requests over its workers.",
        "reqps",
        [series_query(exact_rate(REQUESTS, WORKERS, BY_WORKER), WORKER_LEGEND)],
    )


def latency_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "p95 latency per worker",
        "One slow worker among fast ones: a stuck thread, a leak or a hot lock. Exemplar dots "
        "open the trace.",
        "s",
        [
            series_query(
                quantile(0.95, m.REQUEST_DURATION, WORKERS, BY_WORKER), WORKER_LEGEND, exemplar=True
            )
        ],
    )


def responses_by_status_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Responses/s by status code",
        "Status code mix of this node.",
        "reqps",
        [series_query(exact_rate(REQUESTS, WORKERS, (m.STATUS,)), "{{http_response_status_code}}")],
        stacked=True,
    )


def active_requests_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Requests in flight per worker",
        "Concurrent requests inside each worker.",
        "none",
        [series_query(gauge(m.ACTIVE_REQUESTS, WORKERS, BY_WORKER), WORKER_LEGEND)],
    )


def cpu_by_mode_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "CPU by mode (cores)",
        "User vs system CPU of the node's workers; high system time points at I/O or syscalls.",
        "none",
        [series_query(exact_rate(m.PROCESS_CPU, WORKERS, (m.CPU_MODE,)), "{{type}}")],
        stacked=True,
    )


def cpu_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "CPU per worker (cores)",
        "CPU seconds per second per worker process.",
        "none",
        [series_query(exact_rate(m.PROCESS_CPU, WORKERS, BY_WORKER), WORKER_LEGEND)],
    )


def rss_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Resident memory per worker",
        "A line that only grows is a leak; gunicorn's max_requests recycles such workers.",
        "bytes",
        [series_query(gauge(m.PROCESS_RSS, WORKERS, BY_WORKER), WORKER_LEGEND)],
    )


def virtual_memory_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Virtual memory per worker",
        "Address space reserved by each worker.",
        "bytes",
        [series_query(gauge(m.PROCESS_VIRTUAL, WORKERS, BY_WORKER), WORKER_LEGEND)],
    )


def threads_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Threads per worker",
        "Thread count per worker process.",
        "none",
        [series_query(gauge(m.PROCESS_THREADS, WORKERS, BY_WORKER), WORKER_LEGEND)],
    )


def open_fds_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Open file descriptors per worker",
        "Sockets and files held open; steady growth is a connection or file leak.",
        "none",
        [series_query(gauge(m.PROCESS_OPEN_FDS, WORKERS, BY_WORKER), WORKER_LEGEND)],
    )


def gc_collections_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Garbage collections/s by generation",
        "CPython GC runs; frequent generation-2 collections cost latency.",
        "ops",
        [
            series_query(
                exact_rate(m.GC_COLLECTIONS, WORKERS, (m.GC_GENERATION,)),
                "gen {{cpython_gc_generation}}",
            )
        ],
    )


def db_time_per_worker_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "DB time per worker",
        "Seconds per second each worker waits on the database.",
        "s",
        [series_query(exact_rate(DB_SECONDS, WORKERS, BY_WORKER), WORKER_LEGEND)],
    )


def cache_hit_ratio_timeseries() -> timeseries.Panel:
    by = (m.CACHE_ALIAS,)
    return timeseries_panel(
        "Cache hit ratio by alias",
        "hits / (hits + misses) on this node.",
        "percentunit",
        [
            series_query(
                exact_ratio(m.CACHE_OPERATIONS, CACHE_HITS, CACHE_LOOKUPS, by),
                "{{django_cache_alias}}",
            )
        ],
    )


def top_queries_table() -> table.Panel:
    fp = (m.FINGERPRINT,)
    return table_panel(
        "Top queries on this node",
        "Statement fingerprints by share of this node's DB time over the selected range.",
        [
            KeyColumn(
                m.FINGERPRINT,
                "Fingerprint",
                links=[data_link("Silk profiles running this query", SILK_QUERY_URL, new_tab=True)],
            ),
            KeyColumn(m.QUERY_SUMMARY, "Summary"),
            KeyColumn(m.QUERY_TEXT, "Statement"),
        ],
        [
            Column(
                "Share of DB time",
                with_statement_text(
                    share(
                        exact_increase(DB_SECONDS, WORKERS, fp), exact_increase(DB_SECONDS, WORKERS)
                    ),
                    WORKERS,
                ),
                "percentunit",
            ),
            Column(
                "Calls/s", exact_rate(f"{m.DB_DURATION}_count", WORKERS, fp, RANGE_WINDOW), "ops"
            ),
            Column("Mean", mean(m.DB_DURATION, WORKERS, fp, RANGE_WINDOW), "s"),
        ],
        sort_by="Share of DB time",
    )


def top_routes_table() -> table.Panel:
    by = (m.ROUTE,)
    return table_panel(
        "Routes on this node",
        "Where this node's request time goes over the selected range.",
        [
            KeyColumn(
                m.ROUTE,
                "Route",
                links=[data_link("Silk profiles of this route", SILK_ROUTE_URL, new_tab=True)],
            )
        ],
        [
            Column("Time spent", exact_increase(REQUEST_SECONDS, WORKERS, by), "s"),
            Column("Requests/s", exact_rate(REQUESTS, WORKERS, by, RANGE_WINDOW), "reqps"),
            Column("p95", quantile(0.95, m.REQUEST_DURATION, WORKERS, by, RANGE_WINDOW), "s"),
            Column("5xx ratio", _error_ratio(by, RANGE_WINDOW), "percentunit"),
        ],
        sort_by="Time spent",
    )


def node_dashboard() -> dash.Dashboard:
    return assemble(
        new_dashboard(
            NODE_UID,
            "Fleetscope / Node detail",
            "One node and its worker processes: traffic, latency, process health, DB and cache.",
            [
                service_variable(),
                node_variable(include_all=False),
                instance_variable(),
                silk_base_url_variable(),
            ],
        ),
        section(
            "Node health",
            cell(workers_stat(), w=4, h=5),
            cell(request_rate_stat(), w=4, h=5),
            cell(error_ratio_stat(), w=4, h=5),
            cell(p95_latency_stat(), w=4, h=5),
            cell(cpu_stat(), w=4, h=5),
            cell(memory_stat(), w=4, h=5),
        ),
        section(
            "Requests per worker",
            cell(requests_per_worker_timeseries()),
            cell(latency_per_worker_timeseries()),
            cell(responses_by_status_timeseries()),
            cell(active_requests_per_worker_timeseries()),
        ),
        section(
            "Process",
            cell(cpu_by_mode_timeseries(), w=8),
            cell(cpu_per_worker_timeseries(), w=8),
            cell(gc_collections_timeseries(), w=8),
            cell(rss_per_worker_timeseries(), w=8),
            cell(virtual_memory_per_worker_timeseries(), w=8),
            cell(threads_per_worker_timeseries(), w=8),
            cell(open_fds_per_worker_timeseries(), w=8),
        ),
        section(
            "Database and cache",
            cell(db_time_per_worker_timeseries()),
            cell(cache_hit_ratio_timeseries()),
            cell(top_queries_table(), w=24, h=10),
        ),
        section("Routes", cell(top_routes_table(), w=24, h=10)),
    )
