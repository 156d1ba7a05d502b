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
