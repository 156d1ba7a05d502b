"""Request instrumentation: server spans with W3C propagation, duration and active requests.

`begin()` and `end()` bracket one request. The unsampled path never builds an attribute
dict: method and route are interned strings, the histogram key is a tuple, and the
span (non-recording) only carries the trace context for propagation.

Sampled server spans carry the route template (`http.route`), not the raw path: paths hold
ids and tokens (`reset/<uidb64>/<token>/`). `TELEMETRY["RECORD_URL_PATH"] = True` adds
`url.path`, with the values of sensitive URL parameters and token-like segments folded
(`scrub_path`).

Capacity signals ride along (docs/capacity.md): the in-flight count that feeds
`http.server.active_requests` also accumulates the worker's busy time, under the same lock;
a request stamped by the load balancer (`X-Request-Start` / `X-Queue-Start`) records its
queue time. Without the header the cost is the header lookup in `begin()` and one `None`
check in `end()`.
"""

from __future__ import annotations

import re
from time import perf_counter, time
from typing import Any

from django.core.checks import CheckMessage, Warning
from django.http import HttpRequest, HttpResponseBase
from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode

from .conf import Config
from .queue_time import QUEUE_START_KEY, REQUEST_START_KEY, queue_time
from .registry import Instrument
from .runtime import Runtime, trace_ref
from .spans import NOT_SAMPLED, getrandbits
from .state import RequestState, current_request

# On sampled server spans, in seconds (the same value as the queue-time histogram).
QUEUE_TIME_ATTRIBUTE = "http.server.request.queue_time"
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
OTHER_METHOD = "_OTHER"  # semconv: bounded method label


