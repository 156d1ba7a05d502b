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


class EncodeSpans(SpanExporter):
    """Encodes each batch to OTLP protobuf bytes, as the OTLP exporters do, then drops them."""

    def __init__(self) -> None:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        self._encode = encode_spans
        self.encoded_bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.encoded_bytes += len(self._encode(spans).SerializeToString())
        return SpanExportResult.SUCCESS


def span_exporter(config: str) -> SpanExporter:
    """Sampled spans are encoded to OTLP (no network) in the "-otlp" configurations."""
    return EncodeSpans() if config.endswith("-otlp") else DiscardSpans()


def _stock_otel(config: str) -> None:
    from benchmarks.setups import stock_otel

    ratio = 1.0 if "sampled" in config else 0.0
    stock_otel(ratio, span_exporter(config), DiscardMetrics(), export_interval_ms=3_600_000)


class DiscardSender:
    """Fleetscope's sender interface: takes the encoded OTLP request and drops it."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.sent_bytes = 0

    def send(self, body: bytes, timeout: float) -> Any:
        from telemetry.transport import SendResult

        self.sent_bytes += len(body)
        return SendResult(True)

    def close(self) -> None:
        return None


def _fleetscope_exporters(config: str) -> None:
    """Fleetscope's own export thread, as in production (queue, batches, OTLP encoding), with
    the network send replaced by a discarding sender. Sampled spans are always encoded: that
    is Fleetscope's export path, so "-otlp" and plain sampled runs measure the same thing."""
    from telemetry.export import ExportWorker
    from telemetry.runtime import get_runtime

    runtime = get_runtime()
    worker = ExportWorker(runtime)
    worker.export_traces = worker.export_metrics = True
    worker.start({signal: DiscardSender(None) for signal in ("traces", "metrics")})
    runtime.worker = worker


# "fleetscope-stamped": every request carries a load balancer's stamp, as behind HAProxy
# (docs/capacity.md). The value is made once; the other configurations' environ is unchanged.
STAMP = f"t={int((time.time() - 0.002) * 1e6)}"


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


def _stamped_environ(path: str) -> dict[str, Any]:
    environ = _environ(path)
    environ["HTTP_X_REQUEST_START"] = STAMP
    return environ


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    assert status.startswith("200"), status
    return lambda data: None


ENVIRON = (
    _stamped_environ
    if os.environ.get("FLEETSCOPE_BENCH_CONFIG") == "fleetscope-stamped"
    else _environ
)


def _call(app: Callable[..., Iterable[bytes]], path: str) -> None:
    result = app(ENVIRON(path), _start_response)
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
        _stock_otel(config)
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", run_syncdb=True, verbosity=0)
    from benchmarks.benchapp.models import Item

    Item.objects.bulk_create(Item(name=f"item {i}", price=i) for i in range(1, 11))
    if config.startswith("fleetscope"):
        _fleetscope_exporters(config)
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
