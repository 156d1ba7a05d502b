"""The test runner the driver gives Django's runtests.py (settings.TEST_RUNNER).

It records each test's outcome by test id (the parallel runner replays every worker's
events into the main process's result, so one result object sees them all), sends one
request through the middleware stack before the tests in both runs, and in the instrumented
run makes a sampled span current in every process that runs tests (so the traced SQL and
cache paths run, as inside a sampled request) and probes, after each batch of tests, in the
process that ran it, whether Fleetscope's instrumentation was really in place.
"""

from __future__ import annotations

import os
import time
import traceback
import unittest
from dataclasses import dataclass, field
from typing import Any

from django.test.runner import DiscoverRunner, ParallelTestSuite

from tests.transparency.config import FIRST_REQUEST_PATH, INSTRUMENTED, MODE_ENV

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"
XFAIL, UPASS = "expected-failure", "unexpected-success"
FAILED = (FAIL, ERROR, UPASS)
# Extra events a worker appends to each batch's events; the main process's result gets them.
PROBE_EVENT = "fleetscopeProbe"
BATCH_EVENT = "fleetscopeBatch"
MAX_DETAIL = 20_000


def instrumented() -> bool:
    return os.environ.get(MODE_ENV) == INSTRUMENTED


@dataclass
class Record:
    """What the main process saw; driver.py writes it out as JSON."""

    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)
    first_test_start: float | None = None
    last_test_end: float | None = None
    first_request_status: int | None = None
    probes: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)  # classes, seconds


RECORD = Record()


class RecordingResult(unittest.TextTestResult):
    def _record(self, test: unittest.TestCase, outcome: str, detail: str = "") -> None:
        test_id = test.id()
        entry = RECORD.outcomes.get(test_id)
        if entry is not None and entry["outcome"] in FAILED:
            # A test whose subtests failed stays failed; later subtest failures are appended.
            if outcome in FAILED and len(entry["detail"]) < MAX_DETAIL:
                entry["detail"] += "\n" + detail
            return
        RECORD.outcomes[test_id] = {"outcome": outcome, "detail": detail}

    def _failure(self, test: unittest.TestCase, err: Any) -> tuple[str, str]:
        failure_exception = getattr(test, "failureException", AssertionError)
        outcome = FAIL if issubclass(err[0], failure_exception) else ERROR
        return outcome, "".join(traceback.format_exception(*err))

    def startTest(self, test: unittest.TestCase) -> None:
        if RECORD.first_test_start is None:
            RECORD.first_test_start = time.time()
        super().startTest(test)

    def stopTest(self, test: unittest.TestCase) -> None:
        super().stopTest(test)
        RECORD.last_test_end = time.time()

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._record(test, PASS)

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, *self._failure(test, err))

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._record(test, *self._failure(test, err))

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            outcome, detail = self._failure(test, err)
            self._record(test, outcome, f"[subtest {subtest.id()}]\n{detail}")

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, SKIP, reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, XFAIL)

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, UPASS, "unexpected success")

    def fleetscopeProbe(self, test: unittest.TestCase, probe: dict[str, Any]) -> None:
        RECORD.probes.append(probe)

    def fleetscopeBatch(self, test: unittest.TestCase, batch: dict[str, Any]) -> None:
        RECORD.batches.append(batch)


# -- the instrumented run's evidence ------------------------------------------------------

_spans_ended = 0  # spans this process's runtime finished (SDK spans and deferred SQL spans)


def trace_this_process() -> None:
    """Make a sampled span current here and count the spans the runtime ends from now on."""
    from opentelemetry import context, trace
    from opentelemetry.sdk.trace import SpanProcessor

    from telemetry.runtime import active_runtime

    class SpanCounter(SpanProcessor):
        def on_end(self, span: Any) -> None:
            global _spans_ended
            _spans_ended += 1

    runtime = active_runtime()
    if runtime is None:
        return
    runtime.add_span_processor(SpanCounter())
    span = runtime.tracer.start_span("django test process")
    context.attach(trace.set_span_in_context(span))


