"""Prometheus alerting rules for the fleet, built with the same query helpers as the panels."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from . import metrics as m
from .queries import Selector, aggregate, exact_rate, exact_ratio, gauge, quantile, ratio, stopped

RULES_FILE_NAME = "fleetscope-rules.yml"

# Thresholds users tune most; docs/dashboards.md lists them.
ROUTE_P95_SECONDS = 1.0
ROUTE_MIN_REQUESTS_PER_SECOND = 0.1
ERROR_RATIO = 0.05
CACHE_HIT_RATIO_DROP = 0.75  # alert below this fraction of the 6 h hit ratio
SLOW_QUERIES_PER_SECOND = 0.2
QUEUE_TIME_P95_SECONDS = 0.1  # requests waiting this long for a worker, sustained
QUEUE_MIN_REQUESTS_PER_SECOND = 0.1
WORKER_UTILIZATION = 0.85  # busy workers / workers on a node, sustained
STOPPED_WINDOW = "1h"
# Celery tasks.
QUEUE_DEPTH_MIN = 100  # a growing queue alerts only past this many waiting messages
QUEUE_GROWTH_WINDOW = "15m"
QUEUE_WAIT_P95_SECONDS = 60.0
QUEUE_WAIT_RISE = 2.0  # ... and at least this multiple of its 6 h p95
TASK_FAILURE_RATIO = 0.1
TASK_MIN_RUNS_PER_SECOND = 0.01

# Rules see every series; no dashboard variables here.
EVERYTHING = Selector()
ROUTED = EVERYTHING.excluding(**{m.ROUTE: "unmatched"})
SERVER_ERRORS = EVERYTHING.matching(**{m.STATUS: "5.."})
CACHE_HITS = EVERYTHING.where(**{m.CACHE_RESULT: "hit"})
CACHE_LOOKUPS = EVERYTHING.matching(**{m.CACHE_RESULT: "hit|miss"})

REQUESTS = f"{m.REQUEST_DURATION}_count"
QUEUED = f"{m.QUEUE_TIME}_count"
TASK_RUNS = f"{m.TASK_DURATION}_count"
TASK_WORK = EVERYTHING.excluding(**{m.TASK: ""})
TASK_FAILED = TASK_WORK.where(**{m.TASK_OUTCOME: "failure"})
BY_QUEUE = (m.SERVICE, m.QUEUE)
BY_TASK = (m.SERVICE, m.TASK)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    duration: str
    severity: str
    summary: str
    description: str

    def to_rule(self) -> dict[str, object]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary, "description": self.description},
        }


def _hit_ratio(window: str) -> str:
    return exact_ratio(
        m.CACHE_OPERATIONS, CACHE_HITS, CACHE_LOOKUPS, (m.SERVICE, m.CACHE_ALIAS), window
    )


NODE = (m.SERVICE, m.NODE)


def node_utilization(window: str) -> str:
    """What FleetscopeWorkersSaturated compares with its threshold: busy workers / workers."""
    return ratio(
        exact_rate(m.WORKER_BUSY, EVERYTHING, NODE, window),
        gauge(m.WORKER_BUSY, EVERYTHING, NODE, "count"),
    )


def node_queue_time_p95(window: str) -> str:
    """What FleetscopeRequestsQueueing compares with its threshold."""
    return quantile(0.95, m.QUEUE_TIME, EVERYTHING, NODE, window)


def alerts() -> list[Alert]:
    route = (m.SERVICE, m.ROUTE)
    service = (m.SERVICE,)
    error_ratio = exact_ratio(REQUESTS, SERVER_ERRORS, EVERYTHING, service, "5m")
    return [
        Alert(
            "FleetscopeRouteLatencyHigh",
            f"{quantile(0.95, m.REQUEST_DURATION, ROUTED, route, '5m')} > {ROUTE_P95_SECONDS}"
            f" and {exact_rate(REQUESTS, ROUTED, route, '5m')} > {ROUTE_MIN_REQUESTS_PER_SECOND}",
            "10m",
            "warning",
            "p95 latency of {{ $labels.http_route }} is {{ $value | humanizeDuration }}",
            f"95th percentile request duration of route {{{{ $labels.http_route }}}} in "
            f"{{{{ $labels.job }}}} has been above {ROUTE_P95_SECONDS:g}s for 10 minutes.",
        ),
        Alert(
            "FleetscopeErrorRatioHigh",
            f"{error_ratio} > {ERROR_RATIO}",
            "5m",
            "critical",
            "{{ $labels.job }} answers {{ $value | humanizePercentage }} of requests with 5xx",
            f"More than {ERROR_RATIO:.0%} of the responses of {{{{ $labels.job }}}} have been "
            "5xx for 5 minutes.",
        ),
        Alert(
            "FleetscopeCacheHitRatioDrop",
            f"({_hit_ratio('10m')}) < {CACHE_HIT_RATIO_DROP} * ({_hit_ratio('6h')})",
            "15m",
            "warning",
            "Cache {{ $labels.django_cache_alias }} hit ratio dropped to "
            "{{ $value | humanizePercentage }}",
            f"The hit ratio of cache alias {{{{ $labels.django_cache_alias }}}} in "
            f"{{{{ $labels.job }}}} is below {CACHE_HIT_RATIO_DROP:.0%} of its 6 h average: "
            "a flushed, evicted or misconfigured cache.",
        ),
        Alert(
            "FleetscopeNodeStoppedReporting",
            stopped(m.HEARTBEAT, EVERYTHING, (m.SERVICE, m.NODE), STOPPED_WINDOW),
            "2m",
            "critical",
            "Node {{ $labels.host_name }} stopped reporting",
            f"{{{{ $labels.host_name }}}} exported metrics for {{{{ $labels.job }}}} within "
            f"the last {STOPPED_WINDOW} but exports nothing now: the node, its workers or its "
            "path to the collector is down.",
        ),
        Alert(
            "FleetscopeSlowQueries",
            f"{exact_rate(m.DB_SLOW_QUERIES, EVERYTHING, (m.SERVICE, m.FINGERPRINT), '5m')}"
            f" > {SLOW_QUERIES_PER_SECOND}",
            "10m",
            "warning",
            "Query {{ $labels.django_db_fingerprint }} is slow "
            "{{ $value | humanize }} times per second",
            "Statement fingerprint {{ $labels.django_db_fingerprint }} in {{ $labels.job }} "
            f"exceeded the slow-query threshold more than {SLOW_QUERIES_PER_SECOND} times per "
            "second for 10 minutes; see the Slow queries dashboard for its text.",
        ),
        Alert(
            "FleetscopeRequestsQueueing",
            f"{node_queue_time_p95('5m')} > {QUEUE_TIME_P95_SECONDS}"
            f" and {exact_rate(QUEUED, EVERYTHING, NODE, '5m')} > {QUEUE_MIN_REQUESTS_PER_SECOND}",
            "10m",
            "warning",
            "Requests queue {{ $value | humanizeDuration }} (p95) before a worker of "
            "{{ $labels.host_name }} takes them",
            f"The 95th percentile queue time of {{{{ $labels.host_name }}}} in "
            f"{{{{ $labels.job }}}} has been above {QUEUE_TIME_P95_SECONDS:g}s for 10 minutes: "
            "its workers cannot keep up. With high utilization, add nodes or workers; see the "
            "Capacity dashboard.",
        ),
        Alert(
            "FleetscopeWorkersSaturated",
            f"{node_utilization('5m')} > {WORKER_UTILIZATION}",
            "10m",
            "warning",
            "Workers of {{ $labels.host_name }} are busy {{ $value | humanizePercentage }} "
            "of the time",
            f"The workers of {{{{ $labels.host_name }}}} in {{{{ $labels.job }}}} have been busy "
            f"more than {WORKER_UTILIZATION:.0%} of the time for 10 minutes: requests will "
            "queue at the next peak. See the Capacity dashboard for queue time and headroom.",
        ),
        *task_alerts(),
    ]


# -- Celery tasks: each alert's measures are functions, so the live test can run them alone --


def queue_depth() -> str:
    """Waiting messages per queue (every reading node sees the same queue: max)."""
    return aggregate(EVERYTHING(m.QUEUE_DEPTH), BY_QUEUE, "max")


def queue_depth_growth() -> str:
    """Per-second growth of each queue's depth over the growth window (linear regression)."""
    return aggregate(f"deriv({EVERYTHING(m.QUEUE_DEPTH)}[{QUEUE_GROWTH_WINDOW}])", BY_QUEUE, "max")


