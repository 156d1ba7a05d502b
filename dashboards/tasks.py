"""Tasks dashboard: Celery throughput, duration, queue wait, failures, queue depth, task SQL."""

from __future__ import annotations

import json
from urllib.parse import quote

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries

from . import metrics as m
from .panels import (
    TASKS_UID,
    TRACES_UID,
    Column,
    KeyColumn,
    assemble,
    cell,
    data_link,
    new_dashboard,
    query_variable,
    section,
    series_query,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from .queries import (
    RANGE_WINDOW,
    Selector,
    aggregate,
    increase,
    label_values,
    mean,
    quantile,
    rate,
    ratio,
    with_statement_text,
)

# Everything attributed to a task: `celery_task_name` present (the N+1 and slow-query
# counters carry `http_route` instead for requests, and an All variable matches both).
TASK_WORK = Selector().using("service", "node", "task").excluding(**{m.TASK: ""})
FAILED = TASK_WORK.where(**{m.TASK_OUTCOME: "failure"})
# Per-node readings of broker queues, and counts that carry no task.
NODES = Selector().using("service", "node")

RUNS = f"{m.TASK_DURATION}_count"
RUN_SECONDS = f"{m.TASK_DURATION}_sum"
BY_TASK = (m.TASK,)
BY_QUEUE = (m.QUEUE,)

# A TraceQL search for one task's runs in the trace datasource (Grafana Explore).
_TRACE_QUERY = '{ span.celery.task.name = "@TASK@" }'


def traces_url() -> str:
    """Grafana Explore on the trace datasource, searching the runs of the clicked task."""
    pane = {
        "datasource": TRACES_UID,
        "queries": [
            {
                "refId": "A",
                "datasource": {"type": "tempo", "uid": TRACES_UID},
                "queryType": "traceql",
                "query": _TRACE_QUERY,
            }
        ],
        "range": {"from": "now-1h", "to": "now"},
    }
    encoded = quote(json.dumps({"tasks": pane}, sort_keys=True, separators=(",", ":")), safe="")
    # The task name goes in percent-encoded, like the JSON around it.
    return "/explore?schemaVersion=1&panes=" + encoded.replace(
        "%40TASK%40", "${__value.raw:percentencode}"
    )


def _task_key() -> KeyColumn:
    return KeyColumn(
        m.TASK,
        "Task",
        links=[data_link("Traces of this task", traces_url(), new_tab=True)],
    )


def failure_ratio(by: tuple[str, ...] = (), window: str = "$__rate_interval") -> str:
    """Failed runs / all runs (retries and revocations count as runs, not failures)."""
    return ratio(rate(RUNS, FAILED, by, window), rate(RUNS, TASK_WORK, by, window))


def queue_depth(by: tuple[str, ...] = BY_QUEUE) -> str:
    """Waiting messages per queue: every node reporting a queue reads the same number."""
    return aggregate(NODES(m.QUEUE_DEPTH), by, "max")


# -- overview --------------------------------------------------------------------------------


def task_rate_stat() -> stat.Panel:
    return stat_panel(
        "Task runs/s",
        "Task runs finished per second (any outcome) on the selected worker nodes.",
        "ops",
        series_query(rate(RUNS, TASK_WORK)),
    )


def failure_ratio_stat() -> stat.Panel:
    return stat_panel(
        "Task failure ratio",
        "Share of task runs that raised (retries are not failures).",
        "percentunit",
        series_query(failure_ratio()),
        thresholds=((None, "green"), (0.01, "orange"), (0.05, "red")),
    )


def duration_p95_stat() -> stat.Panel:
    return stat_panel(
        "p95 task duration",
        "95th percentile duration of task runs.",
        "s",
        series_query(quantile(0.95, m.TASK_DURATION, TASK_WORK)),
    )


def queue_wait_p95_stat() -> stat.Panel:
    return stat_panel(
        "p95 queue wait",
        "95th percentile time from publishing (or the ETA) to the start of a run.",
        "s",
        series_query(quantile(0.95, m.TASK_QUEUE_WAIT, TASK_WORK)),
        thresholds=((None, "green"), (10, "orange"), (60, "red")),
    )


def messages_waiting_stat() -> stat.Panel:
    return stat_panel(
        "Messages waiting",
        "Messages in the broker queues now, summed over queues.",
        "short",
        series_query(aggregate(queue_depth())),
    )


def dropped_waits_stat() -> stat.Panel:
    return stat_panel(
        "Queue waits dropped (range)",
        "Queue waits not recorded because publisher and worker clocks disagree: negative or "
        "longer than TASK_MAX_QUEUE_WAIT_S. Above 0, check NTP on the nodes.",
        "short",
        series_query(f"{increase(m.TASK_QUEUE_WAIT_DROPPED, NODES)} or vector(0)"),
        thresholds=((None, "green"), (1, "orange")),
    )


# -- throughput and latency ---------------------------------------------------------------


def runs_by_task_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Task runs/s by task and outcome",
        "Finished runs per second: success, failure, retry (the run asked to be retried) "
        "and revoked.",
        "ops",
        [
            series_query(
                rate(RUNS, TASK_WORK, (m.TASK, m.TASK_OUTCOME)),
                "{{celery_task_name}} {{celery_task_outcome}}",
            )
        ],
        stacked=True,
    )


