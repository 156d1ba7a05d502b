"""Celery tasks: traced from their publisher, timed, counted, and their SQL attributed to them.

A real Celery app on kombu's in-memory broker and a real worker (solo pool, in a thread) for
what crosses the broker; eager runs (`task.apply()`) for SQL, which the in-memory SQLite
database only shows to the thread that created it. The integration test
(tests/integration/test_tasks.py) does the same across processes with Redis and prefork.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery, signals
from celery.contrib.testing.worker import start_worker
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from telemetry.aggregate import Aggregator
from telemetry.instruments import NO_ROUTE
from telemetry.runtime import Runtime
from telemetry.tasks import TasksInstrument
from telemetry.tasks import signals as task_signals
from telemetry.tasks.depth import NodeLock, lock_path
from telemetry.tasks.recorder import PUBLISHED_HEADER, TaskRecorder, recorder_for
from tests.telemetry.testapp import tasks
from tests.telemetry.testapp.models import Author, Book

pytestmark = pytest.mark.django_db
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_app() -> Iterator[Celery]:
    """A Celery app on the in-memory broker, current (the shared tasks bind to it), with a
    queue of its own: the memory transport's queues are shared by the whole process."""
    app = Celery("unit", broker="memory://", backend="cache+memory://", set_as_current=True)
    app.conf.task_default_queue = f"unit-{uuid.uuid4().hex[:8]}"
    app.conf.broker_connection_retry_on_startup = False
    yield app
    app.close()


@pytest.fixture
def recorder(make_runtime: Any) -> Iterator[TaskRecorder]:
    """Every request and task sampled; Celery's signals record into this runtime."""
    previous = task_signals._recorder
    # A node name of its own: the queue depth is read by one process per (service, node),
    # elected by a lock file, and another test run on the machine may hold the default's.
    node = f"unit-{uuid.uuid4().hex[:8]}"
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0, SLOW_QUERY_MS=0, NODE=node)
    TasksInstrument(rt, rt.config).install()
    yield recorder_for(rt)
    if previous is not None:
        task_signals.connect(previous)
    else:
        task_signals.disconnect()


def _run_worker(app: Celery, until: Any, timeout: float = 30.0) -> None:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert until(), "the worker did not finish the tasks in time"


def _count(recorder: TaskRecorder, name: str, outcome: str) -> int:
    snapshot = recorder.instruments.duration.snapshot((name, outcome))
    return 0 if snapshot is None else snapshot[0]


def _runs(recorder: TaskRecorder) -> int:
    duration = recorder.instruments.duration
    return sum(
        _count(recorder, str(name), str(outcome)) for name, outcome in duration.attribute_sets()
    )


def _names(name: str) -> str:
    return f"tests.telemetry.testapp.tasks.{name}"


def test_a_task_span_is_a_child_of_the_request_that_queued_it(
    recorder: TaskRecorder, celery_app: Celery, spans: InMemorySpanExporter
) -> None:
    assert Client().get("/tasks/enqueue/?task=ok").status_code == 200
    _run_worker(celery_app, lambda: _runs(recorder) == 1)
    finished = spans.get_finished_spans()
    [server] = [s for s in finished if s.kind == SpanKind.SERVER]
    [task_span] = [s for s in finished if s.kind == SpanKind.CONSUMER]
    assert task_span.name == f"process {_names('ok')}"
    assert task_span.context.trace_id == server.context.trace_id
    assert task_span.parent is not None and task_span.parent.span_id == server.context.span_id
    attributes = dict(task_span.attributes or {})
    assert attributes["celery.task.name"] == _names("ok")
    assert attributes["celery.task.outcome"] == "success"
    assert attributes["messaging.destination.name"] == celery_app.conf.task_default_queue


