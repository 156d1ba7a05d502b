"""A synthetic fleet's metrics, shaped exactly like the telemetry contract, as OpenMetrics text
that `promtool tsdb create-blocks-from openmetrics` backfills into a real Prometheus."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

SERVICE = "shop"
ALIVE_NODES = ("node-1", "node-2")
STOPPED_NODE = "node-3"
NODES = (*ALIVE_NODES, STOPPED_NODE)
WORKERS_PER_NODE = 2
STEP_SECONDS = 15
HISTORY_SECONDS = 20 * 60
# node-3 stops exporting this long before "now": longer than Prometheus' 5 min lookback.
STOPPED_FOR_SECONDS = 10 * 60

# Per worker, per second.
CACHE_HITS_PER_SECOND = 3.0
CACHE_MISSES_PER_SECOND = 1.0
# Capacity: each worker busy this share of the time; queue-time stamps rejected per second;
# requests the balancer sends to each alive node, per second (node-1 twice node-2's).
WORKER_UTILIZATION = 0.4
REJECTED_STAMPS_PER_SECOND = 0.01
BALANCER_RESPONSES_PER_SECOND = {"node-1": 8.0, "node-2": 4.0, STOPPED_NODE: 4.0}
BALANCER_QUEUE = 3
SLOW_FINGERPRINT = "e5f6a7b8"
SLOW_ROUTE = "/products/<int:pk>/"
STATEMENTS = {
    "a1b2c3d4": ("SELECT shop_product", 'SELECT "shop_product"."id" FROM "shop_product" LIMIT ?'),
    SLOW_FINGERPRINT: (
        "SELECT shop_review",
        'SELECT "shop_review"."id" FROM "shop_review" WHERE "shop_review"."product_id" = ?',
    ),
    "c9d0e1f2": ("INSERT shop_order", 'INSERT INTO "shop_order" ("total") VALUES (?)'),
}

# Celery: node-1's and node-2's workers also run tasks (a worker node in a real fleet).
TASKS = {"shop.tasks.send_confirmation": 0.5, "shop.tasks.build_report": 0.05}
TASK_QUEUE = "celery"
QUEUE_DEPTH = 12

Labels = dict[str, str]
Value = Callable[[float], float]  # seconds since the first sample -> sample value


@dataclass
class Family:
    name: str
    kind: str  # counter, gauge, histogram
    samples: list[tuple[str, Labels, Value]]


def _counter(rate: float) -> Value:
    return lambda elapsed: rate * elapsed


def _gauge(value: float) -> Value:
    return lambda elapsed: value


def _histogram(
    family: Family,
    labels: Labels,
    rate: float,
    bounds: list[str],
    cumulative: list[float],
    mean: float,
) -> None:
    for le, fraction in zip([*bounds, "+Inf"], [*cumulative, 1.0], strict=True):
        family.samples.append(
            (f"{family.name}_bucket", {**labels, "le": le}, _counter(rate * fraction))
        )
    family.samples.append((f"{family.name}_sum", labels, _counter(rate * mean)))
    family.samples.append((f"{family.name}_count", labels, _counter(rate)))


# service.version per node: node-2 already runs the next release.
VERSIONS = {"node-1": "1.4.1", "node-2": "1.4.2", "node-3": "1.4.1"}


def workers() -> Iterator[Labels]:
    for node in NODES:
        for index in range(WORKERS_PER_NODE):
            yield {
                "job": SERVICE,
                "instance": f"{node}/{4700 + index}",
                "host_name": node,
                "service_version": VERSIONS[node],
            }


def families() -> list[Family]:
    seconds = ["0.005", "0.05", "0.25", "1", "5"]
    requests = Family("http_server_request_duration_seconds", "histogram", [])
    active = Family("http_server_active_requests", "gauge", [])
    db = Family("db_client_operation_duration_seconds", "histogram", [])
    info = Family("django_db_statement_info", "gauge", [])
    slow = Family("django_db_slow_queries", "counter", [])
    n_plus_one = Family("django_db_n_plus_one", "counter", [])
    per_request = Family("django_db_queries_per_request", "histogram", [])
    cache = Family("django_cache_operations", "counter", [])
    tasks = _task_families(slow, n_plus_one)
    cache_duration = Family("django_cache_operation_duration_seconds", "histogram", [])
    cpu = Family("process_cpu_time_seconds", "counter", [])
    rss = Family("process_memory_usage_bytes", "gauge", [])
    virtual = Family("process_memory_virtual_bytes", "gauge", [])
    threads = Family("process_thread_count", "gauge", [])
    fds = Family("process_open_file_descriptor_count", "gauge", [])
    gc = Family("cpython_gc_collections", "counter", [])
    queue = Family("http_server_request_queue_time_seconds", "histogram", [])
    busy = Family("fleetscope_worker_busy_time_seconds", "counter", [])
    rejected = Family("fleetscope_request_queue_time_rejected", "counter", [])

    for worker in workers():
        get = {**worker, "http_request_method": "GET"}
        for route, rate, mean in (
            ("/products/", 2.0, 0.04),
            (SLOW_ROUTE, 1.0, 0.3),
            ("unmatched", 0.2, 0.002),
        ):
            ok = {**get, "http_route": route, "http_response_status_code": "200"}
            _histogram(requests, ok, rate, seconds, [0.1, 0.6, 0.9, 0.98, 1.0], mean)
        failed = {**get, "http_route": SLOW_ROUTE, "http_response_status_code": "500"}
        _histogram(requests, failed, 0.1, seconds, [0.0, 0.1, 0.5, 0.9, 1.0], 0.8)
        active.samples.append((active.name, get, _gauge(1)))
        _histogram(
            queue,
            {**worker, "http_route": "/products/"},
            2.0,
            ["0.001", "0.01", "0.1", "1"],
            [0.5, 0.8, 0.95, 1.0],
            0.02,
        )
        busy.samples.append((f"{busy.name}_total", worker, _counter(WORKER_UTILIZATION)))
        rejected.samples.append(
            (
                f"{rejected.name}_total",
                {**worker, "reason": "future"},
                _counter(REJECTED_STAMPS_PER_SECOND),
            )
        )

        for fingerprint, (summary, text) in STATEMENTS.items():
            operation = summary.split()[0]
            statement = {
                **worker,
                "db_system_name": "sqlite",
                "db_operation_name": operation,
                "django_db_alias": "default",
                "django_db_fingerprint": fingerprint,
            }
            slow_share = 0.3 if fingerprint == SLOW_FINGERPRINT else 0.0
            _histogram(
                db,
                statement,
                3.0,
                seconds,
                [0.5, 0.9 - slow_share, 1.0 - slow_share, 1.0, 1.0],
                0.01 + slow_share,
            )
            info.samples.append(
                (
                    info.name,
                    {
                        **worker,
                        "django_db_fingerprint": fingerprint,
                        "db_query_summary": summary,
                        "db_query_text": text,
                    },
                    _gauge(1),
                )
            )
        culprit = {**worker, "django_db_fingerprint": SLOW_FINGERPRINT, "http_route": SLOW_ROUTE}
        slow.samples.append((f"{slow.name}_total", culprit, _counter(0.05)))
        n_plus_one.samples.append((f"{n_plus_one.name}_total", culprit, _counter(0.1)))
        for route, mean in (("/products/", 2.0), (SLOW_ROUTE, 12.0)):
            _histogram(
                per_request,
                {**worker, "http_route": route},
                1.0,
                ["1", "5", "10", "50"],
                [0.2, 0.7, 0.8, 1.0],
                mean,
            )

        for operation, result, rate in (
            ("get", "hit", CACHE_HITS_PER_SECOND),
            ("get", "miss", CACHE_MISSES_PER_SECOND),
            ("set", "none", 1.0),
        ):
            labels = {
                **worker,
                "django_cache_alias": "default",
                "django_cache_operation": operation,
                "django_cache_result": result,
            }
            cache.samples.append((f"{cache.name}_total", labels, _counter(rate)))
        for operation in ("get", "set"):
            labels = {
                **worker,
                "django_cache_alias": "default",
                "django_cache_operation": operation,
            }
            _histogram(
                cache_duration,
                labels,
                2.0,
                ["0.0005", "0.001", "0.005", "0.01"],
                [0.5, 0.9, 0.99, 1.0],
                0.0007,
            )

        for mode, rate in (("user", 0.2), ("system", 0.05)):
            cpu.samples.append((f"{cpu.name}_total", {**worker, "type": mode}, _counter(rate)))
        rss.samples.append((rss.name, worker, _gauge(80e6)))
        virtual.samples.append((virtual.name, worker, _gauge(300e6)))
        threads.samples.append((threads.name, worker, _gauge(4)))
        fds.samples.append((fds.name, worker, _gauge(20)))
        for generation, rate in (("0", 1.0), ("1", 0.1), ("2", 0.01)):
            gc.samples.append(
                (
                    f"{gc.name}_total",
                    {**worker, "cpython_gc_generation": generation},
                    _counter(rate),
                )
            )

    return [
        *tasks,
        requests,
        active,
        queue,
        busy,
        rejected,
        *balancer_families(),
        db,
        info,
        slow,
        n_plus_one,
        per_request,
        cache,
        cache_duration,
        cpu,
        rss,
        virtual,
        threads,
        fds,
        gc,
    ]


def balancer_families() -> list[Family]:
    """HAProxy's exporter for a backend named after the service, servers after the nodes."""
    balancer = {"job": "haproxy", "instance": "127.0.0.1:8404", "proxy": SERVICE}
    backend_queue = Family("haproxy_backend_current_queue", "gauge", [])
    backend_queue.samples.append((backend_queue.name, balancer, _gauge(BALANCER_QUEUE)))
    responses = Family("haproxy_server_http_responses", "counter", [])
    sessions = Family("haproxy_server_current_sessions", "gauge", [])
    response_time = Family("haproxy_server_response_time_average_seconds", "gauge", [])
    for node, per_second in BALANCER_RESPONSES_PER_SECOND.items():
        server = {**balancer, "server": node}
        for code, share in (("2xx", 0.9), ("5xx", 0.1)):
            responses.samples.append(
                (f"{responses.name}_total", {**server, "code": code}, _counter(per_second * share))
            )
        sessions.samples.append((sessions.name, server, _gauge(2)))
        response_time.samples.append((response_time.name, server, _gauge(0.05)))
    return [backend_queue, responses, sessions, response_time]


