"""One process's telemetry runtime: instruments, tracer, statement catalog, and lazy export.

There is one runtime per process. `AppConfig.ready()` configures it, and runs again on
every app registry reload (`override_settings(INSTALLED_APPS=...)`): the runtime is then
reconfigured, never multiplied, so a process never has more than one export thread.

Export starts on the first recorded signal in each process (a request, a query, a cache
operation), never at import or in `ready()`: under `gunicorn --preload` the app is loaded in
the master and then forked, and a thread started before the fork does not exist in the
workers. The fork hook only re-creates locks and forgets the parent's counts, so that any
fork (gunicorn, multiprocessing, subprocess with preexec_fn) is safe; the child starts its
own exporter when it records something. A process that exits flushes what it holds within
`EXIT_FLUSH_TIMEOUT_MS`.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Tracer

from fleetscope import __version__

from .aggregate import Aggregator, TraceRef
from .conf import Config
from .export import ExportWorker, SpanQueue
from .fingerprint import StatementCatalog
from .instruments import Instruments
from .resource import build_resource
from .spans import (
    NOT_SAMPLED,
    SAMPLED,
    SCOPE,
    DeferredSpan,
    FleetscopeTracerProvider,
    LiteSpan,
    PresetTraceIdGenerator,
    RootSampler,
    clear_preset,
    getrandbits,
    new_span_id,
    preset_trace_id,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter


logger = logging.getLogger("telemetry")

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


class ConfigurationError(ValueError):
    """A setting or OTEL_* variable Fleetscope cannot use; the message names it."""


def sampler_ratio(config: Config) -> float:
    try:
        ratio = float(config.sampler_arg) if config.sampler_arg is not None else 1.0
    except ValueError:
        raise ConfigurationError(
            f"Trace sampler argument {config.sampler_arg!r} is not a number; set "
            "OTEL_TRACES_SAMPLER_ARG (or TELEMETRY['TRACES_SAMPLE_RATE']) to a value in [0, 1]."
        ) from None
    if not 0.0 <= ratio <= 1.0:
        raise ConfigurationError(
            f"Trace sampler argument {ratio} is out of range; set OTEL_TRACES_SAMPLER_ARG "
            "(or TELEMETRY['TRACES_SAMPLE_RATE']) to a value in [0, 1]."
        )
    return ratio


def build_sampler(config: Config) -> Sampler:
    name = config.sampler
    if name not in SAMPLERS:
        raise ConfigurationError(
            f"OTEL_TRACES_SAMPLER={name!r} is not supported; use one of {', '.join(SAMPLERS)}."
        )
    root: Sampler
    if name.endswith("always_on"):
        root = ALWAYS_ON
    elif name.endswith("always_off"):
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(sampler_ratio(config))
    return ParentBased(root) if name.startswith("parentbased_") else root


def build_root_sampler(config: Config) -> RootSampler | None:
    """The fast root decision, for the samplers whose root verdict is a trace-id ratio."""
    if config.sampler in ("traceidratio", "parentbased_traceidratio"):
        return RootSampler(sampler_ratio(config))
    if config.sampler in ("always_off", "parentbased_always_off"):
        return RootSampler(0.0)
    return None


def usable(config: Config) -> Config:
    """`config`, or the same with sampling off when its sampler is unusable (check E002)."""
    try:
        build_sampler(config)
    except ConfigurationError:
        return config.with_sampler("always_off")
    return config


def trace_ref(span: trace.Span) -> TraceRef | None:
    """The exemplar reference of a span, or None when it is not sampled."""
    if not span.is_recording():
        return None
    context = span.get_span_context()
    return TraceRef(context.trace_id, context.span_id)


class Runtime:
    """Everything one process records with; export starts on the first recorded signal."""

    def __init__(self, config: Config, span_exporter: SpanExporter | None = None) -> None:
        self.config = config
        self.aggregator = Aggregator()
        self.instruments = Instruments(self.aggregator)
        self.catalog = StatementCatalog(
            max_fingerprints=int(config["MAX_FINGERPRINTS"]),
            max_text_length=int(config["MAX_STATEMENT_LENGTH"]),
        )
        self._apply_thresholds(config)
        self._lock = threading.Lock()
        self._started = False
        # Switched by the instruments of telemetry.registry (all on for a bare Runtime).
        self.requests_enabled = True
        self.db_enabled = True
        self.process_metrics = True
        self.worker: ExportWorker | None = None
        self._resource: Resource | None = None
        dropped = self.instruments.spans_dropped
        self.span_queue: SpanQueue = SpanQueue(
            int(config["SPAN_QUEUE_SIZE"]), lambda n: dropped.add(("queue_full",), n)
        )
        self.tracer_provider = FleetscopeTracerProvider(
            sampler=build_sampler(config),
            resource=self.resource,
            id_generator=PresetTraceIdGenerator(),
        )
        self.tracer_provider.add_span_processor(self.span_queue)
        self.tracer: Tracer = self.tracer_provider.get_tracer(SCOPE.name, __version__)
        self._apply_sampler(config)
        self._emit_failed = False
        if span_exporter is not None:  # tests: an in-memory exporter, synchronous
            self.add_span_exporter(span_exporter, batch=False)

    def _apply_sampler(self, config: Config) -> None:
        self.root_sampler = build_root_sampler(config)
        # Decisions LiteSpan can take without the SDK: parent-based samplers (a parent's
        # flag decides), and roots decided by the ratio (root_sampler) or always_on.
        self._parent_based = config.sampler.startswith("parentbased_")
        self._fast_sampling = self._parent_based or config.sampler in (
            "always_on",
            "always_off",
            "traceidratio",
        )

    def _apply_thresholds(self, config: Config) -> None:
        self.slow_query_seconds = config.slow_query_seconds
        self.n_plus_one_threshold = int(config["N_PLUS_ONE_THRESHOLD"])

    @property
    def resource(self) -> Resource:
        """This process's identity (rebuilt after a fork: the pid is in `service.instance.id`)."""
        resource = self._resource
        if resource is None:
            resource = self._resource = build_resource(self.config)
        return resource

    # -- configuration -------------------------------------------------------------

    def reconfigure(self, config: Config) -> None:
        """Apply a new configuration in place (app reload, override_settings)."""
        with self._lock:
            self.config = config
            self._apply_thresholds(config)
            self.catalog.reconfigure(
                max_fingerprints=int(config["MAX_FINGERPRINTS"]),
                max_text_length=int(config["MAX_STATEMENT_LENGTH"]),
            )
            self.span_queue.max_size = int(config["SPAN_QUEUE_SIZE"])
            self._resource = None
            provider = self.tracer_provider
            provider.sampler = build_sampler(config)
            provider.set_resource(self.resource)
            self.tracer = provider.get_tracer(SCOPE.name, __version__)
            self._apply_sampler(config)
            worker = self.worker
            if worker is not None:
                if config.exporting:
                    worker.retarget()
                else:
                    worker.shutdown()
                    self.worker = None
            elif config.exporting:
                self._started = False  # start (lazily) under the new configuration

    # -- metrics -------------------------------------------------------------------

    def collect_metrics(self) -> list[Metric]:
        """The aggregator's metrics, with one statement-info series per known fingerprint."""
        info = self.instruments.statement_info
        for statement in self.catalog.statements():
            info.set((statement.fingerprint, statement.summary, statement.text))
        return self.aggregator.collect()

    def merge_metrics(self, metrics_data: MetricsData) -> MetricsData:
        """The SDK's metrics (process metrics, a user's own) plus ours, under our resource."""
        ours = ScopeMetrics(scope=SCOPE, metrics=self.collect_metrics(), schema_url="")
        resource = self.resource
        merged: list[ResourceMetrics] = []
        placed = False
        for resource_metrics in metrics_data.resource_metrics:
            if not placed and resource_metrics.resource == resource:
                resource_metrics = ResourceMetrics(
                    resource=resource_metrics.resource,
                    scope_metrics=[*resource_metrics.scope_metrics, ours],
                    schema_url=resource_metrics.schema_url,
                )
                placed = True
            merged.append(resource_metrics)
        if not placed:
            merged.append(ResourceMetrics(resource=resource, scope_metrics=[ours], schema_url=""))
        return MetricsData(resource_metrics=merged)

    # -- spans ---------------------------------------------------------------------

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """A processor of the user's: it gets every span, deferred ones as `ReadableSpan`s."""
        self.tracer_provider.add_span_processor(processor)

    def add_span_exporter(
        self, exporter: SpanExporter, batch: bool = True, **batch_options: Any
    ) -> SpanProcessor:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        processor: SpanProcessor = (
            BatchSpanProcessor(exporter, **batch_options)
            if batch
            else SimpleSpanProcessor(exporter)
        )
        self.add_span_processor(processor)
        return processor

    def server_span(
        self, name: str, parent: Context | None = None, trace_id: int = 0
    ) -> trace.Span:
        """The span of a request being served: a `LiteSpan` when Fleetscope alone handles
        spans (no processor of the user's) and the sampler's decision is known here; the
        SDK's span otherwise. `trace_id` is the id of a root the ratio sampler already
        sampled; `parent` the context extracted from the request's headers."""
        provider = self.tracer_provider
        if provider.has_foreign_processors or not self._fast_sampling:
            return self._sdk_server_span(name, parent, trace_id)
        parent_context = trace.get_current_span(parent).get_span_context() if parent else None
        trace_state = None
        if parent_context is not None and parent_context.is_valid:
            if not self._parent_based:  # a ratio or always_* verdict the SDK draws
                return self._sdk_server_span(name, parent, trace_id)
            trace_id = parent_context.trace_id
            trace_state = parent_context.trace_state
            if not parent_context.trace_flags.sampled:
                return trace.NonRecordingSpan(
                    trace.SpanContext(trace_id, new_span_id(), False, NOT_SAMPLED, trace_state)
                )
        else:
            parent_context = None
            if not trace_id:  # always_on roots
                trace_id = getrandbits(128) or 1
        context = trace.SpanContext(trace_id, new_span_id(), False, SAMPLED, trace_state)
        return LiteSpan(name, context, parent_context, self.span_queue.on_end)

    def client_span(self, name: str, attributes: dict[str, Any]) -> trace.Span:
        """A CLIENT span under the current span (which the caller knows is recording)."""
        if self.tracer_provider.has_foreign_processors:
            return self.tracer.start_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)
        parent = trace.get_current_span().get_span_context()
        context = trace.SpanContext(
            parent.trace_id, new_span_id(), False, SAMPLED, parent.trace_state
        )
        span = LiteSpan(name, context, parent, self.span_queue.on_end, trace.SpanKind.CLIENT)
        span.attributes.update(attributes)
        return span

    def _sdk_server_span(self, name: str, parent: Context | None, trace_id: int) -> trace.Span:
        if not trace_id:
            return self.tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER)
        token = preset_trace_id(trace_id)
        try:
            return self.tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER)
        finally:
            clear_preset(token)

    def emit(self, span: DeferredSpan) -> None:
        """A finished deferred span: into the export queue, or, when the user has processors of
        their own, through every processor as a standard SDK span."""
        provider = self.tracer_provider
        if not provider.has_foreign_processors:
            self.span_queue.on_end(span)
            return
        try:
            provider.emit_materialized(span.materialize(self.resource))
        except Exception:  # processors are guarded; this is materialization itself
            if not self._emit_failed:
                self._emit_failed = True
                logger.exception("Fleetscope could not hand a span to the span processors")

    # -- lifecycle -----------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    def ensure_started(self) -> None:
        """Start exporting in this process (idempotent; one attribute read after the first)."""
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
            # After a fork: the worker's identity, for spans and for user processors.
            self._resource = None
            self.tracer_provider.set_resource(self.resource)
            self.tracer = self.tracer_provider.get_tracer(SCOPE.name, __version__)
            if not self.config.exporting:
                return
            try:
                worker = ExportWorker(self)
                worker.start()
            except Exception:
                logger.exception("Fleetscope could not start exporting; nothing will be sent")
                return
            self.worker = worker
        _hook_exit()

    def after_fork_in_child(self) -> None:
        """In a forked child: fresh locks and counts only (no threads, no I/O: the child may be
        about to exec, and another thread of the parent may have held any lock at the fork)."""
        self._lock = threading.Lock()
        self._started = False
        self.worker = None
        self._resource = None
        self.span_queue.clear()
        self.span_queue.wake = None
        self.aggregator.after_fork()

    def flush(self, budget: float | None = None) -> None:
        """Export what this process holds now, within `budget` seconds (default: the exit
        budget). Does not stop exporting."""
        worker = self.worker
        if worker is not None:
            budget = self.exit_budget if budget is None else budget
            worker.flush(budget, stop=False)

    @property
    def exit_budget(self) -> float:
        return max(float(self.config["EXIT_FLUSH_TIMEOUT_MS"]), 0.0) / 1000.0

    def shutdown(self) -> None:
        """Final flush within the exit budget, then stop the export thread."""
        worker = self.worker
        if worker is not None:
            worker.flush(self.exit_budget, stop=True)
            self.worker = None
        self._started = False

    def force_flush(self) -> None:
        self.flush()


