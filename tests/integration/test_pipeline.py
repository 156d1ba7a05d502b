"""End to end: OTLP/HTTP from the OpenTelemetry SDK -> built collector -> real Prometheus."""

from __future__ import annotations

import uuid

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from .stack import LocalStack, eventually


def _resource(node: str) -> Resource:
    return Resource.create(
        {
            "service.name": "pipeline-test",
            "service.instance.id": f"{node}/1234",
            "host.name": node,
        }
    )


def test_metric_reaches_prometheus_with_node_identity_labels(stack: LocalStack) -> None:
    node = f"node-{uuid.uuid4().hex[:6]}"
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{stack.otlp_endpoint}/v1/metrics"),
        export_interval_millis=60_000,
    )
    provider = MeterProvider(resource=_resource(node), metric_readers=[reader])
    counter = provider.get_meter("pipeline-test").create_counter("fleetscope.pipeline.probe")
    counter.add(7, {"kind": "a"})
    counter.add(5, {"kind": "a"})
    provider.force_flush()
    provider.shutdown()

    query = f'fleetscope_pipeline_probe_total{{host_name="{node}"}}'
    result = eventually(lambda: stack.query(query), what=query)

    assert len(result) == 1
    series = result[0]
    assert float(series["value"][1]) == 12.0
    labels = series["metric"]
    assert labels["job"] == "pipeline-test"
    assert labels["instance"] == f"{node}/1234"
    assert labels["host_name"] == node
    assert labels["kind"] == "a"


def test_traces_reach_the_collector(stack: LocalStack) -> None:
    span_name = f"probe-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=_resource("node-traces"))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{stack.otlp_endpoint}/v1/traces"))
    )
    with provider.get_tracer("pipeline-test").start_as_current_span(span_name) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    written = eventually(
        lambda: [s for s in stack.spans() if s["name"] == span_name],
        what=f"span {span_name} in the collector's file exporter output",
    )
    assert written[0]["traceId"] == trace_id

    # The collector's own telemetry, scraped by Prometheus, counts the span it exported.
    sent = 'sum({__name__=~"otelcol_exporter_sent_spans(_total)?", exporter="file/traces"})'
    exported = eventually(
        lambda: [r for r in stack.query(sent) if float(r["value"][1]) >= 1],
        what="the collector's otelcol_exporter_sent_spans >= 1",
    )
    assert float(exported[0]["value"][1]) >= 1
