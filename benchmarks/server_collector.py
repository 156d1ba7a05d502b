"""The real OpenTelemetry Collector the benchmark servers export to, and what it has received."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from fleetscope.collector.locate import locate_collector
from fleetscope.collector.process import ManagedProcess
from fleetscope.collector.run import CollectorPorts, CollectorSettings, start_collector


@dataclass(frozen=True)
class Received:
    spans: int
    metric_points: int
    refused: int

    def __sub__(self, other: Received) -> Received:
        return Received(
            self.spans - other.spans,
            self.metric_points - other.metric_points,
            self.refused - other.refused,
        )


@dataclass
class BenchCollector:
    settings: CollectorSettings
    process: ManagedProcess

    @property
    def otlp_endpoint(self) -> str:
        return self.settings.ports.otlp_http_endpoint

    def received(self) -> Received:
        """Totals from the collector's own metrics (its OTLP receiver's counters)."""
        ports = self.settings.ports
        text = httpx.get(f"http://{ports.self_metrics_target}/metrics", timeout=10).text
        return Received(
            int(_sum(text, "otelcol_receiver_accepted_spans")),
            int(_sum(text, "otelcol_receiver_accepted_metric_points")),
            int(
                _sum(text, "otelcol_receiver_refused_spans")
                + _sum(text, "otelcol_receiver_refused_metric_points")
            ),
        )

    def stop(self) -> None:
        self.process.stop()


def count_spans(traces_file: Path, service: str) -> int:
    """Spans of one service.name in the collector's JSON-lines trace file."""
    if not traces_file.exists():
        return 0
    count = 0
    for line in traces_file.read_text().splitlines():
        if not line.strip():
            continue
        for resource_spans in json.loads(line).get("resourceSpans", []):
            attributes = resource_spans.get("resource", {}).get("attributes", [])
            if {"key": "service.name", "value": {"stringValue": service}} in attributes:
                count += sum(len(s.get("spans", [])) for s in resource_spans.get("scopeSpans", []))
    return count


def _sum(exposition: str, name: str) -> float:
    """Sum of every sample of one counter (with or without the _total suffix)."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith(name) and line[len(name) :].startswith(("{", " ", "_total")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def start_bench_collector(workdir: Path, cpus: set[int] | None) -> BenchCollector:
    """Start the collector on free ports, pinned to `cpus` (it inherits this process's
    affinity for the moment of its start, and its threads inherit from it)."""
    settings = CollectorSettings(ports=CollectorPorts.free(), workdir=workdir)
    previous = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        process = start_collector(settings)
    finally:
        os.sched_setaffinity(0, previous)
    return BenchCollector(settings, process)


def collector_version() -> str:
    try:
        result = subprocess.run(
            [str(locate_collector()), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except Exception:
        return "unknown"
    return result.stdout.strip().rsplit(" ", 1)[-1] or "unknown"