def queue_wait_p95(window: str) -> str:
    return quantile(0.95, m.TASK_QUEUE_WAIT, TASK_WORK, BY_QUEUE, window)


def task_failure_ratio() -> str:
    return exact_ratio(TASK_RUNS, TASK_FAILED, TASK_WORK, BY_TASK, "5m")


def task_run_rate() -> str:
    return exact_rate(TASK_RUNS, TASK_WORK, BY_TASK, "5m")


def task_alert_measures() -> dict[str, list[str]]:
    """The expressions each task alert compares, by alert name."""
    return {
        "FleetscopeTaskQueueGrowing": [queue_depth(), queue_depth_growth()],
        "FleetscopeTaskQueueWaitRising": [queue_wait_p95("10m"), queue_wait_p95("6h")],
        "FleetscopeTaskFailureRatioHigh": [task_failure_ratio(), task_run_rate()],
    }


def task_alerts() -> list[Alert]:
    return [
        Alert(
            "FleetscopeTaskQueueGrowing",
            f"{queue_depth()} > {QUEUE_DEPTH_MIN} and {queue_depth_growth()} > 0",
            QUEUE_GROWTH_WINDOW,
            "warning",
            "Queue {{ $labels.messaging_destination_name }} keeps growing "
            "({{ $value | humanize }} messages waiting)",
            f"More than {QUEUE_DEPTH_MIN} messages wait in queue "
            "{{ $labels.messaging_destination_name }} of {{ $labels.job }} and the backlog "
            f"has grown for {QUEUE_GROWTH_WINDOW}: the workers consume slower than tasks are "
            "published, or none consume that queue.",
        ),
        Alert(
            "FleetscopeTaskQueueWaitRising",
            f"{queue_wait_p95('10m')} > {QUEUE_WAIT_P95_SECONDS:g}"
            f" and {queue_wait_p95('10m')} > {QUEUE_WAIT_RISE:g} * {queue_wait_p95('6h')}",
            "10m",
            "warning",
            "Tasks wait {{ $value | humanizeDuration }} in queue "
            "{{ $labels.messaging_destination_name }}",
            "The 95th percentile queue wait of {{ $labels.messaging_destination_name }} in "
            f"{{{{ $labels.job }}}} is above {QUEUE_WAIT_P95_SECONDS:g}s and "
            f"{QUEUE_WAIT_RISE:g} times its 6 h level: add workers or find the slow task "
            "holding them.",
        ),
        Alert(
            "FleetscopeTaskFailureRatioHigh",
            f"{task_failure_ratio()} > {TASK_FAILURE_RATIO}"
            f" and {task_run_rate()} > {TASK_MIN_RUNS_PER_SECOND}",
            "10m",
            "warning",
            "Task {{ $labels.celery_task_name }} fails {{ $value | humanizePercentage }} of "
            "its runs",
            f"More than {TASK_FAILURE_RATIO:.0%} of the runs of {{{{ $labels.celery_task_name }}}} "
            "in {{ $labels.job }} have raised for 10 minutes; the Tasks dashboard shows the "
            "exception types.",
        ),
    ]


def rule_groups() -> dict[str, object]:
    return {
        "groups": [
            {
                "name": "fleetscope",
                "interval": "1m",
                "rules": [alert.to_rule() for alert in alerts()],
            }
        ]
    }


def render_rules() -> str:
    """The rule file, byte-for-byte stable across runs."""
    header = "# Generated by `fleetscope dashboards build` from dashboards/rules.py; do not edit.\n"
    body = yaml.safe_dump(rule_groups(), sort_keys=False, width=100_000, allow_unicode=True)
    return header + body
