"""Per-process OTLP export: one background thread, a bounded span queue, periodic metrics.

Nothing here runs on the request path except `SpanQueue.on_end` (a deque append). The
export thread wakes every `SPAN_FLUSH_SECONDS` (or when the queue holds a batch), encodes
spans in batches of at most `SPAN_BATCH` (telemetry/otlp.py: cached per-statement bytes,
so no batch holds the GIL for long), and every metric interval reads the aggregator and
the SDK's process metrics and sends them as one request.

What happens when the collector does not take the data (docs/reliability.md):
- metrics are cumulative, so a failed export loses nothing: the next one carries it;
- a span batch that fails with a retryable answer (connection refused or reset, timeout,
  HTTP 429/502/503/504, the matching gRPC codes) is kept and retried with backoff while new
  spans wait in the queue; when the queue is full, new spans are dropped and counted
  (`fleetscope.export.spans.dropped{reason="queue_full"}`); a batch the collector rejects
  for good (other 4xx) is dropped and counted (`reason="rejected"`);
- every failed attempt is counted (`fleetscope.export.failures{signal, error.type}`) and
  logged through the `telemetry` logger at most once per `LOG_INTERVAL_SECONDS` and signal;
- at exit, one final flush runs with a hard budget (`EXIT_FLUSH_TIMEOUT_MS`, 2 s by default):
  spans get at most half of it when metrics follow, so a traces endpoint that never answers
  cannot cost the last metrics; spans still held then are counted (`reason="exit"`).
  From then on the thread exports nothing, so the flush's export is the process's last.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .conf import ExportTarget
from .otlp import export_metrics_request, export_trace_request, rejected_count
from .spans import DeferredSpan
from .transport import EndpointError, Sender, SendResult, make_sender

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger("telemetry")

SPAN_BATCH = 256
SPAN_FLUSH_SECONDS = 0.5
LOG_INTERVAL_SECONDS = 60.0
_BACKOFF_FIRST = 1.0
_BACKOFF_MAX = 10.0


class SpanQueue(SpanProcessor):
    """Fleetscope's own span processor: sampled spans into a bounded queue, nothing else.

    Registered on the tracer provider (so SDK spans reach it) and fed deferred spans
    directly by the runtime. `deque.append` and `popleft` are atomic: no lock on this path.
    """

    fleetscope_own = True

    def __init__(self, max_size: int, on_drop: Callable[[int], None]) -> None:
        self.max_size = max_size
        self._queue: deque[DeferredSpan | ReadableSpan] = deque()
        self._on_drop = on_drop
        self.wake: Callable[[], None] | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan | DeferredSpan) -> None:
        if type(span) is not DeferredSpan:
            context = span.context  # type: ignore[union-attr]
            if context is None or not context.trace_flags.sampled:
                return
        queue = self._queue
        if len(queue) >= self.max_size:
            self._on_drop(1)
            return
        queue.append(span)
        if len(queue) == SPAN_BATCH and self.wake is not None:
            self.wake()

    def take(self, limit: int) -> list[DeferredSpan | ReadableSpan]:
        taken: list[DeferredSpan | ReadableSpan] = []
        popleft = self._queue.popleft
        try:
            while len(taken) < limit:
                taken.append(popleft())
        except IndexError:
            pass
        return taken

    def __len__(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        self._queue = deque()

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class FailureLog:
    """At most one log line per signal and interval, with the count of failures it covers."""

    def __init__(self, interval: float = LOG_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._pending: dict[str, int] = {}

    def failed(self, target: ExportTarget, detail: str, consequence: str) -> None:
        signal = target.signal
        self._pending[signal] = self._pending.get(signal, 0) + 1
        now = time.monotonic()
        last = self._last.get(signal)
        if last is not None and now - last < self.interval:
            return
        self._last[signal] = now
        count = self._pending.pop(signal)
        logger.warning(
            "Fleetscope could not export %s to %s (%s); %d failed attempt(s) since the last "
            "report. %s Requests are not affected. (This message repeats at most every %.0f s.)",
            signal,
            target.url,
            detail,
            count,
            consequence,
            self.interval,
        )


class ExportWorker:
    """The export thread of one process (started lazily by `Runtime.ensure_started`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        config = runtime.config
        self.export_traces = config.export_traces
        self.export_metrics = config.export_metrics
        self.interval = config.metric_export_interval_ms / 1000.0
        self.failures = FailureLog()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._senders: dict[str, Sender] = {}
        self._targets = {"traces": config.traces, "metrics": config.metrics}
        self._pending: tuple[bytes, int] | None = None  # a span batch awaiting retry
        # The thread and an exit flush may both be at work (the thread's send can be stuck on
        # an endpoint that never answers): the batch lock makes taking spans into `_pending`
        # and settling its outcome atomic, the metrics lock makes collecting and sending one
        # export atomic, so the export read last is the export sent last.
        self._batch_lock = threading.Lock()
        self._metrics_lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = _BACKOFF_FIRST
        self._next_metrics = time.monotonic() + self.interval
        self.meter_provider: MeterProvider | None = None
        self._reader: InMemoryMetricReader | None = None
        runtime.span_queue.wake = self._wake.set

    # -- lifecycle -----------------------------------------------------------------

    def start(self, senders: dict[str, Sender] | None = None) -> None:
        """Start the thread. `senders` replaces the OTLP senders (benchmarks, tests)."""
        # Everything that imports or builds clients happens here, in the calling thread.
        if senders is None:
            self._make_senders()
        else:
            self._senders = dict(senders)
        if self.export_metrics:
            self._start_sdk_metrics()
        self._thread = threading.Thread(target=self._run, name="fleetscope-export", daemon=True)
        self._thread.start()

    def _start_sdk_metrics(self) -> None:
        """Process metrics through the maintained instrumentation, read when we export."""
        self._reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(
            resource=self.runtime.resource, metric_readers=[self._reader], shutdown_on_exit=False
        )
        if self.runtime.process_metrics:
            from .process import instrument_process_metrics

            instrument_process_metrics(self.meter_provider)
        if not _sdk_meter_provider_is_global():
            # So that the user's own metrics (and contrib instrumentations') ride along.
            metrics.set_meter_provider(self.meter_provider)

    def retarget(self) -> None:
        """The configuration changed (override_settings, an app reload): new endpoints."""
        config = self.runtime.config
        self.export_traces = config.export_traces
        self.export_metrics = config.export_metrics
        self.interval = config.metric_export_interval_ms / 1000.0
        self._targets = {"traces": config.traces, "metrics": config.metrics}
        senders = self._senders
        try:
            self._make_senders()
        except EndpointError as exc:
            logger.error("Fleetscope stops exporting: %s. Requests are not affected.", exc)
            self.export_traces = self.export_metrics = False
            self._senders = {}
        for sender in senders.values():
            sender.close()
        if self.export_metrics and self._reader is None:
            self._start_sdk_metrics()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            self._wake.wait(max(0.0, min(SPAN_FLUSH_SECONDS, self._next_metrics - now)))
            self._wake.clear()
            if self._stopping:
                break
            try:
                self.export_spans()
                if self._stopping:  # the exit flush exports from here on
                    break
                if time.monotonic() >= self._next_metrics:
                    self._next_metrics = time.monotonic() + self.interval
                    self.export_metrics_once()
            except Exception:  # never let the thread die: log and go on
                logger.exception("Fleetscope's export thread hit an unexpected error")
                time.sleep(1.0)

    def _make_senders(self) -> None:
        self._senders = {signal: make_sender(target) for signal, target in self._targets.items()}

    def _sender(self, signal: str) -> Sender:
        sender = self._senders.get(signal)
        if sender is None:  # not started (tests drive the worker directly)
            sender = self._senders[signal] = make_sender(self._targets[signal])
        return sender

    # -- spans -------------------------------------------------------------------------

    def export_spans(self, deadline: float | None = None, sender: Sender | None = None) -> None:
        """Send queued spans in batches until the queue is empty, a batch fails, or `deadline`.
        The thread (no deadline) gives up as soon as the exit flush has begun."""
        queue = self.runtime.span_queue
        if not self.export_traces:
            queue.take(len(queue))
            return
        thread = deadline is None
        while True:
            with self._batch_lock:
                if thread and self._stopping:
                    return
                if self._pending is None:
                    spans = queue.take(SPAN_BATCH)
                    if not spans:
                        return
                    self._pending = (
                        export_trace_request(self.runtime.resource, spans),
                        len(spans),
                    )
                elif thread and time.monotonic() < self._retry_at:
                    return
                batch = self._pending
            timeout = self._timeout("traces", deadline)
            if timeout <= 0:
                return
            result = (sender or self._sender("traces")).send(batch[0], timeout)
            if not self._settle(batch, result):
                return
            if thread:
                time.sleep(0)  # let request threads have the GIL between batches

    def _settle(self, batch: tuple[bytes, int], result: SendResult) -> bool:
        """Count what became of `batch`; True when the next batch may be sent."""
        count = batch[1]
        instruments = self.runtime.instruments
        if not result.ok:
            instruments.export_failures.add(("traces", result.error_type))
        with self._batch_lock:
            if self._pending is not batch:  # the other side settled it (or gave it up)
                return False
            if result.ok:
                self._pending = None
                self._backoff = _BACKOFF_FIRST
                rejected = rejected_count("traces", result.response)
                instruments.spans_exported.add((), count - rejected)
                if rejected:
                    instruments.spans_dropped.add(("rejected",), rejected)
                return True
            if result.retryable:
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
            else:
                self._pending = None
                instruments.spans_dropped.add(("rejected",), count)
            queued = len(self.runtime.span_queue)
        if result.retryable:
            self.failures.failed(
                self._targets["traces"],
                result.detail,
                f"{count} span(s) wait for a retry; {queued} more are queued "
                f"(at most {self.runtime.span_queue.max_size}, then new spans are dropped and "
                "counted).",
            )
            return False
        self.failures.failed(
            self._targets["traces"], result.detail, f"{count} span(s) were dropped."
        )
        return True

    # -- metrics -----------------------------------------------------------------------

    def collect_metrics(self) -> MetricsData:
        sdk_data = self._reader.get_metrics_data() if self._reader is not None else None
        return self.runtime.merge_metrics(sdk_data or MetricsData(resource_metrics=[]))

    def export_metrics_once(
        self, deadline: float | None = None, sender: Sender | None = None
    ) -> bool:
        if not self.export_metrics:
            return True
        timeout = self._timeout("metrics", deadline)
        if timeout <= 0:
            return False
        # One export at a time, so that the counts read last are the counts sent last. The
        # exit flush waits for the thread's export in flight (within its budget); the thread
        # leaves the export to the flush once it has begun.
        locked = self._metrics_lock.acquire(timeout=timeout if deadline is not None else -1)
        try:
            if deadline is None and self._stopping:
                return True
            timeout = self._timeout("metrics", deadline)
            if timeout <= 0:
                return False
            body = export_metrics_request(self.collect_metrics())
            result = (sender or self._sender("metrics")).send(body, timeout)
        finally:
            if locked:
                self._metrics_lock.release()
        if result.ok:
            return True
        self.runtime.instruments.export_failures.add(("metrics", result.error_type))
        self.failures.failed(
            self._targets["metrics"],
            result.detail,
            "Metrics are cumulative: the next successful export carries these counts.",
        )
        return False

    def _timeout(self, signal: str, deadline: float | None) -> float:
        timeout = self._targets[signal].timeout_s
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
        return timeout

    # -- exit --------------------------------------------------------------------------

    def flush(self, budget: float, stop: bool = True) -> None:
        """Export what is held now with a hard time budget, on fresh connections (the thread's
        may be stuck on an unresponsive collector); `stop` ends the thread first (exit)."""
        deadline = time.monotonic() + budget
        if stop:
            self.stop()
        thread = self._thread
        if stop and thread is not None and thread is not threading.current_thread():
            # Let a send in progress finish (it may hold the batch being retried).
            thread.join(timeout=min(0.25, budget / 4))
        senders: list[Sender] = []
        try:
            if self.export_traces:
                sender = make_sender(self._targets["traces"])
                senders.append(sender)
                # At most half of what is left when metrics follow: a traces endpoint that
                # never answers must not cost the last metrics (exact counts, and the count
                # of the spans given up here).
                span_deadline = deadline
                if self.export_metrics:
                    span_deadline -= (deadline - time.monotonic()) / 2
                self.export_spans(span_deadline, sender)
                if stop:
                    with self._batch_lock:  # the thread can no longer settle what is given up
                        left = len(self.runtime.span_queue.take(len(self.runtime.span_queue)))
                        if self._pending is not None:
                            left += self._pending[1]
                            self._pending = None
                    if left:
                        self.runtime.instruments.spans_dropped.add(("exit",), left)
            if self.export_metrics:
                sender = make_sender(self._targets["metrics"])
                senders.append(sender)
                self.export_metrics_once(deadline, sender)
        except Exception:
            logger.exception("Fleetscope's final export failed")
        finally:
            for sender in senders:
                sender.close()

    def shutdown(self) -> None:
        self.stop()
        for sender in self._senders.values():
            sender.close()


def _sdk_meter_provider_is_global() -> bool:
    return isinstance(metrics.get_meter_provider(), MeterProvider)


def debug_state(worker: ExportWorker | None) -> dict[str, Any]:
    """What the export thread is doing, for `telemetry_check` and tests."""
    if worker is None:
        return {"started": False}
    thread = worker._thread
    return {
        "started": True,
        "thread alive": bool(thread and thread.is_alive()),
        "pending batch": worker._pending[1] if worker._pending else 0,
    }
