"""Export: the aggregator's metrics ride along with the SDK's in one standard OTLP batch."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)

from telemetry.conf import build_config
from telemetry.export import MergingMetricExporter
from telemetry.runtime import Runtime


class Capture(MetricExporter):
    def __init__(self, result: MetricExportResult = MetricExportResult.SUCCESS) -> None:
        super().__init__()
        self.batches: list[MetricsData] = []
        self.result = result

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.batches.append(metrics_data)
        return self.result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def _names(data: MetricsData) -> set[str]:
    return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def test_aggregated_metrics_join_the_sdk_batch_under_the_same_resource() -> None:
    runtime = Runtime(build_config({"EXPORT": False}))
    runtime.instruments.slow_queries.add(("abc", "/x/"))
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=runtime.resource, metric_readers=[reader])
    provider.get_meter("t").create_counter("sdk.counter").add(1)
    sdk_data = reader.get_metrics_data()
    assert sdk_data is not None
    capture = Capture()
    MergingMetricExporter(capture, runtime).export(sdk_data)
    (batch,) = capture.batches
    assert len(batch.resource_metrics) == 1
    assert _names(batch) == {"sdk.counter", "django.db.slow_queries"}


def test_statement_info_is_exported_for_each_known_fingerprint() -> None:
    runtime = Runtime(build_config({"EXPORT": False}))
    statement = runtime.catalog.lookup("SELECT * FROM shop_product WHERE id = 42")
    capture = Capture()
    MergingMetricExporter(capture, runtime).export(MetricsData(resource_metrics=[]))
    (batch,) = capture.batches
    info = next(
        m
        for rm in batch.resource_metrics
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


def test_failed_exports_are_counted() -> None:
    runtime = Runtime(build_config({"EXPORT": False}))
    merging = MergingMetricExporter(Capture(MetricExportResult.FAILURE), runtime)
    merging.export(MetricsData(resource_metrics=[]))
    merging.export(MetricsData(resource_metrics=[]))
    assert merging.failures == 2
