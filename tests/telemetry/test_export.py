"""Export: one standard OTLP request per signal, failures counted and retried as documented."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

from telemetry.conf import ExportTarget, build_config
from telemetry.export import SPAN_BATCH, ExportWorker, FailureLog
from telemetry.runtime import Runtime
from telemetry.spans import DeferredSpan, SpanTemplate
from telemetry.transport import SendResult


class Receiver:
    """A local OTLP/HTTP endpoint answering with a chosen status, recording what it got."""

    def __init__(self) -> None:
        self.status = 200
        self.bodies: dict[str, list[bytes]] = {"/v1/traces": [], "/v1/metrics": []}
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                if receiver.status == 200:
                    receiver.bodies[self.path].append(body)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> int:
        return sum(
            len(ss.spans)
            for body in self.bodies["/v1/traces"]
            for rs in ExportTraceServiceRequest.FromString(body).resource_spans
            for ss in rs.scope_spans
        )

    def metric_names(self) -> set[str]:
        return {
            m.name
            for body in self.bodies["/v1/metrics"]
            for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    local = Receiver()
    yield local
    local.close()


def make_worker(endpoint: str, **settings: Any) -> tuple[Runtime, ExportWorker]:
    config = build_config({"ENDPOINT": endpoint, "PROCESS_METRICS": False, **settings}, environ={})
    runtime = Runtime(config)
    return runtime, ExportWorker(runtime)


TEMPLATE = SpanTemplate("SELECT t", {"db.system.name": "sqlite"})


def deferred(n: int) -> list[DeferredSpan]:
    return [DeferredSpan(TEMPLATE, 7, i + 1, 99, None, 1, 2) for i in range(n)]


def test_aggregated_metrics_join_the_sdk_batch_under_the_same_resource() -> None:
    runtime = Runtime(build_config({"EXPORT": False}))
    runtime.instruments.slow_queries.add(("abc", "/x/"))
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=runtime.resource, metric_readers=[reader])
    provider.get_meter("t").create_counter("sdk.counter").add(1)
    sdk_data = reader.get_metrics_data()
    assert sdk_data is not None
    merged = runtime.merge_metrics(sdk_data)
    assert len(merged.resource_metrics) == 1
    names = {m.name for sm in merged.resource_metrics[0].scope_metrics for m in sm.metrics}
    assert names == {"sdk.counter", "django.db.slow_queries"}


def test_statement_info_is_exported_for_each_known_fingerprint() -> None:
    runtime = Runtime(build_config({"EXPORT": False}))
    statement = runtime.catalog.lookup("SELECT * FROM shop_product WHERE id = 42")
    merged = runtime.merge_metrics(MetricsData(resource_metrics=[]))
    info = next(
        m
        for rm in merged.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "django.db.statement.info"
    )
    (point,) = info.data.data_points
    assert point.attributes == {
        "django.db.fingerprint": statement.fingerprint,
        "db.query.summary": statement.summary,
        "db.query.text": statement.text,
    }
    assert "42" not in statement.text


def test_spans_and_metrics_reach_the_endpoint(receiver: Receiver) -> None:
    runtime, worker = make_worker(receiver.endpoint)
    for span in deferred(SPAN_BATCH + 10):  # two batches
        runtime.span_queue.on_end(span)
    runtime.instruments.slow_queries.add(("abc", "/x/"))
    worker.export_spans()
    assert worker.export_metrics_once()
    assert receiver.spans() == SPAN_BATCH + 10
    assert len(receiver.bodies["/v1/traces"]) == 2
    assert "django.db.slow_queries" in receiver.metric_names()
    assert runtime.instruments.spans_exported.value(()) == SPAN_BATCH + 10


def test_a_retryable_refusal_keeps_the_batch_and_counts_the_failure(receiver: Receiver) -> None:
    runtime, worker = make_worker(receiver.endpoint)
    receiver.status = 503
    for span in deferred(5):
        runtime.span_queue.on_end(span)
    worker.export_spans()
    assert runtime.instruments.export_failures.value(("traces", "http_503")) == 1
    assert receiver.spans() == 0
    receiver.status = 200
    worker.export_spans(deadline=float("inf"))  # the retry, without waiting for the backoff
    assert receiver.spans() == 5
    assert runtime.instruments.spans_dropped.items() == []


def test_a_permanent_refusal_drops_and_counts_the_batch(receiver: Receiver) -> None:
    runtime, worker = make_worker(receiver.endpoint)
    receiver.status = 400
    for span in deferred(3):
        runtime.span_queue.on_end(span)
    worker.export_spans()
    assert runtime.instruments.spans_dropped.value(("rejected",)) == 3
    assert len(runtime.span_queue) == 0


def test_a_full_queue_drops_new_spans_and_counts_them() -> None:
    runtime = Runtime(build_config({"EXPORT": False, "SPAN_QUEUE_SIZE": 4}))
    for span in deferred(10):
        runtime.span_queue.on_end(span)
    assert len(runtime.span_queue) == 4
    assert runtime.instruments.spans_dropped.value(("queue_full",)) == 6


def test_failed_metric_exports_are_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime, worker = make_worker("http://127.0.0.1:9")  # discard port: connection refused
    with caplog.at_level("WARNING", logger="telemetry"):
        for _ in range(3):
            assert not worker.export_metrics_once()
    assert runtime.instruments.export_failures.value(("metrics", "connection")) == 3
    assert len([r for r in caplog.records if r.name == "telemetry"]) == 1


def test_the_failure_log_reports_the_count_it_covers(caplog: pytest.LogCaptureFixture) -> None:
    log = FailureLog(interval=0.0)
    target = build_config({}, environ={}).traces
    with caplog.at_level("WARNING", logger="telemetry"):
        log.failed(target, "refused", "x")
        log.failed(target, "refused", "x")
    assert ["1 failed attempt" in r.getMessage() for r in caplog.records] == [True, True]


def test_otlp_headers_from_the_environment_are_sent(receiver: Receiver) -> None:
    config = build_config(
        {"PROCESS_METRICS": False},
        environ={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20s3cret",
        },
    )
    worker = ExportWorker(Runtime(config))
    assert worker.export_metrics_once()
    assert receiver.headers[-1]["authorization"] == "Bearer s3cret"


def test_an_unresponsive_traces_endpoint_leaves_the_exit_flush_time_for_metrics(
    receiver: Receiver,
) -> None:
    """Regression: the exit flush spent its whole budget waiting on a traces endpoint that
    never answered, so a recycled or stopped worker never sent its last metrics (their
    counts, and the count of spans it gave up at exit, were lost)."""
    with socket.socket() as hole:  # the kernel accepts connections; nobody ever answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        config = build_config(
            {"PROCESS_METRICS": False},
            environ={
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": (
                    f"http://127.0.0.1:{hole.getsockname()[1]}/v1/traces"
                ),
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{receiver.endpoint}/v1/metrics",
            },
        )
        runtime = Runtime(config)
        worker = ExportWorker(runtime)
        for span in deferred(5):
            runtime.span_queue.on_end(span)
        runtime.instruments.slow_queries.add(("abc", "/x/"))
        worker.flush(1.0)
    assert "django.db.slow_queries" in receiver.metric_names()
    assert _sum_points(receiver, "fleetscope.export.spans.dropped") == {"exit": 5}


def _sum_points(receiver: Receiver, name: str) -> dict[str, float]:
    """The data points of one counter in the last metrics request, by their reason."""
    body = receiver.bodies["/v1/metrics"][-1]
    return {
        point.attributes[0].value.string_value: point.as_int or point.as_double
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.sum.data_points
    }


class _Scripted:
    """A sender whose `send` runs a script (to hold a send open at a chosen moment)."""

    def __init__(self, target: ExportTarget, script: Callable[[bytes], SendResult]) -> None:
        self.target = target
        self.script = script

    def send(self, body: bytes, timeout: float) -> SendResult:
        return self.script(body)

    def close(self) -> None:
        return None


_TIMEOUT = SendResult(ok=False, retryable=True, error_type="timeout", detail="no answer")


def test_the_exit_flush_is_the_last_export_of_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (seen once in five runs of the blackhole test): the export thread was stuck
    sending spans to an endpoint that never answers when the process began to exit. Its send
    gave up while the exit flush was running, and the thread then exported metrics read
    before the flush counted the spans it gave up. That export reached the collector after
    the flush's, so the collector kept counts without those spans (48 of 751 lost)."""
    runtime, worker = make_worker("http://127.0.0.1:9", METRIC_EXPORT_INTERVAL_MS=1000)
    arrived: list[bytes] = []  # metrics bodies, in the order the collector got them
    thread_stuck, release_thread = threading.Event(), threading.Event()
    flush_sent_metrics = threading.Event()

    def thread_traces(body: bytes) -> SendResult:
        thread_stuck.set()
        release_thread.wait(5)
        return _TIMEOUT

    def thread_metrics(body: bytes) -> SendResult:
        flush_sent_metrics.wait(2)  # a slower connection: arrives after the flush's export
        arrived.append(body)
        return SendResult(ok=True)

    def flush_traces(body: bytes) -> SendResult:
        release_thread.set()  # the thread's own send gives up meanwhile
        time.sleep(0.3)
        return _TIMEOUT

    def flush_metrics(body: bytes) -> SendResult:
        arrived.append(body)
        flush_sent_metrics.set()
        return SendResult(ok=True)

    fresh = {"traces": flush_traces, "metrics": flush_metrics}
    monkeypatch.setattr(
        "telemetry.export.make_sender", lambda target: _Scripted(target, fresh[target.signal])
    )
    config = runtime.config
    worker.start(
        senders={
            "traces": _Scripted(config.traces, thread_traces),
            "metrics": _Scripted(config.metrics, thread_metrics),
        }
    )
    for span in deferred(5):
        runtime.span_queue.on_end(span)
    worker._wake.set()
    assert thread_stuck.wait(5)
    worker._next_metrics = 0.0  # the thread owes a metrics export when its send returns
    worker.flush(2.0)
    assert worker._thread is not None
    worker._thread.join(5)

    assert arrived, "no metrics were exported"
    last = ExportMetricsServiceRequest.FromString(arrived[-1])
    dropped = {
        point.attributes[0].value.string_value: point.as_int or point.as_double
        for rm in last.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "fleetscope.export.spans.dropped"
        for point in metric.sum.data_points
    }
    assert dropped == {"exit": 5}