class _MetaGetter(Getter[dict[str, Any]]):
    """Reads W3C headers (traceparent, tracestate, baggage) from a WSGI/ASGI META dict."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


_META_GETTER = _MetaGetter()


class RequestHandle:
    __slots__ = (
        "context_token",
        "method",
        "queue_time",
        "span",
        "start",
        "state",
        "state_token",
    )

    def __init__(
        self,
        start: float,
        method: str,
        span: trace.Span,
        state: RequestState,
        context_token: object,
        state_token: object,
        queue_time: float | None = None,
    ) -> None:
        self.start = start
        self.method = method
        self.span = span
        self.state = state
        self.context_token = context_token
        self.state_token = state_token
        self.queue_time = queue_time  # seconds waited before this worker started, if stamped


class RequestRecorder:
    """Begins and ends the telemetry of requests for one runtime."""

    def __init__(self, runtime: Runtime, own_spans_and_metrics: bool = True) -> None:
        self.runtime = runtime
        self.instruments = runtime.instruments
        self.own = own_spans_and_metrics
        # Attribute keys of the active-requests counter, built once per method.
        self._method_keys = {m: (m,) for m in (*KNOWN_METHODS, OTHER_METHOD)}

    def route(self, request: HttpRequest) -> str:
        """`http.route`: a name the app gave the request, else its URL pattern (rendered
        once per pattern), else `unmatched` (telemetry/routes.py)."""
        return self.runtime.routes.of(request)

    def _queue_time(self, stamp: str) -> float | None:
        """Seconds since the load balancer's stamp; a stamp no clock can explain is counted
        as rejected and gives None (queue_time.py)."""
        waited, rejected = queue_time(stamp, time())
        if rejected is not None:
            self.instruments.queue_time_rejected.add((rejected,))
        return waited

    def begin(self, request: HttpRequest) -> RequestHandle:
        runtime = self.runtime
        runtime.ensure_started()
        start = perf_counter()
        meta = request.META
        stamp = meta.get(REQUEST_START_KEY) or meta.get(QUEUE_START_KEY)
        waited = None if stamp is None else self._queue_time(stamp)
        method = request.method or OTHER_METHOD
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        if not self.own:  # the contrib instrumentation owns the span and request metrics
            span = trace.get_current_span()
            recording = span if span.is_recording() else None
            state = RequestState(recording, trace_ref(span) if recording else None)
            self.instruments.busy_time.enter(start)
            return RequestHandle(
                start, method, span, state, None, current_request.set(state), waited
            )
        parent = None
        root = runtime.root_sampler
        if "HTTP_TRACEPARENT" in meta:
            parent = propagate.extract(meta, getter=_META_GETTER)
            span = runtime.server_span(method, parent)
        elif root is not None:
            trace_id, sampled = root.draw()
            if sampled:
                span = runtime.server_span(method, None, trace_id)
            else:  # no SDK work: a context to propagate the "not sampled" decision
                span = NonRecordingSpan(
                    SpanContext(trace_id, getrandbits(64) or 1, False, NOT_SAMPLED)
                )
        else:
            span = runtime.server_span(method)
        if span.is_recording():
            span.set_attributes(
                {"http.request.method": method, "url.scheme": request.scheme or "http"}
            )
            state = RequestState(span, trace_ref(span))
        else:
            state = RequestState(None, None)
        context_token = context.attach(trace.set_span_in_context(span, parent))
        # Last, so that a failure above never leaves the worker counted busy for good.
        self.instruments.active_requests.enter(self._method_keys[method], start)
        return RequestHandle(
            start, method, span, state, context_token, current_request.set(state), waited
        )

    def end(
        self,
        handle: RequestHandle,
        request: HttpRequest,
        response: HttpResponseBase | None,
        error: BaseException | None = None,
    ) -> None:
        now = perf_counter()
        duration = now - handle.start
        instruments = self.instruments
        state = handle.state
        route = self.route(request)
        status = response.status_code if response is not None else 500
        if self.own:
            instruments.request_duration.record(
                (handle.method, route, status), duration, state.trace
            )
            instruments.active_requests.leave(self._method_keys[handle.method], now)
        else:
            from .contrib import align_route

            instruments.busy_time.leave(now)
            align_route(request, route)
        waited = handle.queue_time
        if waited is not None:
            instruments.queue_time.record((route,), waited, state.trace)
            if state.span is not None:
                state.span.set_attribute(QUEUE_TIME_ATTRIBUTE, waited)
        instruments.queries_per_request.record((route,), state.queries)
        threshold = self.runtime.n_plus_one_threshold
        for fingerprint, count in state.repeats.items():
            if count >= threshold:
                instruments.n_plus_one.add((fingerprint, route))
        for fingerprint in state.slow:
            instruments.slow_queries.add((fingerprint, route))
        finish_silk = request.__dict__.get("_fleetscope_silk_finish")
        if finish_silk is not None:  # a Silk-profiled request (telemetry/silk.py)
            finish_silk()
        try:
            current_request.reset(handle.state_token)  # type: ignore[arg-type]
        except ValueError:  # ended in another context (a cancelled ASGI request)
            current_request.set(None)
        if not self.own:
            return
        span = handle.span
        if state.span is not None:
            span.update_name(f"{handle.method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if self.runtime.config["RECORD_URL_PATH"]:
                span.set_attribute("url.path", scrub_path(request))
            if error is not None:
                span.set_attribute("error.type", type(error).__qualname__)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        context.detach(handle.context_token)  # type: ignore[arg-type]


# URL parameter names whose values are credentials or identify a person.
_SENSITIVE_PARAM = re.compile(
    r"token|key|secret|sig|hash|code|otp|nonce|pass|auth|uid|email|session", re.IGNORECASE
)
# A path segment that looks like a token whatever the URL pattern says: long and mixing
# letters with digits, or long hex/base64-like.
_TOKEN_SEGMENT = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-=.~]{16,}$|^[A-Fa-f0-9\-]{20,}$")
_MAX_PATH_BYTES = 1024


def scrub_path(request: HttpRequest) -> str:
    """`request.path` with sensitive URL parameters as `<name>` and token-like segments as
    `<token>`, capped at 1 KiB; for spans when RECORD_URL_PATH asks for the raw path, and for
    the paths Silk stores (telemetry.silk.masking)."""
    match = getattr(request, "resolver_match", None)
    replace: dict[str, str] = {}
    if match is not None:
        for name, value in match.kwargs.items():
            if _SENSITIVE_PARAM.search(name):
                replace[str(value)] = f"<{name}>"
    return scrub_segments(request.path, replace)


def scrub_segments(path: str, replace: dict[str, str] | None = None) -> str:
    """`path` with the segments in `replace` replaced and token-like segments as `<token>`,
    capped at 1 KiB (a path whose route is not known: only its shape can tell)."""
    replace = replace or {}
    segments = []
    for segment in path.split("/"):
        if segment in replace:
            segment = replace[segment]
        elif _TOKEN_SEGMENT.match(segment):
            segment = "<token>"
        segments.append(segment)
    path = "/".join(segments)
    encoded = path.encode("utf-8", "replace")
    if len(encoded) > _MAX_PATH_BYTES:
        path = encoded[: _MAX_PATH_BYTES - 3].decode("utf-8", "ignore") + "…"
    return path


MIDDLEWARE_PATH = "telemetry.middleware.TelemetryMiddleware"


class RequestsInstrument(Instrument):
    """Requests through TelemetryMiddleware: server spans, durations, active requests, and the
    route every SQL and cache signal of a request is attributed to. With
    REQUEST_INSTRUMENTATION = "opentelemetry-instrumentation-django", the contrib package owns
    spans and request metrics (telemetry/contrib.py)."""

    name = "requests"

    def install(self) -> None:
        self.runtime.requests_enabled = True
        if self.config["REQUEST_INSTRUMENTATION"] == "opentelemetry-instrumentation-django":
            from .contrib import instrument_contrib_django

            instrument_contrib_django()

    def uninstall(self) -> None:
        self.runtime.requests_enabled = False

    @classmethod
    def checks(cls, config: Config) -> list[CheckMessage]:
        from django.conf import settings

        from .contrib import CONTRIB_MIDDLEWARE

        middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
        if MIDDLEWARE_PATH not in middleware:
            return [
                Warning(
                    "TelemetryMiddleware is not in MIDDLEWARE: requests are not measured and "
                    "N+1 / queries-per-request cannot be attributed to routes.",
                    hint=f"Add '{MIDDLEWARE_PATH}' as the first entry of MIDDLEWARE.",
                    id="telemetry.W001",
                )
            ]
        # In contrib mode the contrib instrumentor inserts its own middleware at the top of
        # MIDDLEWARE itself; ours belongs right after it.
        ahead = [
            m for m in middleware[: middleware.index(MIDDLEWARE_PATH)] if m != CONTRIB_MIDDLEWARE
        ]
        if ahead:
            return [
                Warning(
                    "TelemetryMiddleware is not the first middleware: time spent in the "
                    f"middleware before it ({ahead[0]}) is not measured.",
                    hint=f"Move '{MIDDLEWARE_PATH}' to the top of MIDDLEWARE.",
                    id="telemetry.W002",
                )
            ]
        return []
