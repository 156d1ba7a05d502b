"""One process's telemetry runtime: instruments, tracer, statement catalog, and lazy export.

Exporter threads are started on first use in each process, never at import or in
`AppConfig.ready()`: under `gunicorn --preload` the app is loaded in the master and
then forked, and a thread started before the fork does not exist in the workers.
A fork hook gives each child a fresh aggregation and its own `service.instance.id`.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Tracer

from .aggregate import Aggregator, TraceRef
from .conf import Config
from .fingerprint import StatementCatalog
from .instruments import Instruments
from .resource import build_resource
from .spans import DeferredSpan, MaterializingSpanExporter, PresetTraceIdGenerator, RootSampler

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import Metric, MetricExporter
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


def trace_ref(span: trace.Span) -> TraceRef | None:
    """The exemplar reference of a span, or None when it is not sampled."""
    if not span.is_recording():
        return None
    context = span.get_span_context()
    return TraceRef(context.trace_id, context.span_id)


class Runtime:
    """Everything one process records with; export starts on first request (per process)."""

    def __init__(self, config: Config, span_exporter: SpanExporter | None = None) -> None:
        self.config = config
        self.aggregator = Aggregator()
        self.instruments = Instruments(self.aggregator)
        self.catalog = StatementCatalog(
            max_fingerprints=int(config["MAX_FINGERPRINTS"]),
            max_text_length=int(config["MAX_STATEMENT_LENGTH"]),
        )
        self.slow_query_seconds = config.slow_query_seconds
        self.n_plus_one_threshold = int(config["N_PLUS_ONE_THRESHOLD"])
        self._span_exporter = span_exporter
        self._lock = threading.Lock()
        self._started = False
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        self.metric_exporter: MetricExporter | None = None
        self.tracer: Tracer = trace.NoOpTracer()
        self._build_tracer()

    def collect_metrics(self) -> list[Metric]:
        """The aggregator's metrics, with one statement-info series per known fingerprint."""
        info = self.instruments.statement_info
        for statement in self.catalog.statements():
            info.set((statement.fingerprint, statement.summary, statement.text))
        return self.aggregator.collect()

    # -- lifecycle -----------------------------------------------------------------

    def _build_tracer(self) -> None:
        self.resource = build_resource(self.config)
        provider = TracerProvider(
            sampler=build_sampler(self.config),
            resource=self.resource,
            id_generator=PresetTraceIdGenerator(),
        )
        self.tracer_provider = provider
        self.tracer = provider.get_tracer("fleetscope.telemetry")
        self.root_sampler = build_root_sampler(self.config)
        self._span_processors: list[SpanProcessor] = []
        if self._span_exporter is not None:  # tests: an in-memory exporter, synchronous
            self.add_span_exporter(self._span_exporter, batch=False)

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Gets the SDK's spans and Fleetscope's deferred ones (which it must export with a
        MaterializingSpanExporter: see add_span_exporter)."""
        assert self.tracer_provider is not None
        self.tracer_provider.add_span_processor(processor)
        self._span_processors.append(processor)

    def add_span_exporter(
        self, exporter: SpanExporter, batch: bool = True, **batch_options: Any
    ) -> SpanProcessor:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        materializing = MaterializingSpanExporter(exporter, self.resource)
        processor: SpanProcessor = (
            BatchSpanProcessor(materializing, **batch_options)
            if batch
            else SimpleSpanProcessor(materializing)
        )
        self.add_span_processor(processor)
        return processor

    def emit(self, span: DeferredSpan) -> None:
        for processor in self._span_processors:
            # A DeferredSpan, not a ReadableSpan: the exporter materializes it.
            processor.on_end(span)  # type: ignore[arg-type]

    @property
    def started(self) -> bool:
        return self._started

    def ensure_started(self) -> None:
        """Start exporting in this process (idempotent; cheap after the first call)."""
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            if self.config["EXPORT"]:
                from .export import start_exporters

                start_exporters(self)
            self._started = True

    def after_fork_in_child(self) -> None:
        """A forked worker starts from nothing: own instance id, own counts, own threads."""
        self._lock = threading.Lock()
        self._started = False
        self.meter_provider = None
        self.metric_exporter = None
        self.aggregator.reset()
        self._build_tracer()

    def shutdown(self) -> None:
        with self._lock:
            if self.meter_provider is not None:
                self.meter_provider.shutdown()
            if self.tracer_provider is not None:
                self.tracer_provider.shutdown()
            self._started = False

    def force_flush(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
        if self.meter_provider is not None:
            self.meter_provider.force_flush()


_active: Runtime | None = None
_fork_hook_installed = False


def _after_fork() -> None:
    # A forked child is a worker (gunicorn --preload forks them from the master that
    # loaded the app): it starts exporting right away, under its own instance id, so even
    # a worker that serves nothing reports its process metrics.
    if _active is not None:
        _active.after_fork_in_child()
        if _active.config["EXPORT"]:
            _active.ensure_started()


def activate(runtime: Runtime) -> Runtime:
    """Make `runtime` the one the middleware, SQL and cache instruments record into."""
    global _active, _fork_hook_installed
    _active = runtime
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_after_fork)
        _fork_hook_installed = True
    return runtime


def get_runtime() -> Runtime:
    if _active is None:
        raise RuntimeError(
            "Fleetscope's telemetry runtime is not active: add 'telemetry' to INSTALLED_APPS."
        )
    return _active


def active_runtime() -> Runtime | None:
    return _active
