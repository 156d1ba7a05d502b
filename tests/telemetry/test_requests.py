"""Request metrics and spans: routes from the URLconf, status codes, propagation, sampling."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from telemetry.runtime import Runtime

pytestmark = pytest.mark.django_db

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _count(rt: Runtime, method: str, route: str, status: int) -> int:
    snapshot = rt.instruments.request_duration.snapshot((method, route, status))
    return 0 if snapshot is None else snapshot[0]


def test_requests_are_counted_by_route_pattern_not_raw_path(rt: Runtime) -> None:
    client = Client()
    for pk in (1, 2, 3):
        assert client.get(f"/items/{pk}/").status_code == 200
    assert _count(rt, "GET", "/items/<int:pk>/", 200) == 3
    assert not any(
        "/items/1/" in str(key) for key in rt.instruments.request_duration.attribute_sets()
    )


def test_unresolved_requests_are_unmatched(rt: Runtime) -> None:
    assert Client().get("/no/such/page/").status_code == 404
    assert _count(rt, "GET", "unmatched", 404) == 1


def test_server_errors_are_counted_as_500(rt: Runtime) -> None:
    client = Client(raise_request_exception=False)
    assert client.get("/boom/").status_code == 500
    assert _count(rt, "GET", "/boom/", 500) == 1


def test_unknown_methods_are_bounded(rt: Runtime) -> None:
    Client().generic("BREW", "/hello/")
    assert rt.instruments.request_duration.attribute_sets() == [("_OTHER", "/hello/", 200)]


def test_active_requests_return_to_zero(rt: Runtime) -> None:
    Client().get("/hello/")
    assert rt.instruments.active_requests.value(("GET",)) == 0


def test_unsampled_requests_create_no_span(rt: Runtime, spans: InMemorySpanExporter) -> None:
    Client().get("/hello/")
    assert spans.get_finished_spans() == ()


def test_sampled_request_span_has_route_and_status(
    make_runtime: Any, spans: InMemorySpanExporter
) -> None:
    make_runtime(TRACES_SAMPLE_RATE=1.0)
    Client().get("/items/7/")
    (span,) = spans.get_finished_spans()
    assert span.name == "GET /items/<int:pk>/"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/items/<int:pk>/"
    assert span.attributes["http.response.status_code"] == 200


def test_w3c_parent_is_honoured(make_runtime: Any, spans: InMemorySpanExporter) -> None:
    make_runtime(TRACES_SAMPLE_RATE=0.0)  # parent-based: a sampled parent wins
    Client().get("/hello/", HTTP_TRACEPARENT=TRACEPARENT)
    (span,) = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"


def test_sampled_requests_leave_an_exemplar_with_their_trace(
    make_runtime: Any, spans: InMemorySpanExporter
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0)
    Client().get("/hello/")
    (span,) = spans.get_finished_spans()
    metric = next(m for m in rt.collect_metrics() if m.name == "http.server.request.duration")
    exemplars = [e for point in metric.data.data_points for e in point.exemplars]
    assert [e.trace_id for e in exemplars] == [span.context.trace_id]


def test_async_requests_are_measured(rt: Runtime, settings: Any) -> None:
    import asyncio

    from django.test import AsyncClient

    async def go() -> int:
        response = await AsyncClient().get("/items/3/")
        return int(response.status_code)

    assert asyncio.run(go()) == 200
    assert _count(rt, "GET", "/items/<int:pk>/", 200) == 1


def test_spans_carry_the_route_not_the_raw_path(
    make_runtime: Any, spans: InMemorySpanExporter
) -> None:
    """Regression: sampled spans exported `url.path`, i.e. ids and password-reset tokens."""
    make_runtime(TRACES_SAMPLE_RATE=1.0)
    Client().get("/reset/MTIz/c3x9kq-8f1e2d3c4b5a69788796a5b4c3d2e1f0/")
    (server,) = [s for s in spans.get_finished_spans() if s.name.startswith("GET")]
    attributes = dict(server.attributes or {})
    assert attributes["http.route"] == "/reset/<uidb64>/<token>/"
    assert "url.path" not in attributes
    assert "c3x9kq" not in repr(attributes)


def test_the_raw_path_when_asked_is_scrubbed(
    make_runtime: Any, spans: InMemorySpanExporter
) -> None:
    make_runtime(TRACES_SAMPLE_RATE=1.0, RECORD_URL_PATH=True)
    Client().get("/reset/MTIz/c3x9kq-8f1e2d3c4b5a69788796a5b4c3d2e1f0/")
    Client().get("/items/42/")
    paths = sorted(
        str((s.attributes or {})["url.path"])
        for s in spans.get_finished_spans()
        if s.name.startswith("GET")
    )
    assert paths == ["/items/42/", "/reset/<uidb64>/<token>/"]


# -- queue time and busy time (docs/capacity.md) ------------------------------------------


def _queue_times(rt: Runtime) -> dict[Any, tuple[int, float, list[int]] | None]:
    histogram = rt.instruments.queue_time
    return {key: histogram.snapshot(key) for key in histogram.attribute_sets()}


def _rejected(rt: Runtime) -> dict[Any, int | float]:
    return dict(rt.instruments.queue_time_rejected.items())


@pytest.mark.parametrize(
    ("header", "stamp"),
    [
        ("HTTP_X_REQUEST_START", lambda t: f"t={int(t * 1e6)}"),  # HAProxy, Apache
        ("HTTP_X_REQUEST_START", lambda t: f"t={t:.3f}"),  # nginx $msec
        ("HTTP_X_REQUEST_START", lambda t: str(int(t * 1e3))),  # Heroku
        ("HTTP_X_QUEUE_START", lambda t: f"t={int(t * 1e6)}"),
    ],
    ids=["request-start-us", "request-start-s", "request-start-ms", "queue-start-us"],
)
def test_a_stamped_request_records_its_queue_time_by_route(
    rt: Runtime, header: str, stamp: Any
) -> None:
    import time

    Client().get("/items/3/", **{header: stamp(time.time() - 0.25)})

    ((key, snapshot),) = _queue_times(rt).items()
    assert key == ("/items/<int:pk>/",)
    assert snapshot is not None
    count, seconds, _ = snapshot
    assert count == 1
    assert 0.24 < seconds < 5.0
    assert _rejected(rt) == {}


def test_requests_without_the_header_record_no_queue_time_at_all(rt: Runtime) -> None:
    Client().get("/hello/")

    # Absent, not zero: no series exists for the route.
    assert _queue_times(rt) == {}
    assert _rejected(rt) == {}
    assert _count(rt, "GET", "/hello/", 200) == 1


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        (lambda t: f"t={int((t + 30) * 1e6)}", "future"),
        (lambda t: f"t={int((t - 3600) * 1e6)}", "too_old"),
        (lambda t: "t=soon", "malformed"),
        (lambda t: "12345", "malformed"),
    ],
    ids=["future", "too-old", "text", "not-a-time"],
)
def test_implausible_stamps_are_counted_and_never_recorded(
    rt: Runtime, stamp: Any, reason: str
) -> None:
    import time

    Client().get("/hello/", HTTP_X_REQUEST_START=stamp(time.time()))

    assert _queue_times(rt) == {}
    assert _rejected(rt) == {(reason,): 1}
    assert _count(rt, "GET", "/hello/", 200) == 1  # the request itself is measured as usual


def test_sampled_spans_carry_the_queue_time(make_runtime: Any, spans: InMemorySpanExporter) -> None:
    import time

    make_runtime(TRACES_SAMPLE_RATE=1.0)
    Client().get("/hello/", HTTP_X_REQUEST_START=f"t={int((time.time() - 0.1) * 1e6)}")
    Client().get("/hello/")

    stamped, plain = spans.get_finished_spans()
    assert stamped.attributes is not None and plain.attributes is not None
    waited = stamped.attributes["http.server.request.queue_time"]
    assert isinstance(waited, float) and 0.09 < waited < 5.0
    assert "http.server.request.queue_time" not in plain.attributes


def test_busy_time_is_the_time_requests_were_in_flight(rt: Runtime) -> None:
    for _ in range(3):
        Client().get("/sleep/?ms=20")

    busy = rt.instruments.busy_time.seconds()
    snapshot = rt.instruments.request_duration.snapshot(("GET", "/sleep/", 200))
    assert snapshot is not None
    # One request at a time: busy time is exactly the sum of the request durations.
    assert busy == pytest.approx(snapshot[1], abs=1e-6)
    assert busy >= 0.06
    assert rt.instruments.busy_time.in_flight == 0
