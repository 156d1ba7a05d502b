"""The telemetry contract (DESIGN.md): every metric Fleetscope records, built once per process."""

from __future__ import annotations

from .aggregate import (
    CACHE_DURATION_BOUNDS,
    COUNT_BOUNDS,
    DURATION_BOUNDS,
    QUERY_DURATION_BOUNDS,
    QUEUE_TIME_BOUNDS,
    Aggregator,
)

# Attribute names, in the order callers build their key tuples.
REQUEST_ATTRS = ("http.request.method", "http.route", "http.response.status_code")
ACTIVE_ATTRS = ("http.request.method",)
QUERY_ATTRS = ("db.system.name", "db.operation.name", "django.db.alias", "django.db.fingerprint")
STATEMENT_ATTRS = ("django.db.fingerprint", "db.query.summary", "db.query.text")
ROUTE_FINGERPRINT_ATTRS = ("django.db.fingerprint", "http.route")
CACHE_OP_ATTRS = ("django.cache.alias", "django.cache.operation", "django.cache.result")
CACHE_DURATION_ATTRS = ("django.cache.alias", "django.cache.operation")
EXPORT_FAILURE_ATTRS = ("signal", "error.type")
QUEUE_TIME_ATTRS = ("http.route",)
QUEUE_TIME_REJECTED_ATTRS = ("reason",)

# Route label for work that happens outside any request (commands, threads).
NO_ROUTE = "none"
UNMATCHED_ROUTE = "unmatched"


