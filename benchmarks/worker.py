"""Runs one configuration in its own process and prints µs per request for each view (JSON)."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

VIEWS = ("/hello/", "/sql/", "/mixed/")


class DiscardSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class DiscardMetrics(MetricExporter):
    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def _stock_otel(sampled: bool) -> None:
    """Contrib Django + sqlite3 instrumentation with SDK providers, as a user would set them."""
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    provider = TracerProvider(sampler=ParentBasedTraceIdRatio(1.0 if sampled else 0.0))
    provider.add_span_processor(BatchSpanProcessor(DiscardSpans()))
    trace.set_tracer_provider(provider)
    reader = PeriodicExportingMetricReader(DiscardMetrics(), export_interval_millis=3_600_000)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    SQLite3Instrumentor().instrument()
    DjangoInstrumentor().instrument()


def _fleetscope_exporters() -> None:
    """Same discarding span queue as stock OTel, so sampled runs compare like for like."""
    from telemetry.runtime import get_runtime

    # Batched like production, so the export thread's work competes for the GIL as it would.
    get_runtime().add_span_exporter(DiscardSpans())


def _environ(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    assert status.startswith("200"), status
    return lambda data: None


def _call(app: Callable[..., Iterable[bytes]], path: str) -> None:
    result = app(_environ(path), _start_response)
    for _ in result:
        pass
    close = getattr(result, "close", None)
    if close:
        close()


def main() -> None:
    config = os.environ["FLEETSCOPE_BENCH_CONFIG"]
    requests_per_batch = int(os.environ.get("FLEETSCOPE_BENCH_REQUESTS", "1000"))
    batches = int(os.environ.get("FLEETSCOPE_BENCH_BATCHES", "5"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    if config.startswith("otel"):
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"
        _stock_otel(sampled=config.endswith("sampled"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", run_syncdb=True, verbosity=0)
    from benchmarks.benchapp.models import Item

    Item.objects.bulk_create(Item(name=f"item {i}", price=i) for i in range(1, 11))
    if config.startswith("fleetscope"):
        _fleetscope_exporters()
    app = get_wsgi_application()
    results: dict[str, float] = {}
    for path in VIEWS:
        for _ in range(200):  # warm caches, fingerprints, URL resolver
            _call(app, path)
        best = float("inf")
        for _ in range(batches):
            start = time.perf_counter_ns()
            for _ in range(requests_per_batch):
                _call(app, path)
            best = min(best, (time.perf_counter_ns() - start) / requests_per_batch / 1000)
        results[path] = best
    print(json.dumps({"config": config, "us_per_request": results}))


if __name__ == "__main__":
    main()
