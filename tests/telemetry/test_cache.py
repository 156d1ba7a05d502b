"""Cache instrumentation through the cache handler: exact hits and misses, transparency,
per-thread backends, uninstrumenting, spans only when recording, and no key ever exported.

Every backend class is covered by test_cache_backends.py; these tests use the local-memory
backend and fresh aliases (unique LOCATIONs) so that no test sees another's entries.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.test import Client, override_settings
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from telemetry import runtime as runtime_module
from telemetry.cache import (
    OPERATIONS,
    instrument_backend,
    instrument_caches,
    is_instrumented,
    uninstrument_backend,
    uninstrument_caches,
)
from telemetry.conf import get_config
from telemetry.runtime import Runtime
from telemetry.state import RequestState, current_request

CANARY_KEY = "canary-key-5d1e2b"
CANARY_VALUE = "canary-value-9c4f7a"


def locmem_settings() -> dict[str, str]:
    return {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": uuid.uuid4().hex,
    }


@pytest.fixture
def restore_instrumentation() -> Iterator[None]:
    """Tests change what is instrumented; afterwards, the app's own state comes back."""
    was_instrumented = is_instrumented()
    yield
    uninstrument_caches()
    if was_instrumented:
        instrument_caches(get_config()["CACHE_ALIASES"])


@pytest.fixture
def fresh_caches(restore_instrumentation: None) -> Iterator[None]:
    """Two empty local-memory aliases, `default` and `sessions`, every alias instrumented."""
    with override_settings(CACHES={"default": locmem_settings(), "sessions": locmem_settings()}):
        instrument_caches(None)
        yield


def ops(rt: Runtime, alias: str = "default") -> dict[tuple[str, str], int | float]:
    """{(operation, result): count} of one alias."""
    return {
        (str(key[1]), str(key[2])): value
        for key, value in rt.instruments.cache_operations.items()
        if key[0] == alias and value
    }


def calls(rt: Runtime, operation: str, alias: str = "default") -> int:
    snapshot = rt.instruments.cache_duration.snapshot((alias, operation))
    return 0 if snapshot is None else snapshot[0]


# -- hit and miss --------------------------------------------------------------------


def test_a_stored_none_is_a_hit_and_comes_back_as_none(rt: Runtime, fresh_caches: None) -> None:
    cache = caches["default"]
    cache.set("nothing", None)
    assert cache.get("nothing") is None
    assert cache.get("nothing", "fallback") is None
    assert asyncio.run(cache.aget("nothing", "fallback")) is None
    assert ops(rt) == {("set", "none"): 1, ("get", "hit"): 3}


def test_a_miss_returns_the_callers_default_and_never_the_internal_marker(
    rt: Runtime, fresh_caches: None
) -> None:
    cache = caches["default"]
    assert cache.get("absent") is None
    assert cache.get("absent", "fallback") == "fallback"
    marker = object()
    assert cache.get("absent", default=marker) is marker
    assert asyncio.run(cache.aget("absent", 7)) == 7
    assert cache.get_many(["absent"]) == {}
    assert cache.get_or_set("absent-too", None) is None
    assert ops(rt) == {("get", "miss"): 4, ("get_many", "miss"): 1, ("get_or_set", "miss"): 1}


def test_get_many_counts_every_requested_key(rt: Runtime, fresh_caches: None) -> None:
    cache = caches["default"]
    cache.set_many({"a": 1, "b": None})
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": None}
    assert cache.get_many(iter(["a", "a", "c"])) == {"a": 1}
    assert asyncio.run(cache.aget_many(("b", "z"))) == {"b": None}
    assert ops(rt) == {("set_many", "none"): 1, ("get_many", "hit"): 5, ("get_many", "miss"): 4}
    assert calls(rt, "get_many") == 3
    assert calls(rt, "get") == 0  # the backend's own get() calls are not the user's


def test_get_or_set_is_a_miss_exactly_when_the_default_is_stored(
    rt: Runtime, fresh_caches: None
) -> None:
    cache = caches["default"]
    computed: list[str] = []

    def expensive() -> str:
        computed.append("once")
        return "value"

    assert cache.get_or_set("k", expensive) == "value"
    assert cache.get_or_set("k", expensive) == "value"
    assert asyncio.run(cache.aget_or_set("k", expensive)) == "value"
    assert computed == ["once"]
    assert cache.get_or_set("plain", "stored") == "stored"
    assert cache.get("plain") == "stored"
    assert ops(rt) == {("get_or_set", "miss"): 2, ("get_or_set", "hit"): 2, ("get", "hit"): 1}