def published_by_queue_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Published/s by queue",
        "Task messages published per second (by web nodes and by tasks, retries included).",
        "ops",
        [
            series_query(
                rate(m.TASKS_PUBLISHED, TASK_WORK, BY_QUEUE), "{{messaging_destination_name}}"
            )
        ],
        stacked=True,
    )


def duration_p95_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Task duration p95 by task",
        "95th percentile run time per task. Exemplar dots open the trace of a slow run "
        "(which starts at the request that queued it) and that request's Silk profile.",
        "s",
        [
            series_query(
                quantile(0.95, m.TASK_DURATION, TASK_WORK, BY_TASK),
                "{{celery_task_name}}",
                exemplar=True,
            )
        ],
    )


def queue_wait_p95_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Queue wait p95 by queue",
        "95th percentile wait in each queue; rising while throughput is flat means the "
        "workers fall behind.",
        "s",
        [
            series_query(
                quantile(0.95, m.TASK_QUEUE_WAIT, TASK_WORK, BY_QUEUE),
                "{{messaging_destination_name}}",
                exemplar=True,
            )
        ],
    )


def queue_depth_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Messages waiting by queue",
        "Broker queue depth, read by one process per node at each export (max over nodes).",
        "short",
        [series_query(queue_depth(), "{{messaging_destination_name}}")],
    )


def failures_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Failures/s by task and exception",
        "Task runs that raised, by exception type (never the message: it can quote values).",
        "ops",
        [
            series_query(
                rate(m.TASK_FAILURES, TASK_WORK, (m.TASK, m.ERROR_TYPE)),
                "{{celery_task_name}} {{error_type}}",
            )
        ],
    )


def retries_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Retries/s by task",
        "Runs that asked to be retried (`self.retry()` or `autoretry_for`).",
        "ops",
        [series_query(rate(m.TASK_RETRIES, TASK_WORK, BY_TASK), "{{celery_task_name}}")],
    )


def tasks_table() -> table.Panel:
    return table_panel(
        "Tasks by time spent",
        "Where the workers' time goes over the selected range. Click a task for its traces.",
        [_task_key()],
        [
            Column("Time spent", increase(RUN_SECONDS, TASK_WORK, BY_TASK), "s"),
            Column("Runs/s", rate(RUNS, TASK_WORK, BY_TASK, RANGE_WINDOW), "ops"),
            Column("p95", quantile(0.95, m.TASK_DURATION, TASK_WORK, BY_TASK, RANGE_WINDOW), "s"),
            Column(
                "p95 queue wait",
                quantile(0.95, m.TASK_QUEUE_WAIT, TASK_WORK, BY_TASK, RANGE_WINDOW),
                "s",
            ),
            Column("Failure ratio", failure_ratio(BY_TASK, RANGE_WINDOW), "percentunit"),
            Column("Retries", increase(m.TASK_RETRIES, TASK_WORK, BY_TASK), "short", 0),
        ],
        sort_by="Time spent",
    )


