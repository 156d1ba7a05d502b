"""Per-process OTLP export: span batching, periodic metric export merged with the aggregator.

Nothing here runs on the request path: spans go into the SDK's bounded batch queue
(drops are counted by the SDK's own `otel.sdk.processor.span.processed` metric with
`error.type=queue_full`), and metrics are read from the aggregator by the exporter
thread every METRIC_EXPORT_INTERVAL_MS.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.trace.export import SpanExporter

from fleetscope import __version__

from .process import instrument_process_metrics
from .spans import SCOPE

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger("telemetry")


class MergingMetricExporter(MetricExporter):
    """Adds the aggregator's metrics to each SDK export, then hands it to the OTLP exporter."""

    def __init__(self, inner: MetricExporter, runtime: Runtime) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.runtime = runtime
        self.failures = 0

    def merged(self, metrics_data: MetricsData) -> MetricsData:
        ours = ScopeMetrics(scope=SCOPE, metrics=self.runtime.collect_metrics(), schema_url="")
        resource = self.runtime.resource
        merged: list[ResourceMetrics] = []
        placed = False
        for resource_metrics in metrics_data.resource_metrics:
            if not placed and resource_metrics.resource == resource:
                resource_metrics = ResourceMetrics(
                    resource=resource_metrics.resource,
                    scope_metrics=[*resource_metrics.scope_metrics, ours],
                    schema_url=resource_metrics.schema_url,
                )
                placed = True
            merged.append(resource_metrics)
        if not placed:
            merged.append(ResourceMetrics(resource=resource, scope_metrics=[ours], schema_url=""))
        return MetricsData(resource_metrics=merged)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = self.inner.export(self.merged(metrics_data), timeout_millis=timeout_millis)
        if result is not MetricExportResult.SUCCESS:
            self.failures += 1
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis)


def _otlp_exporters(endpoint: str, protocol: str) -> tuple[SpanExporter, MetricExporter]:
    base = endpoint.rstrip("/")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        insecure = base.startswith("http://")
        return (
            GrpcSpanExporter(endpoint=base, insecure=insecure),
            GrpcMetricExporter(endpoint=base, insecure=insecure),
        )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Signal-specific OTEL_EXPORTER_OTLP_*_ENDPOINT variables win when set.
    traces = None if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") else f"{base}/v1/traces"
    metrics_url = (
        None if os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") else f"{base}/v1/metrics"
    )
    return OTLPSpanExporter(endpoint=traces), OTLPMetricExporter(endpoint=metrics_url)


def _add_span_exporter(
    exporter: SpanExporter, runtime: Runtime, meter_provider: MeterProvider
) -> None:
    queue = int(runtime.config["SPAN_QUEUE_SIZE"])
    # The SDK counts queue drops itself when its internal metrics are on.
    os.environ.setdefault("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    try:
        runtime.add_span_exporter(exporter, max_queue_size=queue, meter_provider=meter_provider)
    except TypeError:  # SDKs before internal metrics
        runtime.add_span_exporter(exporter, max_queue_size=queue)


def start_exporters(runtime: Runtime) -> None:
    """Called once per process from Runtime.ensure_started()."""
    config = runtime.config
    span_exporter, metric_exporter = _otlp_exporters(config.endpoint, config.protocol)
    merging = MergingMetricExporter(metric_exporter, runtime)
    reader = PeriodicExportingMetricReader(
        merging,
        export_interval_millis=config.metric_export_interval_ms,
    )
    meter_provider = MeterProvider(resource=runtime.resource, metric_readers=[reader])
    runtime.meter_provider = meter_provider
    runtime.metric_exporter = merging

    meter = meter_provider.get_meter("fleetscope.telemetry", __version__)

    def export_failures(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(merging.failures)

    # Always present, so the SDK side of every export is non-empty and failures are visible.
    meter.create_observable_counter(
        "fleetscope.export.failures",
        [export_failures],
        unit="{export}",
        description="Metric exports that the collector did not accept.",
    )
    _add_span_exporter(span_exporter, runtime, meter_provider)
    if config["PROCESS_METRICS"]:
        instrument_process_metrics(meter_provider)
    _set_globals(runtime, meter_provider)
    atexit.register(runtime.shutdown)


def _set_globals(runtime: Runtime, meter_provider: MeterProvider) -> None:
    """Make ours the global providers so user and contrib instrumentation share them."""
    if runtime.tracer_provider is not None and not isinstance(
        trace.get_tracer_provider(), type(runtime.tracer_provider)
    ):
        trace.set_tracer_provider(runtime.tracer_provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(meter_provider)
