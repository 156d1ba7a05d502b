"""OTLP/protobuf encoding of spans, written out directly in the protobuf wire format.

The SDK's encoder builds one protobuf message object per span, attribute and value, then
serializes the tree: tens of microseconds per span in the exporter thread, which holds the
GIL the requests need. Fleetscope's spans repeat themselves (every execution of one
statement has the same name, kind and attributes), so each `SpanTemplate` is encoded once
and a span costs a few byte concatenations: ids, timestamps, the cached template bytes.
Other spans (the SDK's server spans, a user's own spans) are encoded field by field by the
same writer. The output is the standard `ExportTraceServiceRequest` of
opentelemetry-proto; tests/telemetry/test_otlp.py decodes it with the official classes and
compares it with the SDK's encoder field by field.

Metrics are produced once per export interval and go through the SDK's own encoder.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Imported here, not in the functions: they run in the export thread, and an import in
# progress there at a fork leaves a half-initialized module in the child.
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from .spans import SCOPE, DeferredSpan, SpanTemplate

_PACK_Q = struct.Struct("<Q").pack
_PACK_I = struct.Struct("<I").pack
_PACK_D = struct.Struct("<d").pack

# OTLP SpanKind: SPAN_KIND_INTERNAL = 1, SERVER = 2, CLIENT = 3, PRODUCER = 4, CONSUMER = 5
_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int64 values as their two's complement."""
    if value < 0:
        value &= 0xFFFFFFFFFFFFFFFF
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(0x80)]


