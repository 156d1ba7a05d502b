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


def _busy_pair() -> tuple[Aggregator, Any, Any]:
    aggregator = Aggregator()
    busy = aggregator.busy_time("busy", "")
    active = aggregator.in_flight("active", "{request}", "", ("m",), busy)
    return aggregator, busy, active


def test_busy_time_counts_overlapping_requests_once() -> None:
    _, busy, active = _busy_pair()
    active.enter(("GET",), 10.0)
    active.enter(("GET",), 11.0)  # a second thread's request overlaps the first
    active.leave(("GET",), 12.0)
    active.leave(("GET",), 15.0)
    active.enter(("POST",), 20.0)
    active.leave(("POST",), 21.0)

    # Busy 10..15 and 20..21: six seconds, not the nine request-seconds.
    assert busy.seconds(now=30.0) == 6.0
    assert active.value(("GET",)) == 0 and active.value(("POST",)) == 0


def test_busy_time_includes_the_request_in_flight_at_export() -> None:
    _, busy, active = _busy_pair()
    active.enter(("GET",), 100.0)

    assert busy.seconds(now=104.0) == 4.0
    active.leave(("GET",), 106.0)
    assert busy.seconds(now=200.0) == 6.0


def test_busy_time_never_decreases_when_times_arrive_out_of_order() -> None:
    _, busy, active = _busy_pair()
    active.enter(("GET",), 10.0)
    exported = busy.seconds(now=20.0)  # an export while the request runs
    # The request's end was timed before the export but took the lock after it.
    active.leave(("GET",), 19.5)
    later = busy.seconds(now=25.0)
    # A thread that read the clock before the last export: its request counts from there,
    # so no interval already reported is counted twice.
    active.enter(("GET",), 18.0)
    active.leave(("GET",), 26.0)

    assert exported == 10.0
    assert later == exported
    assert busy.seconds(now=30.0) == 11.0


def test_busy_time_is_a_monotonic_seconds_counter_exported_once_a_request_ran() -> None:
    aggregator, _, active = _busy_pair()
    assert aggregator.collect() == []  # a process that served nothing exports nothing

    active.enter(("GET",), 1.0)
    active.leave(("GET",), 1.5)
    by_name: dict[str, Any] = {m.name: m for m in aggregator.collect()}
    metric = by_name["busy"]
    assert metric.unit == "s"
    assert isinstance(metric.data, Sum) and metric.data.is_monotonic
    (point,) = metric.data.data_points
    assert point.value == 0.5 and point.attributes == {}


def test_after_a_fork_busy_time_starts_from_zero() -> None:
    aggregator, busy, active = _busy_pair()
    active.enter(("GET",), 1.0)
    aggregator.after_fork()
    active.leave(("GET",), 2.0)  # the parent's request cannot end in the child

    assert busy.seconds(now=3.0) == 0.0
    assert busy.in_flight == 0
