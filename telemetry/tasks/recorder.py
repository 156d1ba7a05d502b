"""What one process records about tasks, independent of Celery's signal signatures.

Publishing injects the W3C trace context and a publish timestamp into the message headers.
A task run is bracketed like a request: a CONSUMER span continues the publisher's trace
(sampling follows the parent's decision), and a `RequestState` in `current_request` makes
the SQL and cache instruments attribute their work to the task exactly as they attribute it
to a route, unchanged; at the end, N+1 and slow queries are counted under
`celery.task.name` instead of `http.route`.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar, Token
from datetime import datetime
from time import perf_counter
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..instruments import TaskInstruments
from ..runtime import Runtime, trace_ref
from ..state import RequestState, current_request
from .depth import QueueDepth

# The publish time (epoch seconds) travels in this message header; queue wait is measured
# from it (or from the task's ETA when later).
PUBLISHED_HEADER = "fleetscope_published"
TRACE_HEADERS = ("traceparent", "tracestate")
# Celery's final task states -> the `celery.task.outcome` attribute. IGNORED is a task that
# asked not to be recorded (it replaced itself, for example); REJECTED a message it refused.
OUTCOMES = {
    "SUCCESS": "success",
    "FAILURE": "failure",
    "RETRY": "retry",
    "REVOKED": "revoked",
    "IGNORED": "success",
    "REJECTED": "failure",
}
# Per-process caps on label values: task names come from code, but `send_task("...")` takes
# any string; queues come from configuration or routing. Later values count as `other`.
MAX_TASK_NAMES = 200
MAX_QUEUES = 50
OTHER = "other"
NO_QUEUE = "none"


class _RequestGetter(Getter[Any]):
    """Reads W3C headers from a Celery task request: custom message headers become request
    attributes, and are also kept in `request.headers`."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        if value is None:
            headers = getattr(carrier, "headers", None)
            value = headers.get(key) if isinstance(headers, dict) else None
        return None if value is None else [str(value)]

    def keys(self, carrier: Any) -> list[str]:
        return [key for key in TRACE_HEADERS if self.get(carrier, key) is not None]


_GETTER = _RequestGetter()