def test_spans_given_up_at_exit_are_not_also_counted_as_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The thread's stuck send can still succeed after the exit flush gave its batch up: the
    spans are counted once, as dropped at exit, and the thread takes nothing more."""
    runtime, worker = make_worker("http://127.0.0.1:9")
    thread_stuck, release_thread = threading.Event(), threading.Event()

    def thread_traces(body: bytes) -> SendResult:
        thread_stuck.set()
        release_thread.wait(5)
        return SendResult(ok=True)

    monkeypatch.setattr(
        "telemetry.export.make_sender", lambda target: _Scripted(target, lambda body: _TIMEOUT)
    )
    config = runtime.config
    worker.start(
        senders={
            "traces": _Scripted(config.traces, thread_traces),
            "metrics": _Scripted(config.metrics, lambda body: SendResult(ok=True)),
        }
    )
    for span in deferred(5):
        runtime.span_queue.on_end(span)
    worker._wake.set()
    assert thread_stuck.wait(5)
    for span in deferred(3):  # queued behind the stuck batch
        runtime.span_queue.on_end(span)
    worker.flush(0.5)
    release_thread.set()
    assert worker._thread is not None
    worker._thread.join(5)

    instruments = runtime.instruments
    assert instruments.spans_dropped.value(("exit",)) == 8
    assert instruments.spans_exported.value(()) == 0
    assert len(runtime.span_queue) == 0