def test_an_unsampled_request_leaves_its_tasks_unsampled(
    recorder: TaskRecorder, celery_app: Celery, spans: InMemorySpanExporter
) -> None:
    # Every root is sampled here (ratio 1.0): the caller's "not sampled" must still win.
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    response = Client().get("/tasks/enqueue/?task=ok", HTTP_TRACEPARENT=unsampled)
    assert response.status_code == 200
    _run_worker(celery_app, lambda: _runs(recorder) == 1)
    assert spans.get_finished_spans() == ()
    assert _count(recorder, _names("ok"), "success") == 1


def test_outcomes_failures_retries_and_publishes_are_counted_exactly(
    recorder: TaskRecorder, celery_app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    for name, times in (("sleepy", 2), ("fails", 3), ("retries_once", 2)):
        query = "&seconds=0" if name == "sleepy" else ""
        assert client.get(f"/tasks/enqueue/?task={name}&times={times}{query}").status_code == 200
    _run_worker(celery_app, lambda: _runs(recorder) == 2 + 3 + 2 * 2)
    instruments = recorder.instruments
    queue = celery_app.conf.task_default_queue
    assert _count(recorder, _names("sleepy"), "success") == 2
    assert _count(recorder, _names("fails"), "failure") == 3
    assert _count(recorder, _names("retries_once"), "retry") == 2
    assert _count(recorder, _names("retries_once"), "success") == 2
    assert instruments.failures.items() == [((_names("fails"), "ValueError"), 3)]
    assert instruments.retries.items() == [((_names("retries_once"),), 2)]
    published = dict(instruments.published.items())
    # A retry is a new message, published by the worker.
    assert published == {
        (_names("sleepy"), queue): 2,
        (_names("fails"), queue): 3,
        (_names("retries_once"), queue): 4,
    }
    waits = instruments.queue_wait.snapshot((_names("sleepy"), queue))
    assert waits is not None and waits[0] == 2 and waits[1] >= 0


def test_a_retried_run_continues_the_trace_of_the_run_that_asked_for_it(
    recorder: TaskRecorder, celery_app: Celery, spans: InMemorySpanExporter
) -> None:
    assert Client().get("/tasks/enqueue/?task=retries_once").status_code == 200
    _run_worker(celery_app, lambda: _runs(recorder) == 2)
    runs = {
        dict(s.attributes or {})["celery.task.outcome"]: s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.CONSUMER
    }
    assert runs["success"].parent is not None
    assert runs["success"].parent.span_id == runs["retry"].context.span_id


def test_failure_spans_carry_the_exception_type_never_its_message(
    recorder: TaskRecorder, celery_app: Celery, spans: InMemorySpanExporter
) -> None:
    tasks.fails.delay()
    _run_worker(celery_app, lambda: _runs(recorder) == 1)
    [task_span] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    attributes = dict(task_span.attributes or {})
    assert attributes["error.type"] == "ValueError"
    assert not task_span.status.is_ok
    assert "1234" not in repr(task_span.to_json())


def test_n_plus_one_and_slow_queries_in_a_task_are_counted_under_its_name_not_a_route(
    recorder: TaskRecorder, celery_app: Celery
) -> None:
    for i in range(6):
        Book.objects.create(author=Author.objects.create(name=f"a{i}"), title=f"b{i}")
    rt = recorder.runtime
    rt.instruments.slow_queries.reset()  # the set-up's own (outside any task) queries
    tasks.n_plus_one.apply()
    keys = recorder.instruments.n_plus_one.items()
    assert [(name, count) for (_, name), count in keys] == [(_names("n_plus_one"), 1)]
    assert rt.instruments.n_plus_one.items() == []  # the request instrument saw nothing
    per_task = recorder.instruments.queries_per_task.snapshot((_names("n_plus_one"),))
    assert per_task is not None and per_task[1] == 7  # the list, then one author per book
    slow = dict(recorder.instruments.slow_queries.items())  # SLOW_QUERY_MS=0: all are slow
    assert sum(slow.values()) == 7
    assert {task for (_, task) in slow} == {_names("n_plus_one")}
    assert not any(route == NO_ROUTE for (_, route), _ in rt.instruments.slow_queries.items())


def test_sql_and_cache_spans_of_a_task_are_children_of_its_span(
    recorder: TaskRecorder, celery_app: Celery, spans: InMemorySpanExporter
) -> None:
    Author.objects.create(name="a")
    spans.clear()
    tasks.ok.apply()
    tasks.cached.apply(args=["k-spans"])
    finished = spans.get_finished_spans()
    runs = {s.name: s for s in finished if s.kind == SpanKind.CONSUMER}
    children = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert {s.name for s in children} >= {"SELECT testapp_author", "cache get", "cache set"}
    parents = {s.context.span_id for s in runs.values()}
    assert all(s.parent is not None and s.parent.span_id in parents for s in children)


def test_a_task_run_inline_in_a_request_gives_the_request_its_state_back(
    recorder: TaskRecorder, celery_app: Celery
) -> None:
    from telemetry.state import current_request

    outer = object()
    token = current_request.set(outer)  # type: ignore[arg-type]
    try:
        tasks.ok.apply()
        assert current_request.get() is outer
    finally:
        current_request.reset(token)


def _request(**attributes: Any) -> SimpleNamespace:
    defaults: dict[str, Any] = {"eta": None, "retries": 0, "is_eager": False, "headers": None}
    return SimpleNamespace(**{**defaults, "delivery_info": {"routing_key": "q"}, **attributes})


def _begin_end(recorder: TaskRecorder, request: SimpleNamespace) -> None:
    recorder.end(recorder.begin("id", "t", request), "SUCCESS")


def test_queue_wait_is_measured_from_the_publish_time_header(recorder: TaskRecorder) -> None:
    _begin_end(recorder, _request(**{PUBLISHED_HEADER: time.time() - 2.0}))
    count, total, _ = recorder.instruments.queue_wait.snapshot(("t", "q"))  # type: ignore[misc]
    assert count == 1 and 2.0 <= total < 30.0


def test_queue_wait_of_a_task_with_an_eta_starts_at_the_eta(recorder: TaskRecorder) -> None:
    from datetime import UTC, datetime

    eta = datetime.fromtimestamp(time.time() - 1.0, UTC).isoformat()
    _begin_end(recorder, _request(**{PUBLISHED_HEADER: time.time() - 100.0, "eta": eta}))
    _, total, _ = recorder.instruments.queue_wait.snapshot(("t", "q"))  # type: ignore[misc]
    assert 1.0 <= total < 30.0


@pytest.mark.parametrize(
    ("offset", "reason"), [(+60.0, "negative"), (-200_000.0, "too_large")], ids=str
)
def test_skewed_queue_waits_are_dropped_and_counted_never_recorded(
    recorder: TaskRecorder, offset: float, reason: str
) -> None:
    _begin_end(recorder, _request(**{PUBLISHED_HEADER: time.time() + offset}))
    assert recorder.instruments.queue_wait.snapshot(("t", "q")) is None
    assert recorder.instruments.queue_wait_dropped.items() == [((reason,), 1)]


def test_revocations_count_with_the_time_the_task_ran(
    recorder: TaskRecorder, celery_app: Celery
) -> None:
    request = SimpleNamespace(time_start=time.time() - 3.0, task=_names("ok"))
    signals.task_revoked.send(
        sender=tasks.ok, request=request, terminated=True, signum=15, expired=False
    )
    signals.task_revoked.send(
        sender=tasks.ok, request=SimpleNamespace(time_start=None), terminated=False, signum=None,
        expired=False,
    )  # fmt: skip
    count, total, _ = recorder.instruments.duration.snapshot(  # type: ignore[misc]
        (_names("ok"), "revoked")
    )
    assert count == 2 and 3.0 <= total < 30.0


def test_queue_depth_counts_waiting_messages(recorder: TaskRecorder, celery_app: Celery) -> None:
    queue = celery_app.conf.task_default_queue
    for _ in range(3):
        tasks.sleepy.delay(0)
    depth = dict(recorder.depth.observe())
    assert depth[(queue,)] == 3
    _run_worker(celery_app, lambda: _runs(recorder) == 3)
    assert dict(recorder.depth.observe())[(queue,)] == 0


def test_only_one_process_per_node_reads_the_queue_depth(tmp_path: Path) -> None:
    path = str(tmp_path / "node.lock")
    first, second = NodeLock(), NodeLock()
    assert first.acquire(path)
    assert not second.acquire(path)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child inherits `first` and its open file, lock included
        os.write(write, b"1" if first.acquire(path) else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"0", "a forked child took over its parent's reading"
    os.close(read)
    os.close(write)


def test_the_lock_file_is_per_service_and_node() -> None:
    assert lock_path("shop", "node-1") != lock_path("shop", "node-2")
    assert lock_path("shop", "node-1") != lock_path("admin", "node-1")
    assert lock_path("shop", "node-1") == lock_path("shop", "node-1")


def test_a_failing_receiver_never_fails_the_task(
    recorder: TaskRecorder,
    celery_app: Celery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug in Fleetscope")

    monkeypatch.setattr(TaskRecorder, "begin", broken)
    Author.objects.create(name="a")
    assert tasks.ok.apply().get() == 1
    assert tasks.ok.apply().get() == 1
    reports = [r for r in caplog.records if "on_task_prerun receiver failed" in r.getMessage()]
    assert len(reports) == 1


def test_task_metrics_export_as_one_metric_with_the_request_ones() -> None:
    from telemetry.instruments import Instruments, TaskInstruments

    aggregator = Aggregator()
    requests, task_instruments = Instruments(aggregator), TaskInstruments(aggregator)
    requests.n_plus_one.add(("fp", "/books/"))
    task_instruments.n_plus_one.add(("fp", "shop.tasks.x"))
    [metric] = [m for m in aggregator.collect() if m.name == "django.db.n_plus_one"]
    assert sorted(sorted((p.attributes or {}).items()) for p in metric.data.data_points) == [
        [("celery.task.name", "shop.tasks.x"), ("django.db.fingerprint", "fp")],
        [("django.db.fingerprint", "fp"), ("http.route", "/books/")],
    ]


def test_the_queue_wait_limit_is_checked() -> None:
    from telemetry.conf import build_config

    def ids(value: Any) -> list[str | None]:
        config = build_config({"TASK_MAX_QUEUE_WAIT_S": value})
        return [m.id for m in TasksInstrument.checks(config)]

    assert ids(60) == []
    assert ids(0) == ids("1h") == ids(True) == ["telemetry.E006"]


def test_runtime_is_the_recorders(recorder: TaskRecorder) -> None:
    assert isinstance(recorder.runtime, Runtime)
    assert recorder_for(recorder.runtime) is recorder


# -- Celery absent, or installed but not in use ------------------------------------------------

PROBE = """
import importlib.abc, json, os, sys
if os.environ.get("HIDE_CELERY") == "1":
    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("celery", "kombu", "billiard"):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None
    sys.meta_path.insert(0, Hide())
import django
django.setup()
from django.test import Client
from telemetry import registry
Client().get("/no-such-page/")
print(json.dumps({
    "installed": sorted(p.rsplit(".", 1)[-1] for p in registry.installed()),
    "imported": sorted(m for m in sys.modules if m.split(".")[0] in ("celery", "kombu",
                                                                       "billiard")),
    "ours": sorted(m for m in sys.modules if m.startswith("telemetry.tasks")),
}))
"""


@pytest.mark.parametrize("hidden", [True, False], ids=["celery-missing", "celery-not-in-use"])
def test_without_celery_in_use_nothing_is_imported(tmp_path: Path, hidden: bool) -> None:
    import json

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.telemetry.probes.minimal_settings",
        "PROBE_DIR": str(tmp_path),
        "HIDE_CELERY": "1" if hidden else "0",
        "PYTHONPATH": str(PROJECT),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "TasksInstrument" in result["installed"]
    assert result["imported"] == []
    assert result["ours"] == ["telemetry.tasks"]