def test_cache_calls_made_by_a_get_or_set_default_are_the_users_and_count(
    rt: Runtime, fresh_caches: None
) -> None:
    cache = caches["default"]
    cache.set("source", 41)
    assert cache.get_or_set("derived", lambda: cache.get("source") + 1) == 42
    assert ops(rt) == {("set", "none"): 1, ("get_or_set", "miss"): 1, ("get", "hit"): 1}


def test_has_key_and_in_are_hits_when_the_key_exists(rt: Runtime, fresh_caches: None) -> None:
    cache = caches["default"]
    cache.set("here", 0)
    assert cache.has_key("here") and "here" in cache
    assert not cache.has_key("gone") and "gone" not in cache
    assert asyncio.run(cache.ahas_key("here"))
    assert ops(rt) == {("set", "none"): 1, ("has_key", "hit"): 3, ("has_key", "miss"): 2}


def test_incr_on_a_missing_key_raises_the_backends_error_and_counts_once(
    rt: Runtime, fresh_caches: None
) -> None:
    cache = caches["default"]
    with pytest.raises(ValueError, match="not found"):
        cache.incr("missing")
    with pytest.raises(ValueError, match="not found"):
        asyncio.run(cache.adecr("missing"))
    assert ops(rt) == {("incr", "none"): 1, ("decr", "none"): 1}
    assert calls(rt, "incr") == calls(rt, "decr") == 1


class Broken(LocMemCache):
    """A backend whose reads and writes fail with one particular exception object."""

    error = ConnectionError("cache server went away")

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        raise self.error

    def set(self, key: Any, value: Any, timeout: Any = None, version: Any = None) -> None:
        raise self.error


def test_exceptions_reach_the_caller_unchanged_and_the_call_is_still_counted(
    rt: Runtime, restore_instrumentation: None
) -> None:
    cache = Broken(uuid.uuid4().hex, {})
    instrument_backend(cache, "broken")
    for call in (lambda: cache.get("k"), lambda: cache.set("k", 1),
                 lambda: asyncio.run(cache.aget("k"))):  # fmt: skip
        with pytest.raises(ConnectionError) as raised:
            call()
        assert raised.value is Broken.error
    assert ops(rt, "broken") == {("get", "miss"): 2, ("set", "none"): 1}
    assert calls(rt, "get", "broken") == 2 and calls(rt, "set", "broken") == 1