# -- SQL inside tasks ------------------------------------------------------------------------


def queries_per_task_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Queries per task run (mean)",
        "Average number of SQL statements one run of a task executes.",
        "short",
        [series_query(mean(m.DB_QUERIES_PER_TASK, TASK_WORK, BY_TASK), "{{celery_task_name}}")],
    )


def task_n_plus_one_table() -> table.Panel:
    fingerprint = (m.TASK, m.FINGERPRINT)
    return table_panel(
        "N+1 detections by task and query",
        "Task runs that repeated one statement at least N_PLUS_ONE_THRESHOLD times.",
        [
            KeyColumn(m.TASK, "Task"),
            KeyColumn(m.FINGERPRINT, "Fingerprint"),
            KeyColumn(m.QUERY_SUMMARY, "Summary"),
            KeyColumn(m.QUERY_TEXT, "Statement"),
        ],
        [
            Column(
                "Detections",
                with_statement_text(increase(m.DB_N_PLUS_ONE, TASK_WORK, fingerprint), NODES),
                "short",
                0,
            )
        ],
        sort_by="Detections",
    )


def task_slow_queries_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Slow queries/s by task",
        "Statements over the slow-query threshold per second, by the task that ran them.",
        "ops",
        [series_query(rate(m.DB_SLOW_QUERIES, TASK_WORK, BY_TASK), "{{celery_task_name}}")],
    )


# -- the dashboard ---------------------------------------------------------------------------


def _variables() -> list[dash.QueryVariable]:
    return [
        query_variable("service", "Service", label_values(m.TASK_HEARTBEAT, m.SERVICE, Selector())),
        query_variable(
            "node",
            "Worker node",
            label_values(m.TASK_HEARTBEAT, m.NODE, Selector().using("service")),
        ),
        query_variable(
            "task",
            "Task",
            label_values(m.TASK_HEARTBEAT, m.TASK, Selector().using("service", "node")),
        ),
    ]


def tasks_dashboard() -> dash.Dashboard:
    return assemble(
        new_dashboard(
            TASKS_UID,
            "Fleetscope / Tasks",
            "Celery tasks across the worker nodes: throughput, duration, queue wait, failures, "
            "queue depth, and the SQL they run.",
            _variables(),
        ),
        section(
            "Overview",
            cell(task_rate_stat(), w=4, h=5),
            cell(failure_ratio_stat(), w=4, h=5),
            cell(duration_p95_stat(), w=4, h=5),
            cell(queue_wait_p95_stat(), w=4, h=5),
            cell(messages_waiting_stat(), w=4, h=5),
            cell(dropped_waits_stat(), w=4, h=5),
        ),
        section(
            "Throughput",
            cell(runs_by_task_timeseries()),
            cell(published_by_queue_timeseries()),
        ),
        section(
            "Latency and queues",
            cell(duration_p95_timeseries(), w=8),
            cell(queue_wait_p95_timeseries(), w=8),
            cell(queue_depth_timeseries(), w=8),
        ),
        section(
            "Failures",
            cell(failures_timeseries()),
            cell(retries_timeseries()),
        ),
        section("Tasks", cell(tasks_table(), w=24, h=10)),
        section(
            "SQL in tasks",
            cell(task_n_plus_one_table(), w=12, h=9),
            cell(queries_per_task_timeseries(), w=6, h=9),
            cell(task_slow_queries_timeseries(), w=6, h=9),
        ),
    )
