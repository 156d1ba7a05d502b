"""Smoke run of the real-server benchmark: bare Django and Fleetscope at 10% under gunicorn and
wrk, exporting to the real collector. It checks that the harness measured, never how fast."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from benchmarks.server_collector import count_spans
from benchmarks.server_matrix import select
from benchmarks.server_overhead import Plan, run_comparison


@pytest.mark.integration
def test_one_short_repetition_measures_and_reaches_the_collector(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    plan = Plan(
        select(["fleetscope-10"]),
        ["hello", "mixed"],
        repetitions=1,
        duration_s=2,
        warmup_s=1,
        connections=4,
    )
    results = run_comparison(plan, tmp_path, note=None)

    assert {(r.config, r.view) for r in results.runs} == {
        (config, view) for config in ("bare", "fleetscope-10") for view in ("hello", "mixed")
    }
    for run in results.runs:
        assert run.requests > 0 and run.errors == 0
        assert 0 < run.p50_ms <= run.p99_ms  # latencies were parsed
    lifetimes = {lt.config: lt for lt in results.lifetimes}
    # Fleetscope exported spans and metrics to the collector while it served; bare did not.
    assert lifetimes["fleetscope-10"].spans > 0
    assert lifetimes["fleetscope-10"].metric_points > 0
    assert (lifetimes["bare"].spans, lifetimes["bare"].metric_points) == (0, 0)
    traces = tmp_path / "collector" / "traces.jsonl"
    assert count_spans(traces, "bench-fleetscope-10") > 0
    # Every server, wrk and the collector were stopped.
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert left == []
