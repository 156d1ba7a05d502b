"""Per-request state shared by the request, SQL and cache instruments through a context variable."""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry.trace import Span

from .aggregate import TraceRef


class RequestState:
    """What one request has done so far; read at its end to count N+1 and slow queries."""

    __slots__ = ("queries", "repeats", "silk", "slow", "span", "trace")

    def __init__(self, span: Span | None, trace: TraceRef | None) -> None:
        self.queries = 0
        self.repeats: dict[str, int] = {}  # fingerprint -> executions in this request
        self.slow: list[str] = []  # fingerprints of slow queries, in order
        self.span = span  # the recording server span, None when not sampled
        self.trace = trace
        # Set only while Silk profiles this request: the text Silk stores for each statement
        # (parameters rendered into it) -> its normalized text (telemetry.silk.masking).
        self.silk: dict[str, str] | None = None


current_request: ContextVar[RequestState | None] = ContextVar("fleetscope_request", default=None)
