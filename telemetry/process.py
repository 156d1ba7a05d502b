"""Per-node load (process CPU, memory, threads, files, GC) from a maintained library.

opentelemetry-instrumentation-system-metrics reads them through psutil; Fleetscope only
chooses which ones (DESIGN.md's `process_*` series) and binds them to its meter provider.
"""

from __future__ import annotations

from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from opentelemetry.sdk.metrics import MeterProvider

from .registry import Instrument

PROCESS_METRICS: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
    "process.context_switches": ["involuntary", "voluntary"],
    "cpython.gc.collections": None,
}


def instrument_process_metrics(meter_provider: MeterProvider) -> None:
    instrumentor = SystemMetricsInstrumentor(config=dict(PROCESS_METRICS))
    if instrumentor.is_instrumented_by_opentelemetry:  # inherited across a fork
        instrumentor.uninstrument()
    instrumentor.instrument(meter_provider=meter_provider)


class ProcessInstrument(Instrument):
    """Process CPU, memory, threads, files and GC per worker, read at each export.

    `TELEMETRY["PROCESS_METRICS"] = False` is a shorthand for leaving this entry out."""

    name = "process"

    def install(self) -> None:
        self.runtime.process_metrics = bool(self.config["PROCESS_METRICS"])

    def uninstall(self) -> None:
        self.runtime.process_metrics = False
