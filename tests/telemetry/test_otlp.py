"""The hand-written OTLP encoder produces exactly what the SDK's encoder produces."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from telemetry.otlp import export_trace_request, varint
from telemetry.spans import DeferredSpan, SpanTemplate

RESOURCE = Resource.create({"service.name": "shop", "host.name": "n1", "process.pid": 42})


def decoded(body: bytes) -> dict[str, Any]:
    return MessageToDict(ExportTraceServiceRequest.FromString(body))


def sdk_encoded(spans: list[ReadableSpan]) -> dict[str, Any]:
    return MessageToDict(encode_spans(spans))


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63 - 1, -1, -(2**63)])
def test_varint_round_trips_through_protobuf(value: int) -> None:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    body = b"\x18" + varint(value)
    assert AnyValue.FromString(body).int_value == value


def test_deferred_spans_encode_like_their_materialized_sdk_spans() -> None:
    template = SpanTemplate(
        "SELECT shop_product",
        {
            "db.system.name": "postgresql",
            "db.query.text": 'SELECT "shop_product"."id" FROM "shop_product" WHERE id = ?',
            "django.db.alias": "default",
        },
    )
    state = TraceState([("vendor", "v1")])
    spans = [
        DeferredSpan(template, 2**127 + 5, 11, 12, state, 1_000, 2_000),
        DeferredSpan(template, 2**127 + 5, 13, 12, None, 3_000, 4_000, "OperationalError"),
        DeferredSpan(template, 9, 14, 12, None, 5_000, 6_000, None, (("slow query", {"d": 0.5}),)),
    ]
    ours = decoded(export_trace_request(RESOURCE, spans))
    sdk = sdk_encoded([span.materialize(RESOURCE) for span in spans])
    assert ours == sdk


def test_sdk_spans_with_every_field_encode_like_the_sdk() -> None:
    parent = SpanContext(5, 6, True, TraceFlags(1))
    context = SpanContext(5, 7, False, TraceFlags(1), TraceState([("a", "b")]))
    span = ReadableSpan(
        name="GET /items/<int:pk>/",
        context=context,
        parent=parent,
        resource=RESOURCE,
        attributes={
            "http.request.method": "GET",
            "http.response.status_code": 500,
            "ratio": 0.25,
            "flag": False,
            "negative": -3,
            "list": ["a", "b"],
            "ints": [1, 2],
        },
        events=[Event("exception", {"exception.type": "ValueError"}, 123)],
        links=[Link(SpanContext(8, 9, True, TraceFlags(1)), {"k": "v"})],
        kind=SpanKind.SERVER,
        status=Status(StatusCode.ERROR, "boom"),
        start_time=10,
        end_time=20,
        instrumentation_scope=InstrumentationScope("user.lib", "1.2", None, {"x": "y"}),
    )
    root = ReadableSpan(
        name="root",
        context=SpanContext(1, 2, False, TraceFlags(1)),
        parent=None,
        resource=RESOURCE,
        kind=SpanKind.INTERNAL,
        start_time=1,
        end_time=2,
        instrumentation_scope=InstrumentationScope("user.lib", "1.2", None, {"x": "y"}),
    )
    assert decoded(export_trace_request(RESOURCE, [span, root])) == sdk_encoded([span, root])


def test_spans_of_several_scopes_are_grouped_under_one_resource() -> None:
    template = SpanTemplate("cache get", {"django.cache.alias": "default"})
    deferred = DeferredSpan(template, 1, 2, 3, None, 1, 2)
    user = ReadableSpan(
        name="mine",
        context=SpanContext(1, 4, False, TraceFlags(1)),
        parent=None,
        resource=Resource.create({"service.name": "stale-after-fork"}),
        start_time=1,
        end_time=2,
        instrumentation_scope=InstrumentationScope("user.lib"),
    )
    request = decoded(export_trace_request(RESOURCE, [deferred, user, deferred]))
    (resource_spans,) = request["resourceSpans"]
    scopes = {s["scope"]["name"]: len(s["spans"]) for s in resource_spans["scopeSpans"]}
    assert scopes == {"fleetscope.telemetry": 2, "user.lib": 1}
    names = {a["key"] for a in resource_spans["resource"]["attributes"]}
    assert "host.name" in names  # this process's resource, whatever the span carried