def _key(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + varint(len(payload)) + payload


def _string(field: int, text: str) -> bytes:
    return length_delimited(field, text.encode("utf-8", "surrogatepass"))


# -- common.proto ------------------------------------------------------------------


def any_value(value: Any) -> bytes:
    """AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _string(1, value)
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _PACK_D(value)
    if isinstance(value, bytes | bytearray):
        return length_delimited(7, bytes(value))
    if isinstance(value, Mapping):
        return length_delimited(
            6, b"".join(length_delimited(1, key_value(str(k), v)) for k, v in value.items())
        )
    if isinstance(value, Sequence):
        return length_delimited(5, b"".join(length_delimited(1, any_value(v)) for v in value))
    return _string(1, str(value))


def key_value(key: str, value: Any) -> bytes:
    return _string(1, key) + length_delimited(2, any_value(value))


def attributes(field: int, attrs: Mapping[str, Any] | None) -> bytes:
    if not attrs:
        return b""
    return b"".join(length_delimited(field, key_value(k, v)) for k, v in attrs.items())


def resource(res: Resource) -> bytes:
    return attributes(1, res.attributes)


def scope(sc: InstrumentationScope | None) -> bytes:
    if sc is None:
        return b""
    out = _string(1, sc.name)
    if sc.version:
        out += _string(2, sc.version)
    return out + attributes(3, sc.attributes)


# -- trace.proto -------------------------------------------------------------------


def template_bytes(template: SpanTemplate) -> bytes:
    """Span fields 5 (name), 6 (kind) and 9 (attributes) of every span of a template."""
    encoded = template.encoded
    if encoded is None:
        encoded = template.encoded = (
            _string(5, template.name)
            + b"\x30"
            + varint(_KINDS[template.kind])
            + attributes(9, template.attributes)
        )
    return encoded


def _trace_state(state: Any) -> bytes:
    if not state:
        return b""
    return _string(3, ",".join(f"{k}={v}" for k, v in state.items()))


def _event(time_ns: int, name: str, attrs: Mapping[str, Any] | None) -> bytes:
    return length_delimited(
        11, b"\x09" + _PACK_Q(time_ns) + _string(2, name) + attributes(3, attrs)
    )


_STATUS_UNSET = length_delimited(15, b"")
_STATUS_ERROR = length_delimited(15, b"\x18\x02")


def deferred_span(span: DeferredSpan) -> bytes:
    """One `Span` message of a deferred (Fleetscope client) span."""
    parts = [
        b"\x0a\x10",
        span.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        span.span_id.to_bytes(8, "big"),
        _trace_state(span.trace_state),
        b"\x22\x08",
        span.parent_id.to_bytes(8, "big"),
        template_bytes(span.template),
        b"\x39",
        _PACK_Q(span.start_ns),
        b"\x41",
        _PACK_Q(span.end_ns),
    ]
    if span.error_type is not None:
        parts.append(length_delimited(9, key_value("error.type", span.error_type)))
        parts.append(_STATUS_ERROR)
    else:
        parts.append(_STATUS_UNSET)
    for name, attrs in span.events:
        parts.append(_event(span.end_ns, name, attrs))
    parts.append(b"\x85\x01")  # field 16 (flags), fixed32
    parts.append(_PACK_I(_FLAGS_HAS_IS_REMOTE))
    return b"".join(parts)


def sdk_span(span: ReadableSpan) -> bytes:
    """One `Span` message of any SDK span (server spans, a user's or a library's own)."""
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    flags = _FLAGS_HAS_IS_REMOTE
    parts = [
        b"\x0a\x10",
        context.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        context.span_id.to_bytes(8, "big"),
        _trace_state(context.trace_state),
    ]
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        if parent.is_remote:
            flags |= _FLAGS_IS_REMOTE
    parts.append(_string(5, span.name))
    parts.append(b"\x30" + varint(_KINDS[span.kind]))
    parts.append(b"\x39" + _PACK_Q(span.start_time or 0))
    parts.append(b"\x41" + _PACK_Q(span.end_time or 0))
    parts.append(attributes(9, span.attributes))
    if span.dropped_attributes:
        parts.append(b"\x50" + varint(span.dropped_attributes))
    for event in span.events:
        parts.append(_event(event.timestamp, event.name, event.attributes))
    if span.dropped_events:
        parts.append(b"\x60" + varint(span.dropped_events))
    for link in span.links:
        link_flags = _FLAGS_HAS_IS_REMOTE | (_FLAGS_IS_REMOTE if link.context.is_remote else 0)
        parts.append(
            length_delimited(
                13,
                b"\x0a\x10"
                + link.context.trace_id.to_bytes(16, "big")
                + b"\x12\x08"
                + link.context.span_id.to_bytes(8, "big")
                + _trace_state(link.context.trace_state)
                + attributes(4, link.attributes)
                + (b"\x28" + varint(link.dropped_attributes) if link.dropped_attributes else b"")
                + b"\x35"
                + _PACK_I(link_flags),
            )
        )
    if span.dropped_links:
        parts.append(b"\x70" + varint(span.dropped_links))
    status = span.status
    status_body = b""
    if status.description:
        status_body += _string(2, status.description)
    if status.status_code is not StatusCode.UNSET:
        status_body += b"\x18" + varint(status.status_code.value)
    parts.append(length_delimited(15, status_body))
    parts.append(b"\x85\x01" + _PACK_I(flags))
    return b"".join(parts)


def span_message(span: DeferredSpan | ReadableSpan) -> bytes:
    if type(span) is DeferredSpan:
        return deferred_span(span)
    return sdk_span(span)  # type: ignore[arg-type]


def _scope_key(span: DeferredSpan | ReadableSpan) -> InstrumentationScope | None:
    if type(span) is DeferredSpan:
        return SCOPE
    return span.instrumentation_scope  # type: ignore[union-attr]


def export_trace_request(res: Resource, spans: Iterable[DeferredSpan | ReadableSpan]) -> bytes:
    """An `ExportTraceServiceRequest` with every span under `res` (this process's resource),
    grouped by instrumentation scope."""
    by_scope: dict[tuple[str, str | None, str | None], tuple[Any, list[bytes]]] = {}
    for span in spans:
        sc = _scope_key(span)
        key = (sc.name, sc.version, sc.schema_url) if sc is not None else ("", None, None)
        entry = by_scope.get(key)
        if entry is None:
            entry = by_scope[key] = (sc, [])
        entry[1].append(length_delimited(2, span_message(span)))
    scope_spans = b"".join(
        length_delimited(
            2,
            length_delimited(1, scope(sc))
            + b"".join(encoded)
            + (_string(3, sc.schema_url) if sc is not None and sc.schema_url else b""),
        )
        for sc, encoded in by_scope.values()
    )
    body = length_delimited(1, resource(res)) + scope_spans
    if res.schema_url:
        body += _string(3, res.schema_url)
    return length_delimited(1, body)


def export_metrics_request(metrics_data: Any) -> bytes:
    """An `ExportMetricsServiceRequest`, through the SDK's own encoder (once per interval)."""
    return bytes(encode_metrics(metrics_data).SerializeToString())


def rejected_count(signal: str, response: bytes) -> int:
    """Items the collector rejected in a partially successful export (0 if none or unknown)."""
    if not response:
        return 0
    try:
        if signal == "traces":
            reply = ExportTraceServiceResponse.FromString(response)
            return int(reply.partial_success.rejected_spans)
        metrics_reply = ExportMetricsServiceResponse.FromString(response)
        return int(metrics_reply.partial_success.rejected_data_points)
    except Exception:
        return 0
