"""The in-process aggregator produces the same data an SDK histogram/counter would export."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import AggregationTemporality, Histogram, Sum

from telemetry.aggregate import Aggregator, TraceRef


def test_histogram_buckets_follow_otel_upper_inclusive_bounds() -> None:
    aggregator = Aggregator()
    histogram = aggregator.histogram("h", "s", "", ("route",), (0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 3.0):
        histogram.record(("/a/",), value)
    (metric,) = aggregator.collect()
    assert isinstance(metric.data, Histogram)
    (point,) = metric.data.data_points
    assert list(point.bucket_counts) == [2, 2, 1]
    assert point.count == 5
    assert point.sum == 4.65
    assert (point.min, point.max) == (0.05, 3.0)
    assert point.attributes == {"route": "/a/"}
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE


def test_exemplar_keeps_the_latest_sampled_trace_per_bucket() -> None:
    aggregator = Aggregator()
    histogram = aggregator.histogram("h", "s", "", ("r",), (1.0,))
    histogram.record(("x",), 0.5, TraceRef(1, 11))
    histogram.record(("x",), 0.6, TraceRef(2, 22))
    histogram.record(("x",), 0.7)  # unsampled: keeps the previous exemplar
    (metric,) = aggregator.collect()
    (point,) = metric.data.data_points
    assert [(e.trace_id, e.span_id, e.value) for e in point.exemplars] == [(2, 22, 0.6)]


def test_counters_are_cumulative_and_up_down_counters_are_not_monotonic() -> None:
    aggregator = Aggregator()
    counter = aggregator.counter("c", "{x}", "", ("k",))
    active = aggregator.up_down_counter("a", "{x}", "", ("k",))
    counter.add(("a",))
    counter.add(("a",), 2)
    active.add(("GET",), 1)
    active.add(("GET",), -1)
    by_name: dict[str, Any] = {m.name: m for m in aggregator.collect()}
    assert isinstance(by_name["c"].data, Sum) and by_name["c"].data.is_monotonic
    assert by_name["c"].data.data_points[0].value == 3
    assert not by_name["a"].data.is_monotonic
    assert by_name["a"].data.data_points[0].value == 0


def test_reset_forgets_everything() -> None:
    aggregator = Aggregator()
    counter = aggregator.counter("c", "", "", ("k",))
    counter.add(("a",))
    aggregator.reset()
    assert aggregator.collect() == []