_active: Runtime | None = None
_fork_hook_installed = False
_exit_hooked_pid = 0


def _after_fork() -> None:
    if _active is not None:
        _active.after_fork_in_child()


def _flush_at_exit() -> None:
    runtime = _active
    if runtime is not None and runtime.worker is not None:
        try:
            runtime.shutdown()
        except Exception:
            logger.exception("Fleetscope's exit flush failed")


def _hook_exit() -> None:
    """Flush at exit: atexit (inherited across fork), and, in a multiprocessing child (which
    leaves through os._exit, skipping atexit), multiprocessing's own exit finalizers."""
    global _exit_hooked_pid
    pid = os.getpid()
    if _exit_hooked_pid == pid:
        return
    if _exit_hooked_pid == 0:
        atexit.register(_flush_at_exit)
    _exit_hooked_pid = pid
    import multiprocessing
    import multiprocessing.util

    if multiprocessing.parent_process() is not None:
        multiprocessing.util.Finalize(None, _flush_at_exit, exitpriority=0)


def activate(runtime: Runtime) -> Runtime:
    """Make `runtime` the one the middleware, SQL and cache instruments record into."""
    global _active, _fork_hook_installed
    _active = runtime
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_after_fork)
        _fork_hook_installed = True
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        # Ours becomes the global provider (unless the user set one), so processors and
        # tracers the user adds through the API share it.
        trace.set_tracer_provider(runtime.tracer_provider)
    return runtime


def configure(config: Config) -> Runtime:
    """The process's runtime under `config`: created once, reconfigured on later calls."""
    config = usable(config)
    runtime = _active
    if runtime is None:
        return activate(Runtime(config))
    if runtime.config != config:
        runtime.reconfigure(config)
    return runtime


def get_runtime() -> Runtime:
    if _active is None:
        raise RuntimeError(
            "Fleetscope's telemetry runtime is not active: add 'telemetry' to INSTALLED_APPS."
        )
    return _active


def active_runtime() -> Runtime | None:
    return _active
