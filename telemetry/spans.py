"""Cheap tracing on the request thread: deferred client spans and a fast root-sampling decision.

Building an SDK span costs tens of microseconds in CPython (attribute validation, sampler,
locks, processor hooks). A sampled request can run dozens of queries, so each query's span
is kept as a `DeferredSpan` (ids, timestamps, the already-normalized statement) and handed
to the span processors as is; `MaterializingSpanExporter`, running in the exporter's thread,
turns each into a standard SDK `ReadableSpan` just before the OTLP exporter encodes it.

Unsampled root requests skip the SDK sampler too: the trace id is drawn here and the same
rule as `TraceIdRatioBased` is applied to it. A sampled decision passes that id to the SDK
through `PresetTraceIdGenerator`, so the SDK's own sampler reaches the same verdict.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from fleetscope import __version__

SCOPE = InstrumentationScope("fleetscope.telemetry", __version__)
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_TRACE_ID_LOW_BITS = TraceIdRatioBased.TRACE_ID_LIMIT
_UNSET = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)

_preset_trace_id: ContextVar[int] = ContextVar("fleetscope_preset_trace_id", default=0)
getrandbits = random.getrandbits


class PresetTraceIdGenerator(RandomIdGenerator):
    """Random ids, except the trace id Fleetscope already drew for the root it is starting."""

    def generate_trace_id(self) -> int:
        preset = _preset_trace_id.get()
        return preset if preset else super().generate_trace_id()


class RootSampler:
    """Decides a root request's sampling exactly as `TraceIdRatioBased` would, without a span."""

    __slots__ = ("bound",)

    def __init__(self, ratio: float) -> None:
        self.bound = TraceIdRatioBased.get_bound_for_rate(ratio)

    def draw(self) -> tuple[int, bool]:
        trace_id = getrandbits(128) or 1
        return trace_id, (trace_id & _TRACE_ID_LOW_BITS) < self.bound


def preset_trace_id(trace_id: int) -> object:
    return _preset_trace_id.set(trace_id)


def clear_preset(token: object) -> None:
    _preset_trace_id.reset(token)  # type: ignore[arg-type]


class DeferredSpan:
    """A finished client span kept as plain data until the exporter thread needs it."""

    __slots__ = (
        "attributes",
        "context",
        "end_ns",
        "error_type",
        "events",
        "name",
        "parent",
        "start_ns",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, Any],
        error_type: str | None = None,
        events: tuple[tuple[str, dict[str, Any]], ...] = (),
    ) -> None:
        self.name = name
        self.context = context  # what the span processors look at (trace_flags.sampled)
        self.parent = parent
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attributes = attributes
        self.error_type = error_type
        self.events = events

    def materialize(self, resource: Resource) -> ReadableSpan:
        attributes = self.attributes
        if self.error_type is not None:
            attributes = {**attributes, "error.type": self.error_type}
        return ReadableSpan(
            name=self.name,
            context=self.context,
            parent=self.parent,
            resource=resource,
            attributes=attributes,
            events=[Event(name, attrs, self.end_ns) for name, attrs in self.events],
            kind=SpanKind.CLIENT,
            status=_ERROR if self.error_type is not None else _UNSET,
            start_time=self.start_ns,
            end_time=self.end_ns,
            instrumentation_scope=SCOPE,
        )


def new_child_context(parent: SpanContext) -> SpanContext:
    return SpanContext(parent.trace_id, getrandbits(64) or 1, False, SAMPLED, parent.trace_state)


class MaterializingSpanExporter(SpanExporter):
    """Turns deferred spans into SDK spans (in the exporter thread), then exports them all."""

    def __init__(self, inner: SpanExporter, resource: Resource) -> None:
        self.inner = inner
        self.resource = resource

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        resource = self.resource
        ready = [s.materialize(resource) if type(s) is DeferredSpan else s for s in spans]
        return self.inner.export(ready)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)
