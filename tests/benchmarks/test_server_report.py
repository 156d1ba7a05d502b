"""Ratios pair each repetition with bare Django's; reruns replace the figures in the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import server_report
from benchmarks.server_report import Lifetime, Results, Run


def _run(config: str, view: str, rep: int, rps: float, p99: float = 5.0) -> Run:
    return Run(config, view, rep, int(rps * 2), 2.0, rps, 1.0, 2.0, p99, 0)


def _results() -> Results:
    runs = [
        _run("bare", "hello", 1, 1000),
        _run("bare", "hello", 2, 500),  # a slow repetition hits both configurations
        _run("bare", "hello", 3, 1000),
        _run("fleetscope-10", "hello", 1, 900, p99=6.0),
        _run("fleetscope-10", "hello", 2, 480, p99=7.0),
        _run("fleetscope-10", "hello", 3, 950, p99=9.0),
    ]
    lifetimes = [Lifetime("fleetscope-10", 1, 1000, 100, 50)]
    return Results(runs, lifetimes, {"date": "today", "versions": {"Django": "5.2"}})


def test_ratio_is_paired_by_repetition_and_summarized_as_median_min_max() -> None:
    by = {(s.config, s.view): s for s in server_report.summarize(_results())}
    ratio = by[("fleetscope-10", "hello")].ratio
    assert ratio is not None
    assert (ratio.low, ratio.median, ratio.high) == pytest.approx((0.9, 0.95, 0.96))
    assert by[("fleetscope-10", "hello")].p99_ms.median == 7.0


def test_targets_report_what_was_measured() -> None:
    checks = {
        name: met for name, _, met in server_report.targets(server_report.summarize(_results()))
    }
    assert checks["fleetscope-10 req/s ≥ 0.90 x bare on hello"] is True
    assert checks["fleetscope-10 p99 ≤ bare p99 + 25% on hello"] is False  # 7.0 > 6.25


def test_markdown_has_every_figure_and_the_export_proof() -> None:
    text = server_report.markdown(_results(), "plot.png")
    row = "| Fleetscope, traces 10% | 900 (480-950) | 0.950 (0.900-0.960) | 1.00 (1.00-1.00) |"
    assert row in text
    assert "![" in text and "plot.png" in text
    assert "| Fleetscope, traces 10% | 0.10 | 50 |" in text


def test_write_docs_replaces_only_the_marked_block(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nintro\n")
    server_report.write_docs(doc, "first figures")
    server_report.write_docs(doc, "second figures")
    text = doc.read_text()
    assert text.startswith("# Performance\n\nintro\n")
    assert "second figures" in text and "first figures" not in text
    assert text.count(server_report.END) == 1


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    server_report.plot(_results(), path)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_results_survive_a_json_round_trip() -> None:
    results = _results()
    again = Results.from_json(results.to_json())
    assert again.runs == results.runs and again.lifetimes == results.lifetimes
