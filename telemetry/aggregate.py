"""In-process metric aggregation for the request hot path, exported as standard OTLP data.

Recording through the SDK costs several microseconds per call (attribute dicts are
hashed into frozensets, views are matched, exemplar reservoirs consulted). Fleetscope
records on every SQL query, so its instruments keep plain cumulative state keyed by a
tuple of attribute values precomputed by the caller, under one cheap lock, and turn it
into the SDK's own data classes only when the exporter asks (every 10 s by default).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry.sdk.metrics import Exemplar as OtelExemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)

Key = tuple[str | int, ...]

# Semantic-convention bucket boundaries for HTTP and DB client durations (seconds).
DURATION_BOUNDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
# Queries are mostly sub-millisecond: finer low buckets so p95 means something.
QUERY_DURATION_BOUNDS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
CACHE_DURATION_BOUNDS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)
COUNT_BOUNDS: tuple[float, ...] = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# Queue time: sub-millisecond on an idle fleet, seconds when a node is saturated. Fewer
# buckets than latency: the series are per route.
QUEUE_TIME_BOUNDS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


@dataclass(frozen=True, slots=True)
class TraceRef:
    """The sampled span a measurement happened in, kept as a histogram exemplar."""

    trace_id: int
    span_id: int


class _HistogramPoint:
    __slots__ = ("buckets", "count", "exemplars", "max", "min", "sum")

    def __init__(self, n_buckets: int) -> None:
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.buckets = [0] * n_buckets
        # bucket index -> (value, time ns, trace) of the latest sampled measurement
        self.exemplars: dict[int, tuple[float, int, TraceRef]] = {}


class Instrument:
    """Common shape: a name, a unit, attribute names, and points keyed by attribute values."""

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        attributes: Sequence[str],
        lock: threading.Lock,
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.attribute_names = tuple(attributes)
        self._lock = lock

    def attributes(self, key: Key) -> dict[str, str | int]:
        return dict(zip(self.attribute_names, key, strict=True))

    def reset(self) -> None:
        raise NotImplementedError

    def to_metric(self, start_ns: int, now_ns: int) -> Metric | None:
        raise NotImplementedError


class HistogramInstrument(Instrument):
    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        attributes: Sequence[str],
        lock: threading.Lock,
        bounds: Sequence[float],
    ) -> None:
        super().__init__(name, unit, description, attributes, lock)
        self.bounds = tuple(bounds)
        self._points: dict[Key, _HistogramPoint] = {}

    def record(self, key: Key, value: float, trace: TraceRef | None = None) -> None:
        index = bisect_left(self.bounds, value)  # OTel buckets are (lower, upper]
        with self._lock:
            point = self._points.get(key)
            if point is None:
                point = self._points[key] = _HistogramPoint(len(self.bounds) + 1)
            point.count += 1
            point.sum += value
            point.buckets[index] += 1
            if value < point.min:
                point.min = value
            if value > point.max:
                point.max = value
            if trace is not None:
                point.exemplars[index] = (value, time.time_ns(), trace)

    def reset(self) -> None:
        with self._lock:
            self._points = {}

    def snapshot(self, key: Key) -> tuple[int, float, list[int]] | None:
        """(count, sum, bucket counts) for one attribute set; for tests and reports."""
        with self._lock:
            point = self._points.get(key)
            return None if point is None else (point.count, point.sum, list(point.buckets))

    def attribute_sets(self) -> list[Key]:
        with self._lock:
            return list(self._points)

    def to_metric(self, start_ns: int, now_ns: int) -> Metric | None:
        with self._lock:
            points = [
                HistogramDataPoint(
                    attributes=self.attributes(key),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now_ns,
                    count=p.count,
                    sum=p.sum,
                    bucket_counts=list(p.buckets),
                    explicit_bounds=list(self.bounds),
                    min=p.min,
                    max=p.max,
                    exemplars=[
                        OtelExemplar({}, value, at, trace.span_id, trace.trace_id)
                        for value, at, trace in p.exemplars.values()
                    ],
                )
                for key, p in self._points.items()
            ]
        if not points:
            return None
        data = Histogram(
            data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
        )
        return Metric(name=self.name, description=self.description, unit=self.unit, data=data)


class SumInstrument(Instrument):
    """A counter (monotonic) or an up-down counter."""

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        attributes: Sequence[str],
        lock: threading.Lock,
        monotonic: bool = True,
    ) -> None:
        super().__init__(name, unit, description, attributes, lock)
        self.monotonic = monotonic
        self._values: dict[Key, int | float] = {}

    def add(self, key: Key, amount: int | float = 1) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, key: Key) -> int | float:
        with self._lock:
            return self._values.get(key, 0)

    def items(self) -> list[tuple[Key, int | float]]:
        with self._lock:
            return list(self._values.items())

    def reset(self) -> None:
        with self._lock:
            self._values = {}

    def to_metric(self, start_ns: int, now_ns: int) -> Metric | None:
        with self._lock:
            points = [
                NumberDataPoint(self.attributes(key), start_ns, now_ns, value)
                for key, value in self._values.items()
            ]
        if not points:
            return None
        data = Sum(
            data_points=points,
            aggregation_temporality=AggregationTemporality.CUMULATIVE,
            is_monotonic=self.monotonic,
        )
        return Metric(name=self.name, description=self.description, unit=self.unit, data=data)


class BusyTimeInstrument(Instrument):
    """Seconds during which at least one unit of work was in flight in this process, as a
    monotonic counter (no attributes). Its rate is the share of time the process was busy.

    Time-weighted, not sampled: every change of the in-flight count is recorded with its
    `perf_counter` time, and an export counts an interval still in progress up to its own
    time. Times from several threads can reach the lock out of order by a few microseconds;
    each change uses at least the latest time already seen, so the counter never overlaps
    intervals and never goes down.
    """

    in_flight: int
    _since: float
    _busy: float
    _last: float
    _used: bool

    def __init__(self, name: str, description: str, lock: threading.Lock) -> None:
        super().__init__(name, "s", description, (), lock)
        self._clear()

    # The caller holds the lock (see InFlightInstrument, which shares it).
    def _enter(self, now: float) -> None:
        if now < self._last:
            now = self._last
        self._last = now
        if self.in_flight == 0:
            self._since = now
            self._used = True
        self.in_flight += 1

    def _leave(self, now: float) -> None:
        if self.in_flight <= 0:  # a request that began before a reset (fork, tests)
            return
        if now < self._last:
            now = self._last
        self._last = now
        self.in_flight -= 1
        if self.in_flight == 0:
            self._busy += now - self._since

    def enter(self, now: float) -> None:
        with self._lock:
            self._enter(now)

    def leave(self, now: float) -> None:
        with self._lock:
            self._leave(now)

    def _total(self, now: float) -> float:
        if now < self._last:
            now = self._last
        self._last = now
        if self.in_flight > 0:
            return self._busy + (now - self._since)
        return self._busy

    def seconds(self, now: float | None = None) -> float:
        """Busy seconds so far, an interval in progress counted up to `now`."""
        with self._lock:
            return self._total(time.perf_counter() if now is None else now)

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self.in_flight = 0
        self._since = 0.0
        self._busy = 0.0
        self._last = 0.0
        self._used = False  # a process that never served a request exports nothing

    def to_metric(self, start_ns: int, now_ns: int) -> Metric | None:
        with self._lock:
            if not self._used:
                return None
            value = self._total(time.perf_counter())
        data = Sum(
            data_points=[NumberDataPoint({}, start_ns, now_ns, value)],
            aggregation_temporality=AggregationTemporality.CUMULATIVE,
            is_monotonic=True,
        )
        return Metric(name=self.name, description=self.description, unit=self.unit, data=data)


class InFlightInstrument(SumInstrument):
    """An up-down counter of work in flight (per attribute set) that also drives a
    BusyTimeInstrument, both under the one lock acquisition of `enter` / `leave`."""

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        attributes: Sequence[str],
        lock: threading.Lock,
        busy: BusyTimeInstrument,
    ) -> None:
        super().__init__(name, unit, description, attributes, lock, monotonic=False)
        self.busy = busy

    # BusyTimeInstrument._enter/_leave inlined: these run twice per request.
    def enter(self, key: Key, now: float) -> None:
        with self._lock:
            values = self._values
            values[key] = values.get(key, 0) + 1
            busy = self.busy
            if now < busy._last:
                now = busy._last
            busy._last = now
            if busy.in_flight == 0:
                busy._since = now
                busy._used = True
            busy.in_flight += 1

    def leave(self, key: Key, now: float) -> None:
        with self._lock:
            values = self._values
            values[key] = values.get(key, 0) - 1
            busy = self.busy
            if busy.in_flight <= 0:
                return
            if now < busy._last:
                now = busy._last
            busy._last = now
            busy.in_flight -= 1
            if busy.in_flight == 0:
                busy._busy += now - busy._since


class InfoInstrument(Instrument):
    """A gauge of value 1 per attribute set: an 'info' series that labels others by join."""

    def __init__(
        self, name: str, description: str, attributes: Sequence[str], lock: threading.Lock
    ) -> None:
        super().__init__(name, "", description, attributes, lock)
        self._keys: set[Key] = set()

    def set(self, key: Key) -> None:
        with self._lock:
            self._keys.add(key)

    def reset(self) -> None:
        with self._lock:
            self._keys = set()

    def to_metric(self, start_ns: int, now_ns: int) -> Metric | None:
        with self._lock:
            points = [
                NumberDataPoint(self.attributes(key), start_ns, now_ns, 1) for key in self._keys
            ]
        if not points:
            return None
        return Metric(
            name=self.name,
            description=self.description,
            unit=self.unit,
            data=Gauge(data_points=points),
        )


class ObservedGauge(Instrument):
    """A gauge read when the exporter asks (queue depths): `observe` returns (key, value) pairs.

    The callback runs on the export thread, never on a request; a callback that raises
    exports nothing for this interval."""

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        attributes: Sequence[str],
        lock: threading.Lock,
    ) -> None:
        super().__init__(name, unit, description, attributes, lock)
        self.observe: Callable[[], list[tuple[Key, int | float]]] | None = None

    def reset(self) -> None:
        return None

    def to_metric(self, start_ns: int, now_ns: int) -> Metric | None:
        observe = self.observe
        if observe is None:
            return None
        try:
            observed = observe()
        except Exception:
            return None
        points = [NumberDataPoint(self.attributes(key), start_ns, now_ns, v) for key, v in observed]
        if not points:
            return None
        return Metric(
            name=self.name,
            description=self.description,
            unit=self.unit,
            data=Gauge(data_points=points),
        )


class Aggregator:
    """Owns every in-process instrument of one process; produces SDK metrics on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instruments: list[Instrument] = []
        self.start_ns = time.time_ns()

    def histogram(
        self,
        name: str,
        unit: str,
        description: str,
        attributes: Sequence[str],
        bounds: Sequence[float],
    ) -> HistogramInstrument:
        instrument = HistogramInstrument(name, unit, description, attributes, self._lock, bounds)
        self._instruments.append(instrument)
        return instrument

    def counter(
        self, name: str, unit: str, description: str, attributes: Sequence[str]
    ) -> SumInstrument:
        instrument = SumInstrument(name, unit, description, attributes, self._lock)
        self._instruments.append(instrument)
        return instrument

    def up_down_counter(
        self, name: str, unit: str, description: str, attributes: Sequence[str]
    ) -> SumInstrument:
        instrument = SumInstrument(name, unit, description, attributes, self._lock, monotonic=False)
        self._instruments.append(instrument)
        return instrument

    def busy_time(self, name: str, description: str) -> BusyTimeInstrument:
        instrument = BusyTimeInstrument(name, description, self._lock)
        self._instruments.append(instrument)
        return instrument

    def in_flight(
        self,
        name: str,
        unit: str,
        description: str,
        attributes: Sequence[str],
        busy: BusyTimeInstrument,
    ) -> InFlightInstrument:
        instrument = InFlightInstrument(name, unit, description, attributes, self._lock, busy)
        self._instruments.append(instrument)
        return instrument

    def info(self, name: str, description: str, attributes: Sequence[str]) -> InfoInstrument:
        instrument = InfoInstrument(name, description, attributes, self._lock)
        self._instruments.append(instrument)
        return instrument

    def observed_gauge(
        self, name: str, unit: str, description: str, attributes: Sequence[str]
    ) -> ObservedGauge:
        instrument = ObservedGauge(name, unit, description, attributes, self._lock)
        self._instruments.append(instrument)
        return instrument

    def reset(self) -> None:
        """Forget every count (tests; a new start time)."""
        for instrument in self._instruments:
            instrument.reset()
        self.start_ns = time.time_ns()

    def after_fork(self) -> None:
        """In a forked child: a new lock (another thread of the parent may have held the old
        one at the fork, and would never release it here), and none of the parent's counts."""
        self._lock = threading.Lock()
        for instrument in self._instruments:
            instrument._lock = self._lock
        self.reset()

    def collect(self) -> list[Metric]:
        """Every instrument's metric; instruments sharing a name (one metric recorded with
        two attribute sets, such as N+1 counts by route and by task) export as one."""
        now = time.time_ns()
        merged: dict[str, Metric] = {}
        for instrument in self._instruments:
            metric = instrument.to_metric(self.start_ns, now)
            if metric is None:
                continue
            first = merged.get(metric.name)
            if first is None:
                merged[metric.name] = metric
            else:  # same kind by construction; every to_metric() builds its points as a list
                points = cast(list[Any], first.data.data_points)
                points.extend(metric.data.data_points)
        return list(merged.values())
