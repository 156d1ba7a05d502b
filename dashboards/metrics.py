"""Prometheus series and label names of the telemetry contract (docs: /work/shared/DESIGN.md).

Renaming any of these is a breaking change for users' dashboards and alerts: keep this
module, the telemetry app and docs/dashboards.md in step.
"""

from __future__ import annotations

from typing import Final

# Histogram base names: the query helpers append _bucket, _sum and _count.
REQUEST_DURATION: Final = "http_server_request_duration_seconds"
DB_DURATION: Final = "db_client_operation_duration_seconds"
DB_QUERIES_PER_REQUEST: Final = "django_db_queries_per_request"
CACHE_DURATION: Final = "django_cache_operation_duration_seconds"
QUEUE_TIME: Final = "http_server_request_queue_time_seconds"

# Bucket bounds (le) of the request-duration histogram (telemetry.aggregate.DURATION_BOUNDS):
# the latency thresholds an SLO can use.
REQUEST_DURATION_BOUNDS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

ACTIVE_REQUESTS: Final = "http_server_active_requests"
DB_STATEMENT_INFO: Final = "django_db_statement_info"
DB_SLOW_QUERIES: Final = "django_db_slow_queries_total"
DB_N_PLUS_ONE: Final = "django_db_n_plus_one_total"
CACHE_OPERATIONS: Final = "django_cache_operations_total"
# Capacity (docs/capacity.md): seconds each worker had a request in flight, and the
# load balancer's stamps that were dropped.
WORKER_BUSY: Final = "fleetscope_worker_busy_time_seconds_total"
QUEUE_TIME_REJECTED: Final = "fleetscope_request_queue_time_rejected_total"

PROCESS_CPU: Final = "process_cpu_time_seconds_total"
PROCESS_RSS: Final = "process_memory_usage_bytes"
PROCESS_VIRTUAL: Final = "process_memory_virtual_bytes"
PROCESS_THREADS: Final = "process_thread_count"
PROCESS_OPEN_FDS: Final = "process_open_file_descriptor_count"
GC_COLLECTIONS: Final = "cpython_gc_collections_total"

# Celery tasks (docs/tasks.md).
TASK_DURATION: Final = "celery_task_duration_seconds"
TASK_QUEUE_WAIT: Final = "celery_task_queue_wait_seconds"
DB_QUERIES_PER_TASK: Final = "django_db_queries_per_task"
TASKS_PUBLISHED: Final = "celery_task_published_total"
TASK_RETRIES: Final = "celery_task_retries_total"
TASK_FAILURES: Final = "celery_task_failures_total"
TASK_QUEUE_WAIT_DROPPED: Final = "celery_task_queue_wait_dropped_total"
QUEUE_DEPTH: Final = "celery_queue_depth"

HISTOGRAMS: Final = (
    REQUEST_DURATION,
    DB_DURATION,
    DB_QUERIES_PER_REQUEST,
    CACHE_DURATION,
    QUEUE_TIME,
    TASK_DURATION,
    TASK_QUEUE_WAIT,
    DB_QUERIES_PER_TASK,
)
SERIES: Final = (
    *(f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")),
    ACTIVE_REQUESTS,
    DB_STATEMENT_INFO,
    DB_SLOW_QUERIES,
    DB_N_PLUS_ONE,
    CACHE_OPERATIONS,
    WORKER_BUSY,
    QUEUE_TIME_REJECTED,
    PROCESS_CPU,
    PROCESS_RSS,
    PROCESS_VIRTUAL,
    PROCESS_THREADS,
    PROCESS_OPEN_FDS,
    GC_COLLECTIONS,
    TASKS_PUBLISHED,
    TASK_RETRIES,
    TASK_FAILURES,
    TASK_QUEUE_WAIT_DROPPED,
    QUEUE_DEPTH,
)

# Every request is counted, so this series exists for every worker that served
# traffic and is re-exported on every interval: the fleet's heartbeat.
HEARTBEAT: Final = f"{REQUEST_DURATION}_count"
# The same for task runs: every worker process that ran a task.
TASK_HEARTBEAT: Final = f"{TASK_DURATION}_count"

# Node identity labels.
SERVICE: Final = "job"
NODE: Final = "host_name"
WORKER: Final = "instance"
# `service.version`, promoted from the resource by the collector (one value per process).
VERSION: Final = "service_version"
UNVERSIONED: Final = "unversioned"

ROUTE: Final = "http_route"
METHOD: Final = "http_request_method"
STATUS: Final = "http_response_status_code"

DB_SYSTEM: Final = "db_system_name"
DB_OPERATION: Final = "db_operation_name"
DB_ALIAS: Final = "django_db_alias"
FINGERPRINT: Final = "django_db_fingerprint"
QUERY_SUMMARY: Final = "db_query_summary"
QUERY_TEXT: Final = "db_query_text"

CACHE_ALIAS: Final = "django_cache_alias"
CACHE_OPERATION: Final = "django_cache_operation"
CACHE_RESULT: Final = "django_cache_result"

TASK: Final = "celery_task_name"
TASK_OUTCOME: Final = "celery_task_outcome"
QUEUE: Final = "messaging_destination_name"
ERROR_TYPE: Final = "error_type"

CPU_MODE: Final = "type"
GC_GENERATION: Final = "cpython_gc_generation"
REJECTED_REASON: Final = "reason"

# The load balancer's own series: HAProxy's built-in Prometheus exporter, scraped directly
# (not through the collector). Fleetscope's convention (docs/capacity.md): the backend is
# named after the service (`job`) and each server after its node (`host_name`), so the
# dashboards' $service and $node variables select balancer series too.
BALANCER_BACKEND_QUEUE: Final = "haproxy_backend_current_queue"
BALANCER_SERVER_QUEUE: Final = "haproxy_server_current_queue"
BALANCER_SERVER_SESSIONS: Final = "haproxy_server_current_sessions"
BALANCER_SERVER_RESPONSES: Final = "haproxy_server_http_responses_total"
BALANCER_SERVER_RESPONSE_TIME: Final = "haproxy_server_response_time_average_seconds"
BALANCER_SERIES: Final = (
    BALANCER_BACKEND_QUEUE,
    BALANCER_SERVER_QUEUE,
    BALANCER_SERVER_SESSIONS,
    BALANCER_SERVER_RESPONSES,
    BALANCER_SERVER_RESPONSE_TIME,
)
BALANCER_BACKEND: Final = "proxy"
BALANCER_SERVER: Final = "server"
