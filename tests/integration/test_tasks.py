"""Celery tasks end to end: a gunicorn node queues tasks into a real Redis, a real prefork
worker (two pool children) runs them, and the real collector and Prometheus show one trace
per request, exact counts, the task's own N+1, and the queue depth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from fleetscope.collector.process import ManagedProcess

from .stack import (
    LocalStack,
    Node,
    eventually,
    seed_books,
    start_celery_worker,
    start_gunicorn_node,
    start_redis_broker,
)

SERVICE = "it-tasks"
WORKER = "worker-a"
TASKS = "tests.telemetry.testapp.tasks"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SERVER, CONSUMER, CLIENT = 2, 5, 3  # OTLP span kinds


@dataclass
class TaskFleet:
    stack: LocalStack
    node: Node
    workdir: Path
    broker_url: str
    worker: ManagedProcess


@pytest.fixture(scope="module")
def fleet(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskFleet]:
    workdir = tmp_path_factory.mktemp("task-node")
    redis, broker_url = start_redis_broker(tmp_path_factory.mktemp("redis"))
    env = {
        "OTEL_SERVICE_NAME": SERVICE,
        "OTEL_TRACES_SAMPLER": "always_on",
        "FLEETSCOPE_TEST_BROKER_URL": broker_url,
    }
    started: list[ManagedProcess] = [redis]
    try:
        node = start_gunicorn_node(
            stack, workdir, "node-a", "tests.integration.node_settings",
            "tests.integration.node_wsgi:application", workers=2, env=env,
        )  # fmt: skip
        started.append(node.process)
        seed_books(workdir)
        worker = start_celery_worker(stack, workdir, WORKER, broker_url, env=env)
        fleet = TaskFleet(stack, node, workdir, broker_url, worker)
        yield fleet
        started.append(fleet.worker)  # the one running now (the depth test restarts it)
    finally:
        for process in reversed(started):
            process.stop()


def _enqueue(fleet: TaskFleet, task: str, times: int = 1, **params: Any) -> None:
    headers = params.pop("headers", {})
    query = {"task": task, "times": str(times), **{k: str(v) for k, v in params.items()}}
    response = httpx.get(
        f"{fleet.node.url}/tasks/enqueue/", params=query, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text


def _value(stack: LocalStack, expr: str) -> float | None:
    result = stack.query(expr)
    return float(result[0]["value"][1]) if result else None


def _sel(**labels: str) -> str:
    matchers = [f'job="{SERVICE}"', *(f'{k}="{v}"' for k, v in sorted(labels.items()))]
    return "{" + ", ".join(matchers) + "}"


def _total(stack: LocalStack, series: str, **labels: str) -> float | None:
    return _value(stack, f"sum({series}{_sel(**labels)})")


def _reaches(stack: LocalStack, series: str, expected: float, **labels: str) -> Any:
    return lambda: _total(stack, series, **labels) == expected


def test_a_request_and_the_task_it_queued_are_one_trace(fleet: TaskFleet) -> None:
    traceparent = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
    _enqueue(fleet, "cached", key="trace-check", headers={"traceparent": traceparent})

    def trace_spans() -> list[dict[str, Any]] | None:
        spans = [s for s in fleet.stack.spans(SERVICE) if s["traceId"] == TRACE_ID]
        kinds = {s["kind"] for s in spans}
        return spans if {SERVER, CONSUMER, CLIENT} <= kinds and len(spans) >= 5 else None

    spans = eventually(trace_spans, timeout=60, what="the request's and the task's spans")
    [server] = [s for s in spans if s["kind"] == SERVER]
    [task] = [s for s in spans if s["kind"] == CONSUMER]
    assert server["parentSpanId"] == CALLER_SPAN
    assert task["parentSpanId"] == server["spanId"]
    assert task["name"] == f"process {TASKS}.cached"
    cache_spans = [s for s in spans if s["name"].startswith("cache ")]
    assert len(cache_spans) == 3  # get (a miss), set, get (a hit)
    assert all(s["parentSpanId"] == task["spanId"] for s in cache_spans)


def test_counts_in_prometheus_are_exact(fleet: TaskFleet) -> None:
    stack = fleet.stack
    for task, times in (("ok", 5), ("fails", 3), ("retries_once", 2), ("n_plus_one", 2)):
        _enqueue(fleet, task, times)
    runs = "celery_task_duration_seconds_count"
    for task, outcome, count in (
        ("ok", "success", 5),
        ("fails", "failure", 3),
        ("retries_once", "retry", 2),
        ("retries_once", "success", 2),
        ("n_plus_one", "success", 2),
    ):
        labels = {"celery_task_name": f"{TASKS}.{task}", "celery_task_outcome": outcome}
        eventually(_reaches(stack, runs, count, **labels), what=f"{count} {outcome} {task}")
    expected = {
        f"{TASKS}.ok": 5,
        f"{TASKS}.fails": 3,
        f"{TASKS}.retries_once": 4,  # each retry is a message of its own
        f"{TASKS}.n_plus_one": 2,
    }
    names = "|".join(name.replace(".", "\\\\.") for name in expected)
    query = (
        "sum by (celery_task_name) "
        f'(celery_task_published_total{{job="{SERVICE}", celery_task_name=~"{names}"}})'
    )

    def published() -> dict[str, float]:
        return {s["metric"]["celery_task_name"]: float(s["value"][1]) for s in stack.query(query)}

    eventually(lambda: published() == expected, what=f"published counts {expected}")
    assert _total(stack, "celery_task_published_total", messaging_destination_name="celery")
    failures = f"{TASKS}.fails"
    assert _total(stack, "celery_task_failures_total", celery_task_name=failures) == 3
    assert _total(
        stack, "celery_task_failures_total", celery_task_name=failures, error_type="ValueError"
    ) == 3  # fmt: skip
    retries = f"{TASKS}.retries_once"
    assert _total(stack, "celery_task_retries_total", celery_task_name=retries) == 2
    # Histograms: every bucket series and a queue wait for every run.
    assert _total(stack, "celery_task_queue_wait_seconds_count", celery_task_name=retries) == 4
    buckets = stack.query(
        f"celery_task_duration_seconds_bucket{_sel(celery_task_name=f'{TASKS}.ok')}"
    )
    # Prometheus 3 writes `le` as a float ("1.0"): compare numbers.
    assert {float(s["metric"]["le"]) for s in buckets} >= {0.005, 1, 600, float("inf")}
    waits = stack.query(f"celery_task_queue_wait_seconds_bucket{_sel()}")
    assert {float(s["metric"]["le"]) for s in waits} >= {0.005, 60, 3600, float("inf")}


def test_n_plus_one_inside_a_task_is_counted_under_the_task_not_a_route(
    fleet: TaskFleet,
) -> None:
    stack = fleet.stack
    name = f"{TASKS}.n_plus_one"
    eventually(
        _reaches(stack, "django_db_n_plus_one_total", 2, celery_task_name=name),
        what="two N+1 detections of the task",
    )
    series = stack.query(f"django_db_n_plus_one_total{_sel(celery_task_name=name)}")
    assert all("http_route" not in s["metric"] for s in series)
    assert all(s["metric"]["host_name"] == WORKER for s in series)
    # The task's 7 queries per run (the books, then each one's author).
    assert _total(stack, "django_db_queries_per_task_sum", celery_task_name=name) == 14
    routed = stack.query(f'django_db_n_plus_one_total{{job="{SERVICE}", http_route!=""}}')
    assert routed == []


def test_every_pool_child_exports_under_its_own_instance(fleet: TaskFleet) -> None:
    _enqueue(fleet, "sleepy", 6, seconds=0.5)
    stack = fleet.stack
    name = f"{TASKS}.sleepy"
    eventually(
        _reaches(stack, "celery_task_duration_seconds_count", 6, celery_task_name=name),
        what="six runs of the sleepy task",
    )
    main = psutil.Process(fleet.worker.pid)
    children = {child.pid for child in main.children()}
    instances = {
        s["metric"]["instance"]
        for s in stack.query(f"celery_task_duration_seconds_count{_sel(celery_task_name=name)}")
    }
    assert len(children) == 2
    assert instances == {f"{WORKER}/{pid}" for pid in children}
    # The worker's main process is the node's queue-depth reader; the web node reads it too.
    readers = {
        (s["metric"]["host_name"], s["metric"]["instance"])
        for s in stack.query(f"celery_queue_depth{_sel(messaging_destination_name='celery')}")
    }
    assert (WORKER, f"{WORKER}/{main.pid}") in readers
    assert len([node for node, _ in readers if node == "node-a"]) == 1


def test_queue_depth_rises_while_the_worker_is_stopped_and_drains_after(
    fleet: TaskFleet,
) -> None:
    stack = fleet.stack
    waiting = _sel(messaging_destination_name="celery")
    depth = f"max by (messaging_destination_name) (celery_queue_depth{waiting})"
    eventually(lambda: _value(stack, depth) == 0, what="an empty queue first")
    fleet.worker.stop()
    _enqueue(fleet, "sleepy", 7, seconds=0)
    eventually(lambda: _value(stack, depth) == 7, what="seven waiting messages")
    fleet.worker = start_celery_worker(stack, fleet.workdir, WORKER, fleet.broker_url, env={
        "OTEL_SERVICE_NAME": SERVICE, "OTEL_TRACES_SAMPLER": "always_on",
    })  # fmt: skip
    eventually(lambda: _value(stack, depth) == 0, what="the queue drained", timeout=120)
    name = f"{TASKS}.sleepy"
    eventually(
        _reaches(stack, "celery_task_duration_seconds_count", 6 + 7, celery_task_name=name),
        what="the seven queued runs done by the restarted worker",
    )
