"""The in-process benchmark's "-otlp" configurations really encode sampled spans to OTLP."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from benchmarks.worker import DiscardSpans, EncodeSpans, span_exporter


def test_encode_spans_serializes_each_batch_to_protobuf_bytes() -> None:
    exporter = EncodeSpans()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("GET /x/", attributes={"a": 1}):
        pass
    provider.shutdown()
    assert exporter.encoded_bytes > 20


def test_only_otlp_configurations_pay_for_encoding() -> None:
    assert isinstance(span_exporter("fleetscope-sampled-otlp"), EncodeSpans)
    assert isinstance(span_exporter("otel-sampled-otlp"), EncodeSpans)
    assert isinstance(span_exporter("fleetscope-sampled"), DiscardSpans)