def test_without_an_active_runtime_calls_pass_straight_through(
    rt: Runtime, fresh_caches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = caches["default"]
    monkeypatch.setattr(runtime_module, "_active", None)
    cache.set("k", None)
    assert cache.get("k", "fallback") is None
    assert cache.get("absent", "fallback") == "fallback"
    assert cache.get_or_set("other", 3) == 3
    assert rt.instruments.cache_operations.items() == []


# -- transparency and the handler ----------------------------------------------------


def test_instrumented_backends_still_look_like_their_class(fresh_caches: None) -> None:
    cache = caches["default"]
    assert isinstance(cache, LocMemCache)
    assert type(cache) is not LocMemCache and issubclass(type(cache), LocMemCache)
    assert type(cache).__name__ == "LocMemCache"
    assert repr(cache).startswith("<django.core.cache.backends.locmem.LocMemCache object")
    for operation in OPERATIONS:
        for name in (operation, "a" + operation):
            method = getattr(cache, name)
            original = getattr(LocMemCache, name)
            assert inspect.signature(method) == inspect.signature(original).replace(
                parameters=list(inspect.signature(original).parameters.values())[1:]
            )
            assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(original)


def test_backends_created_in_other_threads_are_instrumented(
    rt: Runtime, fresh_caches: None
) -> None:
    seen: list[Any] = []

    def worker() -> None:
        backend = caches["default"]  # a new backend: the handler's connections are per thread
        backend.set("from-thread", 1)
        seen.append(backend)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen[0] is not caches["default"]
    assert caches["default"].get("from-thread") == 1  # same LOCATION, so same storage
    assert ops(rt) == {("set", "none"): 1, ("get", "hit"): 1}


def test_backends_this_thread_already_holds_are_instrumented(
    rt: Runtime, restore_instrumentation: None
) -> None:
    with override_settings(CACHES={"default": locmem_settings(), "sessions": locmem_settings()}):
        uninstrument_caches()
        early = caches["default"]
        assert type(early) is LocMemCache
        instrument_caches(None)
        assert caches["default"] is early and type(early) is not LocMemCache
        early.get("k")
        assert ops(rt) == {("get", "miss"): 1}


def test_only_the_configured_aliases_record(rt: Runtime, restore_instrumentation: None) -> None:
    with override_settings(CACHES={"default": locmem_settings(), "sessions": locmem_settings()}):
        instrument_caches(None)
        sessions = caches["sessions"]
        instrument_caches(["default"])
        assert type(sessions) is LocMemCache  # held by this thread: given back its class
        caches["default"].get("k")
        sessions.get("k")
        assert type(caches["default"]) is not LocMemCache
        assert ops(rt) == {("get", "miss"): 1}
        assert ops(rt, "sessions") == {}


def test_uninstrumenting_gives_back_the_handler_and_the_original_classes(
    rt: Runtime, fresh_caches: None
) -> None:
    cache = caches["default"]
    cache.set("k", 1)
    uninstrument_caches()
    assert not is_instrumented()
    assert "create_connection" not in vars(caches)
    assert type(cache) is LocMemCache
    assert cache.get("k") == 1 and cache.get("absent", 2) == 2
    assert type(caches["sessions"]) is LocMemCache  # created after: not instrumented
    assert ops(rt) == {("set", "none"): 1}


def test_one_backend_can_be_instrumented_and_given_back(
    rt: Runtime, restore_instrumentation: None
) -> None:
    cache = LocMemCache(uuid.uuid4().hex, {})
    instrument_backend(cache, "mine")
    cache.set("k", "v")
    uninstrument_backend(cache)
    assert type(cache) is LocMemCache and cache.get("k") == "v"
    assert ops(rt, "mine") == {("set", "none"): 1}


def test_sync_calls_run_from_async_code_record_once(rt: Runtime, fresh_caches: None) -> None:
    cache = caches["default"]

    async def main() -> Any:
        await cache.aset("k", 1)
        return await sync_to_async(cache.get)("k")

    assert asyncio.run(main()) == 1
    assert ops(rt) == {("set", "none"): 1, ("get", "hit"): 1}


# -- spans ---------------------------------------------------------------------------


def test_a_call_in_a_recording_span_makes_one_client_child_span(
    make_runtime: Any, spans: InMemorySpanExporter, fresh_caches: None
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0)
    cache = caches["default"]
    with rt.tracer.start_as_current_span("parent") as parent:
        cache.set("k", 1)
        cache.get("k")
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert sorted(finished) == ["cache get", "cache set", "parent"]
    get_span = finished["cache get"]
    assert get_span.kind == SpanKind.CLIENT
    assert get_span.parent is not None
    assert get_span.parent.span_id == parent.get_span_context().span_id
    assert dict(get_span.attributes or {}) == {
        "django.cache.alias": "default",
        "django.cache.operation": "get",
        "django.cache.result": "hit",
    }
    assert not get_span.events
    # The duration's exemplar points at the cache span.
    point = _duration_point(rt, "get")
    assert [(e.trace_id, e.span_id) for e in point.exemplars] == [
        (get_span.context.trace_id, get_span.context.span_id)
    ]


def test_no_span_when_the_current_span_is_not_recording(
    make_runtime: Any, spans: InMemorySpanExporter, fresh_caches: None
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0)
    with rt.tracer.start_as_current_span("parent") as parent:
        assert not parent.is_recording()
        caches["default"].get("k")
    caches["default"].get("k")  # no current span at all
    assert spans.get_finished_spans() == ()
    assert ops(rt) == {("get", "miss"): 2}
    assert _duration_point(rt, "get").exemplars == []


def test_inside_a_request_the_requests_sampling_decides(
    make_runtime: Any, spans: InMemorySpanExporter, fresh_caches: None
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0)
    with rt.tracer.start_as_current_span("request") as server_span:
        token = current_request.set(RequestState(span=None, trace=None))
        try:
            caches["default"].get("unsampled")
        finally:
            current_request.reset(token)
        token = current_request.set(RequestState(span=server_span, trace=None))
        try:
            caches["default"].get("sampled")
        finally:
            current_request.reset(token)
    assert [span.name for span in spans.get_finished_spans()] == ["cache get", "request"]


def test_a_failed_call_marks_its_span_as_an_error_without_the_message(
    make_runtime: Any, spans: InMemorySpanExporter, fresh_caches: None
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0)
    with rt.tracer.start_as_current_span("parent"), pytest.raises(ValueError):
        caches["default"].incr(CANARY_KEY)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "cache incr"]
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ValueError"
    assert (span.attributes or {})["django.cache.result"] == "none"
    assert not span.events and not span.status.description