def probe(where: str) -> dict[str, Any]:
    """What Fleetscope's instrumentation looks like in this process right now."""
    from django.conf import settings
    from django.core.cache import caches
    from django.db import connections
    from opentelemetry import trace

    from telemetry import cache as telemetry_cache
    from telemetry.db import QueryObserver, observer_of, seam_installed
    from telemetry.runtime import active_runtime

    runtime = active_runtime()
    databases = {}
    observing = seam_installed()
    for connection in connections.all(initialized_only=True):
        wrappers = list(connection.execute_wrappers)
        observer = observer_of(connection)
        databases[connection.alias] = {
            "connected": connection.connection is not None,
            "observers": int(observer is not None),
            "observer_of_active_runtime": (
                observing and observer is not None and observer.runtime is runtime
            ),
            # Fleetscope puts nothing in the list: whatever is there, a test left behind
            # (or Fleetscope broke its promise).
            "other_wrappers": [repr(w)[:120] for w in wrappers],
            "observer_in_wrappers": any(isinstance(w, QueryObserver) for w in wrappers),
        }
    # What the handler would hand out for each alias: built aside, never stored in the
    # handler, so probing changes nothing the next tests see. Then the backends in use.
    backends = {alias: _backend_state(caches.create_connection(alias)) for alias in settings.CACHES}
    in_use = [_backend_state(backend) for backend in caches.all(initialized_only=True)]
    statements = cache_operations = requests = 0
    operations_seen: set[str] = set()
    if runtime is not None:
        instruments = runtime.instruments
        statements = _histogram_count(instruments.query_duration)
        requests = _histogram_count(instruments.request_duration)
        cache_operations = int(sum(value for _, value in instruments.cache_operations.items()))
        operations_seen = {str(key[1]) for key in instruments.cache_duration.attribute_sets()}
    return {
        "where": where,
        "pid": os.getpid(),
        "runtime_active": runtime is not None,
        "runtime_id": id(runtime) if runtime is not None else None,
        "export_started": bool(runtime is not None and runtime.started),
        "sampler": runtime.config.sampler if runtime is not None else None,
        "endpoint": runtime.config.endpoint if runtime is not None else None,
        "current_span_recording": trace.get_current_span().is_recording(),
        "app_installed": "telemetry" in settings.INSTALLED_APPS,
        "middleware": list(settings.MIDDLEWARE[:1]),
        "cache_handler_instrumented": telemetry_cache.is_instrumented(),
        "databases": databases,
        "caches": backends,
        "caches_in_use": in_use,
        "statements_recorded": statements,
        "cache_operations_recorded": cache_operations,
        "cache_operations_wrapped": list(telemetry_cache.OPERATIONS),
        "cache_operations_seen": sorted(operations_seen),
        "requests_recorded": requests,
        "spans_ended": _spans_ended,
    }


def _backend_state(backend: Any) -> dict[str, Any]:
    cls = type(backend)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "instrumented": hasattr(cls, "_fleetscope_original_class"),
    }


def _histogram_count(histogram: Any) -> int:
    total = 0
    for key in histogram.attribute_sets():
        snapshot = histogram.snapshot(key)
        if snapshot is not None:
            total += snapshot[0]
    return total


def _init_worker_traced(*args: Any, **kwargs: Any) -> None:
    ParallelTestSuite.init_worker(*args, **kwargs)  # Django's: switch to this worker's DBs
    if instrumented():
        trace_this_process()


def _run_subsuite_probed(args: Any) -> tuple[int, list[Any]]:
    # Named before the run: unittest drops each test from its suite once it has run.
    classes = sorted({f"{type(t).__module__}.{type(t).__qualname__}" for t in args[2]})
    started = time.perf_counter()
    subsuite_index, events = ParallelTestSuite.run_subsuite(args)
    seconds = round(time.perf_counter() - started, 3)
    events.append((BATCH_EVENT, 0, {"classes": classes, "seconds": seconds}))
    if instrumented():
        where = "after " + ", ".join(classes[:3]) + (" ..." if len(classes) > 3 else "")
        events.append((PROBE_EVENT, 0, probe(where)))
    return subsuite_index, events


class ProbingParallelTestSuite(ParallelTestSuite):
    init_worker = _init_worker_traced
    run_subsuite = _run_subsuite_probed


class RecordingRunner(DiscoverRunner):
    parallel_test_suite = ProbingParallelTestSuite

    def get_resultclass(self) -> type[unittest.TextTestResult]:
        return RecordingResult

    def setup_test_environment(self, **kwargs: Any) -> None:
        super().setup_test_environment(**kwargs)
        from django.test import Client

        RECORD.first_request_status = Client().get(FIRST_REQUEST_PATH).status_code
        if instrumented():
            trace_this_process()

    def run_suite(self, suite: unittest.TestSuite, **kwargs: Any) -> unittest.TextTestResult:
        result = super().run_suite(suite, **kwargs)
        if instrumented():
            RECORD.probes.append(probe("main process, after the tests"))
        return result
