"""Server spans without the SDK's per-span machinery: same OTLP, same behaviour for user code.

When no span processor of the user's is registered, sampled requests get a `LiteSpan`
that goes straight into Fleetscope's export queue; its encoding must match what the SDK
would have produced for the same span, and code that touches the current span must work.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.test import Client, override_settings
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan

from telemetry.otlp import export_trace_request
from telemetry.runtime import Runtime, get_runtime
from telemetry.spans import DeferredSpan, LiteSpan

pytestmark = pytest.mark.django_db

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


@pytest.fixture
def fast() -> Iterator[Any]:
    """The process's own runtime (the global tracer provider, no processor of the user's:
    the LiteSpan path), reconfigured as an app reload would."""
    contexts: list[Any] = []

    def make(**settings: Any) -> Runtime:
        context = override_settings(TELEMETRY={"EXPORT": False, **settings})
        context.enable()
        contexts.append(context)
        apps.get_app_config("telemetry").ready()
        rt = get_runtime()
        rt.span_queue.take(10_000)
        return rt

    yield make
    for context in reversed(contexts):
        context.disable()
    apps.get_app_config("telemetry").ready()


def queued(rt: Runtime) -> list[Any]:
    return rt.span_queue.take(10_000)


def exported(rt: Runtime, spans: list[Any]) -> list[dict[str, Any]]:
    request = ExportTraceServiceRequest.FromString(export_trace_request(rt.resource, spans))
    return [
        MessageToDict(span)
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def test_a_sampled_request_is_a_server_span_with_its_queries_as_children(fast: Any) -> None:
    rt = fast(TRACES_SAMPLE_RATE=1.0)
    Client().get("/books/fixed/")
    spans = queued(rt)
    (server,) = [s for s in spans if isinstance(s, LiteSpan)]
    db = [s for s in spans if isinstance(s, DeferredSpan)]
    assert server.name == "GET /books/fixed/"
    assert server.attributes["http.route"] == "/books/fixed/"
    assert server.attributes["http.response.status_code"] == 200
    assert db and {s.parent_id for s in db} == {server.context.span_id}
    assert {s.trace_id for s in db} == {server.context.trace_id}


def test_server_spans_encode_like_the_sdk_span_with_the_same_content(fast: Any) -> None:
    rt = fast(TRACES_SAMPLE_RATE=1.0)
    Client(raise_request_exception=False).get("/boom/")  # a 500: error status, error.type
    (server,) = [s for s in queued(rt) if isinstance(s, LiteSpan)]
    sdk = ReadableSpan(
        name=server.name,
        context=server.context,
        parent=server.parent,
        resource=rt.resource,
        attributes=server.attributes,
        events=server.events,
        kind=trace.SpanKind.SERVER,
        status=server.status,
        start_time=server.start_time,
        end_time=server.end_time,
        instrumentation_scope=server.instrumentation_scope,
    )
    assert exported(rt, [server]) == exported(rt, [sdk])
    assert server.status.status_code is trace.StatusCode.ERROR


def test_w3c_parents_decide_and_their_trace_continues(fast: Any) -> None:
    rt = fast(TRACES_SAMPLE_RATE=0.0)
    Client().get("/items/1/", HTTP_TRACEPARENT=TRACEPARENT)
    Client().get("/items/2/", HTTP_TRACEPARENT=UNSAMPLED_PARENT)
    (server,) = queued(rt)
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    assert server.parent.is_remote


def test_code_in_a_view_uses_the_current_span_as_usual(fast: Any) -> None:
    rt = fast(TRACES_SAMPLE_RATE=1.0)
    assert Client().get("/annotated/").status_code == 200
    spans = queued(rt)
    (server,) = [s for s in spans if isinstance(s, LiteSpan)]
    assert server.attributes["shop.customer_tier"] == "gold"
    assert [e.name for e in server.events] == ["cart loaded", "exception"]
    # A user's own SDK span, started from the current context, is a child of the request.
    (child,) = [s for s in spans if getattr(s, "name", "") == "user work"]
    assert child.parent.span_id == server.context.span_id


def test_with_a_processor_of_the_users_sdk_spans_are_used(fast: Any) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from telemetry.conf import build_config
    from telemetry.runtime import Runtime

    rt = Runtime(build_config({"EXPORT": False, "TRACES_SAMPLE_RATE": 1.0}, environ={}))
    seen = InMemorySpanExporter()
    rt.add_span_processor(SimpleSpanProcessor(seen))
    span = rt.server_span("GET")
    assert not isinstance(span, LiteSpan)
    span.end()
    assert [s.name for s in seen.get_finished_spans()] == ["GET"]


def test_cache_operations_of_a_sampled_request_are_client_children(fast: Any) -> None:
    rt = fast(TRACES_SAMPLE_RATE=1.0)
    Client().get("/cached/?key=lite")
    spans = queued(rt)
    (server,) = [s for s in spans if isinstance(s, LiteSpan) and s.kind is trace.SpanKind.SERVER]
    cache = [s for s in spans if isinstance(s, LiteSpan) and s.kind is trace.SpanKind.CLIENT]
    assert [s.name for s in cache] == ["cache get", "cache set"]
    assert {s.parent.span_id for s in cache if s.parent} == {server.context.span_id}
    assert all(s.parent for s in cache)
    assert [s.attributes["django.cache.result"] for s in cache] == ["miss", "none"]