class Bounded:
    """Label values seen so far, at most `cap` distinct ones; the rest are `other`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        seen = self._seen.get(value)
        if seen is None:
            seen = value if len(self._seen) < self.cap else OTHER
            if seen is not OTHER:
                self._seen[value] = seen
        return seen

    def values(self) -> list[str]:
        return list(self._seen)


class TaskHandle:
    """One task run between task_prerun and task_postrun."""

    __slots__ = (
        "context_token",
        "error_type",
        "name",
        "span",
        "start",
        "state",
        "state_token",
        "task_id",
        "task_token",
    )

    def __init__(
        self,
        task_id: str | None,
        name: str,
        span: trace.Span,
        state: RequestState,
        start: float,
        context_token: Token[Context],
        state_token: Token[RequestState | None],
    ) -> None:
        self.task_id = task_id
        self.name = name
        self.span = span
        self.state = state
        self.start = start
        self.context_token = context_token
        self.state_token = state_token
        self.task_token: Token[TaskHandle | None] | None = None
        self.error_type: str | None = None


_current_task: ContextVar[TaskHandle | None] = ContextVar("fleetscope_task", default=None)


class TaskRecorder:
    """Records publishing, runs, failures, retries and revocations of tasks for one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.instruments = TaskInstruments(runtime.aggregator)
        self.task_names = Bounded(MAX_TASK_NAMES)
        self.queues = Bounded(MAX_QUEUES)
        self.depth = QueueDepth(runtime, self.queues)
        self.instruments.queue_depth.observe = self.depth.observe

    @property
    def max_queue_wait_s(self) -> float:
        return float(self.runtime.config["TASK_MAX_QUEUE_WAIT_S"])

    # -- publishing (the process that queues the task) ------------------------------------

    def published(self, task_name: str, queue: str | None, headers: dict[str, Any]) -> None:
        """before_task_publish: the trace context and publish time go into the headers."""
        runtime = self.runtime
        if not runtime._started:
            runtime.ensure_started()
        for key in TRACE_HEADERS:  # a retry re-publishes the run's headers: start afresh
            headers.pop(key, None)
        propagate.inject(headers)
        headers[PUBLISHED_HEADER] = time.time()
        self.instruments.published.add((self.task_names(task_name), self._queue(queue)))

    def _queue(self, queue: str | None) -> str:
        return self.queues(queue) if queue else NO_QUEUE

    # -- a run (the worker process that executes it) --------------------------------------

    def begin(self, task_id: str | None, task_name: str, request: Any) -> TaskHandle:
        """task_prerun: the task's span, its queue wait, and the state SQL/cache record into."""
        runtime = self.runtime
        if not runtime._started:  # a pool child's first task starts its export
            runtime.ensure_started()
        started_at = time.time()
        start = perf_counter()
        name = self.task_names(task_name)
        queue = self._queue(_routing_key(request))
        parent: Context | None = None
        if _GETTER.get(request, "traceparent") is not None:
            parent = propagate.extract(request, getter=_GETTER)
        # Without a traceparent (an eager task, a publisher without Fleetscope), the current
        # context is the parent: a request that ran the task inline, or none.
        span = runtime.tracer.start_span(f"process {name}", context=parent, kind=SpanKind.CONSUMER)
        recording = span.is_recording()
        if recording:
            span.set_attributes(
                {
                    "messaging.system": "celery",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": queue,
                    "celery.task.name": name,
                    "celery.task.retries": int(getattr(request, "retries", 0) or 0),
                }
            )
        state = RequestState(span if recording else None, trace_ref(span) if recording else None)
        if not getattr(request, "is_eager", False):
            self._queue_wait(request, name, queue, started_at, state)
        context_token = context.attach(trace.set_span_in_context(span, parent))
        handle = TaskHandle(
            task_id, name, span, state, start, context_token, current_request.set(state)
        )
        handle.task_token = _current_task.set(handle)
        return handle

    def _queue_wait(
        self, request: Any, name: str, queue: str, started_at: float, state: RequestState
    ) -> None:
        published = _published_at(request)
        if published is None:  # published without Fleetscope: nothing to measure from
            return
        eta = _eta(getattr(request, "eta", None))
        wait = started_at - (published if eta is None else max(published, eta))
        instruments = self.instruments
        if wait < 0:
            instruments.queue_wait_dropped.add(("negative",))
        elif wait > self.max_queue_wait_s:
            instruments.queue_wait_dropped.add(("too_large",))
        else:
            instruments.queue_wait.record((name, queue), wait, state.trace)

    def current(self, task_id: str | None) -> TaskHandle | None:
        handle = _current_task.get()
        if handle is None or (task_id is not None and handle.task_id != task_id):
            return None
        return handle

    def end(self, handle: TaskHandle, celery_state: str | None) -> None:
        """task_postrun: duration by outcome, queries, N+1 and slow queries under the task."""
        duration = perf_counter() - handle.start
        outcome = OUTCOMES.get(celery_state or "", "failure")
        instruments = self.instruments
        state = handle.state
        name = handle.name
        key = (name,)
        instruments.duration.record((name, outcome), duration, state.trace)
        instruments.queries_per_task.record(key, state.queries)
        threshold = self.runtime.n_plus_one_threshold
        for fingerprint, count in state.repeats.items():
            if count >= threshold:
                instruments.n_plus_one.add((fingerprint, name))
        for fingerprint in state.slow:
            instruments.slow_queries.add((fingerprint, name))
        try:
            if handle.task_token is not None:
                _current_task.reset(handle.task_token)
            current_request.reset(handle.state_token)
        except ValueError:  # ended in another context: leave none behind
            _current_task.set(None)
            current_request.set(None)
        span = handle.span
        if state.span is not None:
            span.set_attribute("celery.task.outcome", outcome)
            if handle.error_type is not None:
                span.set_attribute("error.type", handle.error_type)
            if outcome == "failure":
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        context.detach(handle.context_token)  # logs a mismatch itself, never raises

    def failed(self, task_id: str | None, task_name: str, error: BaseException | None) -> None:
        """task_failure: counted by exception type (the type only: messages quote values)."""
        error_type = type(error).__qualname__ if error is not None else "unknown"
        handle = self.current(task_id)
        if handle is not None:
            handle.error_type = error_type
        self._started()
        self.instruments.failures.add((self.task_names(task_name), error_type))

    def retried(self, task_name: str) -> None:
        self._started()
        self.instruments.retries.add((self.task_names(task_name),))

    def revoked(self, task_name: str, started_at: float | None) -> None:
        """task_revoked (in the worker's main process): the time it ran, 0 if it never did."""
        self._started()
        duration = max(0.0, time.time() - started_at) if started_at else 0.0
        self.instruments.duration.record((self.task_names(task_name), "revoked"), duration)

    def _started(self) -> None:
        if not self.runtime._started:
            self.runtime.ensure_started()


def _routing_key(request: Any) -> str | None:
    info = getattr(request, "delivery_info", None)
    if isinstance(info, dict):
        key = info.get("routing_key")
        return str(key) if key else None
    return None


def _published_at(request: Any) -> float | None:
    value = _GETTER.get(request, PUBLISHED_HEADER)
    if value is None:
        return None
    try:
        return float(value[0])
    except ValueError:
        return None


def _eta(value: Any) -> float | None:
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:  # Celery sends aware ETAs; a naive one is taken as UTC
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


_recorders: dict[int, TaskRecorder] = {}
_recorders_lock = threading.Lock()


def recorder_for(runtime: Runtime) -> TaskRecorder:
    """The recorder of `runtime`, built once (its instruments live in the runtime's
    aggregator, which a reinstall must not fill with duplicates)."""
    with _recorders_lock:
        recorder = _recorders.get(id(runtime))
        if recorder is None or recorder.runtime is not runtime:
            recorder = _recorders[id(runtime)] = TaskRecorder(runtime)
        return recorder
