"""Cheap tracing on the request thread: deferred client spans, a fast root-sampling decision,
and a tracer provider whose user-added processors see every span and can never break a request.

Building an SDK span costs tens of microseconds in CPython (attribute validation, sampler,
locks, processor hooks). A sampled request can run dozens of queries, so each query's span
is kept as a `DeferredSpan`: ids, timestamps and a shared `SpanTemplate` (name, kind and the
already-normalized attributes, built once per statement). Fleetscope's own export queue
takes it as is and the exporter thread encodes it straight to OTLP (telemetry/otlp.py).
When the user adds a span processor of their own to the provider, deferred spans are turned
into standard SDK `ReadableSpan`s first and handed to every processor, so what a user's
processor sees is exactly what the SDK would give it.

Unsampled root requests skip the SDK sampler too: the trace id is drawn here and the same
rule as `TraceIdRatioBased` is applied to it. A sampled decision passes that id to the SDK
through `PresetTraceIdGenerator`, so the SDK's own sampler reaches the same verdict.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from time import time_ns
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from fleetscope import __version__

logger = logging.getLogger("telemetry")

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


class SpanTemplate:
    """What every span of one statement (or cache operation) shares: built once, encoded once."""

    __slots__ = ("attributes", "encoded", "kind", "name")

    def __init__(
        self, name: str, attributes: dict[str, Any], kind: SpanKind = SpanKind.CLIENT
    ) -> None:
        self.name = name
        self.attributes = attributes
        self.kind = kind
        self.encoded: bytes | None = None  # OTLP bytes of name, kind, attributes (otlp.py)


class DeferredSpan:
    """A finished, sampled client span kept as plain data until the exporter thread needs it."""

    __slots__ = (
        "end_ns",
        "error_type",
        "events",
        "parent_id",
        "span_id",
        "start_ns",
        "template",
        "trace_id",
        "trace_state",
    )

    def __init__(
        self,
        template: SpanTemplate,
        trace_id: int,
        span_id: int,
        parent_id: int,
        trace_state: TraceState | None,
        start_ns: int,
        end_ns: int,
        error_type: str | None = None,
        events: tuple[tuple[str, dict[str, Any]], ...] = (),
    ) -> None:
        self.template = template
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.trace_state = trace_state
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.error_type = error_type
        self.events = events

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def attributes(self) -> dict[str, Any]:
        attributes = self.template.attributes
        if self.error_type is not None:
            attributes = {**attributes, "error.type": self.error_type}
        return attributes

    def materialize(self, resource: Resource) -> ReadableSpan:
        """The standard SDK span with the same content (for processors other than ours)."""
        state = self.trace_state
        parent = SpanContext(self.trace_id, self.parent_id, False, SAMPLED, state)
        return ReadableSpan(
            name=self.template.name,
            context=SpanContext(self.trace_id, self.span_id, False, SAMPLED, state),
            parent=parent,
            resource=resource,
            attributes=self.attributes,
            events=[Event(name, attrs, self.end_ns) for name, attrs in self.events],
            kind=self.template.kind,
            status=_ERROR if self.error_type is not None else _UNSET,
            start_time=self.start_ns,
            end_time=self.end_ns,
            instrumentation_scope=SCOPE,
        )


def new_span_id() -> int:
    return getrandbits(64) or 1


_VALUE_TYPES = (str, bool, int, float)
MAX_SPAN_ATTRIBUTES = 128  # the SDK's default limit


def _valid(value: Any) -> bool:
    if isinstance(value, _VALUE_TYPES):
        return True
    if isinstance(value, list | tuple):
        return all(isinstance(v, _VALUE_TYPES) for v in value)
    return False


class LiteSpan(trace_api.Span):
    """A sampled span (a request's, a cache operation's) without the SDK's per-span machinery.

    Used when no span processor of the user's is registered (they get real SDK spans):
    it supports what code does with the current span (attributes, events, status, name,
    exceptions), and when it ends it goes into Fleetscope's export queue, to be encoded by
    telemetry/otlp.py like any SDK span. It exposes the fields the encoder reads under
    the names `ReadableSpan` uses.
    """

    instrumentation_scope = SCOPE
    dropped_attributes = dropped_events = dropped_links = 0
    links: tuple[Any, ...] = ()

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        on_end: Callable[[Any], None],
        kind: SpanKind = SpanKind.SERVER,
    ) -> None:
        self.name = name
        self.kind = kind
        self.context = context
        self.parent = parent
        self.attributes: dict[str, Any] = {}
        self.events: list[Event] = []
        self.status = _UNSET
        self.start_time = time_ns()
        self.end_time: int | None = None
        self._on_end = on_end

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.end_time is not None or not _valid(value):
            return
        if key in self.attributes or len(self.attributes) < MAX_SPAN_ATTRIBUTES:
            self.attributes[key] = list(value) if isinstance(value, tuple) else value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if self.end_time is None:
            valid = {k: v for k, v in (attributes or {}).items() if _valid(v)}
            self.events.append(Event(name, valid, timestamp or time_ns()))

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        return None  # server spans get their links at start; nothing adds them later here

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None:
            return
        if isinstance(status, Status):
            self.status = status
        else:
            self.status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Any = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        import traceback

        event = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
            **dict(attributes or {}),
        }
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time or time_ns()
        self._on_end(self)

    def __repr__(self) -> str:
        return f"LiteSpan(name={self.name!r}, context={self.context!r})"


class GuardedProcessor(SpanProcessor):
    """A user's span processor behind a guard: its exceptions are logged once, never raised into
    the request that started or ended the span."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self._reported = False

    def _guard(self, action: Callable[[], Any], what: str) -> Any:
        try:
            return action()
        except Exception:
            if not self._reported:
                self._reported = True
                logger.exception(
                    "Span processor %r raised in %s; Fleetscope keeps the request going "
                    "(reported once per processor).",
                    self.inner,
                    what,
                )
            return None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._guard(lambda: self.inner.on_start(span, parent_context=parent_context), "on_start")

    def _on_ending(self, span: Span) -> None:
        hook = getattr(self.inner, "_on_ending", None)
        if hook is not None:
            self._guard(lambda: hook(span), "on_ending")

    def on_end(self, span: ReadableSpan) -> None:
        self._guard(lambda: self.inner.on_end(span), "on_end")

    def shutdown(self) -> None:
        self._guard(self.inner.shutdown, "shutdown")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._guard(lambda: self.inner.force_flush(timeout_millis), "force_flush"))


class FleetscopeTracerProvider(TracerProvider):
    """The SDK provider, keeping track of processors that are not Fleetscope's own.

    Processors a user adds are guarded (an exception in them never reaches a request), and
    when there is at least one, deferred spans are materialized and sent through all
    processors as standard `ReadableSpan`s.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.processors: list[SpanProcessor] = []
        self.has_foreign_processors = False

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        if not getattr(span_processor, "fleetscope_own", False):
            span_processor = GuardedProcessor(span_processor)
            self.has_foreign_processors = True
        super().add_span_processor(span_processor)
        self.processors.append(span_processor)

    def set_resource(self, resource: Resource) -> None:
        """A forked worker's spans name the worker, not the process it was forked from."""
        self._resource = resource

    def emit_materialized(self, span: ReadableSpan) -> None:
        for processor in self.processors:
            processor.on_end(span)