def _node_of(labels: Labels) -> str:
    return labels.get("host_name") or labels.get("server", "")


def _task_families(slow: Family, n_plus_one: Family) -> list[Family]:
    """The task series; task N+1 and slow-query counts go into the request families, which
    they share with `celery_task_name` in place of `http_route`."""
    seconds = ["0.005", "0.05", "0.25", "1", "5"]
    duration = Family("celery_task_duration_seconds", "histogram", [])
    wait = Family("celery_task_queue_wait_seconds", "histogram", [])
    published = Family("celery_task_published", "counter", [])
    failures = Family("celery_task_failures", "counter", [])
    retries = Family("celery_task_retries", "counter", [])
    per_task = Family("django_db_queries_per_task", "histogram", [])
    depth = Family("celery_queue_depth", "gauge", [])
    for worker in workers():
        for task, rate in TASKS.items():
            named = {**worker, "celery_task_name": task}
            for outcome, share in (("success", 0.9), ("failure", 0.05), ("retry", 0.05)):
                _histogram(
                    duration,
                    {**named, "celery_task_outcome": outcome},
                    rate * share,
                    seconds,
                    [0.1, 0.5, 0.8, 0.95, 1.0],
                    0.3,
                )
            queued = {**named, "messaging_destination_name": TASK_QUEUE}
            _histogram(wait, queued, rate, seconds, [0.3, 0.7, 0.9, 1.0, 1.0], 0.04)
            published.samples.append((f"{published.name}_total", queued, _counter(rate)))
            failed = {**named, "error_type": "TimeoutError"}
            failures.samples.append((f"{failures.name}_total", failed, _counter(rate * 0.05)))
            retries.samples.append((f"{retries.name}_total", named, _counter(rate * 0.05)))
            _histogram(per_task, named, rate, ["1", "5", "10", "50"], [0.1, 0.5, 0.9, 1.0], 6.0)
        culprit = {
            **worker,
            "celery_task_name": "shop.tasks.build_report",
            "django_db_fingerprint": SLOW_FINGERPRINT,
        }
        n_plus_one.samples.append((f"{n_plus_one.name}_total", culprit, _counter(0.02)))
        slow.samples.append((f"{slow.name}_total", culprit, _counter(0.02)))
    # One reader per node (the queue-depth lock); every node reads the same queue.
    for node in NODES:
        reader = {"job": SERVICE, "instance": f"{node}/4700", "host_name": node}
        depth.samples.append(
            (depth.name, {**reader, "messaging_destination_name": TASK_QUEUE}, _gauge(QUEUE_DEPTH))
        )
    return [duration, wait, published, failures, retries, per_task, depth]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))


def openmetrics(now: float) -> str:
    """Every series from now - HISTORY to now (node-3 until it stopped), one family at a time.
    No sample lies past now: the SLO rules record at now, and Prometheus refuses samples
    older than its newest block."""
    start = int(now) - HISTORY_SECONDS
    lines = []
    for family in families():
        lines.append(f"# TYPE {family.name} {family.kind}")
        for name, labels, value in family.samples:
            stopped = _node_of(labels) == STOPPED_NODE
            end = int(now) - (STOPPED_FOR_SECONDS if stopped else 0)
            rendered = _labels(labels)
            for timestamp in range(start, end + 1, STEP_SECONDS):
                lines.append(f"{name}{{{rendered}}} {value(timestamp - start):.10g} {timestamp}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
