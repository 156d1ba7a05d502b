"""A steady load from a thread: GET requests at a fixed rate, every outcome recorded."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Outcome:
    at: float  # time.monotonic() when the request was sent
    latency: float  # seconds until the whole response was read
    status: int  # the HTTP status; 0 when the request failed
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class FixedRateLoad:
    """GET `url` at `rate` requests per second until stopped.

    Requests follow a fixed schedule (start + i / rate): a slow answer delays the next
    request but never changes how many are sent over a period, so two loads started
    together send the same number of requests. Gunicorn's sync workers close every
    connection, so each request opens one: no client-side pooling hides a slow server.
    """

    def __init__(self, url: str, rate: float, timeout: float = 15.0) -> None:
        self.url = url
        self.rate = rate
        self.timeout = timeout
        self._outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load {url}", daemon=True)

    def start(self) -> FixedRateLoad:
        self._thread.start()
        return self

    def _run(self) -> None:
        start = time.monotonic()
        i = 0
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                delay = start + i / self.rate - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                i += 1
                sent = time.monotonic()
                try:
                    response = client.get(self.url)
                    outcome = Outcome(sent, time.monotonic() - sent, response.status_code)
                except httpx.HTTPError as exc:
                    outcome = Outcome(sent, time.monotonic() - sent, 0, type(exc).__name__)
                self._outcomes.append(outcome)

    def stop(self) -> list[Outcome]:
        self._stop.set()
        self._thread.join(self.timeout + 5)
        assert not self._thread.is_alive(), f"the load on {self.url} did not stop"
        return list(self._outcomes)

    @property
    def outcomes(self) -> list[Outcome]:
        return list(self._outcomes)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty sample."""
    assert values, "no samples"
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latencies(outcomes: Sequence[Outcome], start: float, end: float) -> list[float]:
    """Latencies of the requests sent in [start, end)."""
    return [o.latency for o in outcomes if start <= o.at < end]


def steady(outcomes: Sequence[Outcome], warmup: float = 3.0) -> float:
    """When the load's steady state begins: `warmup` seconds after its first request (the
    first requests of a fresh worker import code and start its export thread)."""
    return min(o.at for o in outcomes) + warmup


def failures(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.ok]