def test_no_key_or_value_ever_reaches_a_span_or_a_metric(
    make_runtime: Any, spans: InMemorySpanExporter, fresh_caches: None
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0)
    cache = caches["default"]
    key, value = CANARY_KEY, CANARY_VALUE

    async def async_calls() -> None:
        await cache.aset(key, value)
        await cache.aget(key)
        await cache.aget_many([key, key + "-absent"])
        await cache.aget_or_set(key + "-2", value)
        await cache.aadd(key + "-3", value)
        await cache.ahas_key(key)
        await cache.atouch(key)
        await cache.aset_many({key + "-n": 1})
        await cache.aincr(key + "-n")
        await cache.adecr(key + "-n")
        await cache.adelete_many([key + "-n"])
        await cache.adelete(key)

    with rt.tracer.start_as_current_span("parent"):
        cache.set(key, value)
        cache.get(key)
        cache.get_many([key, key + "-absent"])
        cache.get_or_set(key + "-2", lambda: value)
        cache.add(key + "-3", value)
        cache.has_key(key)
        cache.touch(key)
        cache.set_many({key + "-n": 1})
        cache.incr(key + "-n")
        cache.decr(key + "-n")
        cache.delete_many([key + "-n"])
        cache.delete(key)
        with pytest.raises(ValueError):
            cache.incr(key)
        asyncio.run(async_calls())

    exported = spans.get_finished_spans()
    assert len(exported) == 1 + 2 * len(OPERATIONS) + 1
    texts: list[str] = []
    for span in exported:
        texts += [span.name, str(span.status.description)]
        texts += [f"{k}={v!r}" for k, v in (span.attributes or {}).items()]
        texts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
        texts += [str(dict(link.attributes or {})) for link in span.links]
    metrics = rt.aggregator.collect()
    assert {m.name for m in metrics} >= {
        "django.cache.operations",
        "django.cache.operation.duration",
    }
    for metric in metrics:
        for point in metric.data.data_points:
            texts += [f"{k}={v!r}" for k, v in point.attributes.items()]
            if isinstance(point, HistogramDataPoint):
                texts += [str(dict(e.filtered_attributes or {})) for e in point.exemplars]
    assert texts
    leaked = [text for text in texts if "canary" in text]
    assert leaked == []


def _duration_point(rt: Runtime, operation: str, alias: str = "default") -> HistogramDataPoint:
    for metric in rt.aggregator.collect():
        if metric.name == "django.cache.operation.duration":
            for point in metric.data.data_points:
                if point.attributes == {
                    "django.cache.alias": alias,
                    "django.cache.operation": operation,
                }:
                    assert isinstance(point, HistogramDataPoint)
                    return point
    raise AssertionError(f"no duration recorded for {alias} {operation}")


def test_spans_are_current_while_the_backend_works(
    make_runtime: Any, spans: InMemorySpanExporter, fresh_caches: None
) -> None:
    """Work the backend does (the database cache's SQL) nests under the cache span."""
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0)
    inner: list[str] = []

    class Observed(LocMemCache):
        def set(self, *args: Any, **kwargs: Any) -> None:
            inner.append(trace.get_current_span().name)  # type: ignore[attr-defined]
            super().set(*args, **kwargs)

    cache = Observed(uuid.uuid4().hex, {})
    instrument_backend(cache, "observed")
    with rt.tracer.start_as_current_span("parent"):
        cache.set("k", 1)
    assert inner == ["cache set"]


@pytest.mark.parametrize("sampled", [True, False])
def test_cache_calls_in_a_request_count_and_trace_with_the_request(
    make_runtime: Any, spans: InMemorySpanExporter, fresh_caches: None, sampled: bool
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0 if sampled else 0.0)
    client = Client()
    assert client.get("/cached/", {"key": CANARY_KEY}).json() == {"value": "v"}  # miss, set
    assert client.get("/cached/", {"key": CANARY_KEY}).json() == {"value": "v"}  # hit
    assert ops(rt) == {("get", "miss"): 1, ("set", "none"): 1, ("get", "hit"): 1}
    exported = spans.get_finished_spans()
    cache_spans = [span for span in exported if span.name.startswith("cache ")]
    if not sampled:
        assert exported == ()
        return
    assert [span.name for span in cache_spans] == ["cache get", "cache set", "cache get"]
    servers = {span.context.span_id for span in exported if span.kind == SpanKind.SERVER}
    assert len(servers) == 2
    assert all(span.parent is not None and span.parent.span_id in servers for span in cache_spans)
    assert not any("canary" in repr(dict(span.attributes or {})) for span in cache_spans)