class Instruments:
    """One process's instruments; callers pass attribute values as tuples in the order above."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator
        self.request_duration = aggregator.histogram(
            "http.server.request.duration",
            "s",
            "Duration of HTTP server requests.",
            REQUEST_ATTRS,
            DURATION_BOUNDS,
        )
        # Saturation (docs/capacity.md): the time this worker process had at least one
        # request in flight; rate() of it is the worker's utilization.
        self.busy_time = aggregator.busy_time(
            "fleetscope.worker.busy_time",
            "Seconds this worker process had at least one request in flight.",
        )
        self.active_requests = aggregator.in_flight(
            "http.server.active_requests",
            "{request}",
            "Number of active HTTP server requests.",
            ACTIVE_ATTRS,
            self.busy_time,
        )
        self.queue_time = aggregator.histogram(
            "http.server.request.queue_time",
            "s",
            "Time between the load balancer's X-Request-Start stamp and the worker's start.",
            QUEUE_TIME_ATTRS,
            QUEUE_TIME_BOUNDS,
        )
        self.queue_time_rejected = aggregator.counter(
            "fleetscope.request.queue_time.rejected",
            "{request}",
            "Queue-time stamps dropped: in the future, too old (clock skew) or malformed.",
            QUEUE_TIME_REJECTED_ATTRS,
        )
        self.query_duration = aggregator.histogram(
            "db.client.operation.duration",
            "s",
            "Duration of database client operations.",
            QUERY_ATTRS,
            QUERY_DURATION_BOUNDS,
        )
        self.statement_info = aggregator.info(
            "django.db.statement.info",
            "Normalized text of each statement fingerprint.",
            STATEMENT_ATTRS,
        )
        self.slow_queries = aggregator.counter(
            "django.db.slow_queries",
            "{query}",
            "Queries slower than SLOW_QUERY_MS.",
            ROUTE_FINGERPRINT_ATTRS,
        )
        self.n_plus_one = aggregator.counter(
            "django.db.n_plus_one",
            "{detection}",
            "Requests repeating one statement at least N_PLUS_ONE_THRESHOLD times.",
            ROUTE_FINGERPRINT_ATTRS,
        )
        self.queries_per_request = aggregator.histogram(
            "django.db.queries_per_request",
            "{query}",
            "SQL queries per request.",
            ("http.route",),
            COUNT_BOUNDS,
        )
        self.cache_operations = aggregator.counter(
            "django.cache.operations", "{operation}", "Cache operations by result.", CACHE_OP_ATTRS
        )
        self.cache_duration = aggregator.histogram(
            "django.cache.operation.duration",
            "s",
            "Duration of cache operations.",
            CACHE_DURATION_ATTRS,
            CACHE_DURATION_BOUNDS,
        )
        # Fleetscope's own export (docs/reliability.md): what it could not deliver.
        self.export_failures = aggregator.counter(
            "fleetscope.export.failures",
            "{export}",
            "Export attempts the collector did not accept (by signal and error type).",
            EXPORT_FAILURE_ATTRS,
        )
        self.spans_dropped = aggregator.counter(
            "fleetscope.export.spans.dropped",
            "{span}",
            "Sampled spans given up: queue_full, rejected by the collector, or left at exit.",
            ("reason",),
        )
        self.spans_exported = aggregator.counter(
            "fleetscope.export.spans.exported",
            "{span}",
            "Sampled spans the collector accepted.",
            (),
        )


# Background tasks (telemetry/tasks): the task name takes the place of `http.route`.
TASK_ATTR = "celery.task.name"
QUEUE_ATTR = "messaging.destination.name"
TASK_DURATION_ATTRS = (TASK_ATTR, "celery.task.outcome")
TASK_QUEUE_ATTRS = (TASK_ATTR, QUEUE_ATTR)
TASK_FAILURE_ATTRS = (TASK_ATTR, "error.type")
TASK_FINGERPRINT_ATTRS = ("django.db.fingerprint", TASK_ATTR)
# Queue waits from seconds to a day: a backlog is measured in minutes and hours, not ms.
QUEUE_WAIT_BOUNDS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
)  # fmt: skip
# Tasks run longer than requests: the HTTP bounds, extended to 10 minutes.
TASK_DURATION_BOUNDS: tuple[float, ...] = (*DURATION_BOUNDS, 30.0, 60.0, 300.0, 600.0)


class TaskInstruments:
    """The instruments of background tasks, built once per runtime when Celery is in use."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.duration = aggregator.histogram(
            "celery.task.duration",
            "s",
            "Duration of task runs, by outcome (success, failure, retry, revoked).",
            TASK_DURATION_ATTRS,
            TASK_DURATION_BOUNDS,
        )
        self.queue_wait = aggregator.histogram(
            "celery.task.queue_wait",
            "s",
            "Time from publishing (or the ETA) to the start of a task run.",
            TASK_QUEUE_ATTRS,
            QUEUE_WAIT_BOUNDS,
        )
        self.queue_wait_dropped = aggregator.counter(
            "celery.task.queue_wait.dropped",
            "{task}",
            "Queue waits not recorded: negative or implausibly large (clock skew).",
            ("reason",),
        )
        self.published = aggregator.counter(
            "celery.task.published",
            "{task}",
            "Task messages published (retries included), by task and queue.",
            TASK_QUEUE_ATTRS,
        )
        self.retries = aggregator.counter(
            "celery.task.retries", "{retry}", "Task runs that asked to be retried.", (TASK_ATTR,)
        )
        self.failures = aggregator.counter(
            "celery.task.failures",
            "{failure}",
            "Task runs that raised, by exception type.",
            TASK_FAILURE_ATTRS,
        )
        self.queue_depth = aggregator.observed_gauge(
            "celery.queue.depth",
            "{message}",
            "Messages waiting in a broker queue (read by one process per node).",
            (QUEUE_ATTR,),
        )
        self.queries_per_task = aggregator.histogram(
            "django.db.queries_per_task",
            "{query}",
            "SQL queries per task run.",
            (TASK_ATTR,),
            COUNT_BOUNDS,
        )
        # The request instruments' names, with the task in place of the route.
        self.slow_queries = aggregator.counter(
            "django.db.slow_queries",
            "{query}",
            "Queries slower than SLOW_QUERY_MS.",
            TASK_FINGERPRINT_ATTRS,
        )
        self.n_plus_one = aggregator.counter(
            "django.db.n_plus_one",
            "{detection}",
            "Requests repeating one statement at least N_PLUS_ONE_THRESHOLD times.",
            TASK_FINGERPRINT_ATTRS,
        )
