"""SQL instrumentation: per-fingerprint durations, N+1 and slow detection, spans, no literals."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from telemetry.runtime import Runtime
from tests.telemetry.testapp.models import Author, Book

pytestmark = pytest.mark.django_db(databases=["default", "other"])

CANARY = "canary-7f3a9c-secret"


@pytest.fixture
def books() -> None:
    for i in range(8):
        Book.objects.create(author=Author.objects.create(name=f"author {i}"), title=f"t{i}")


def _queries_by_fingerprint(rt: Runtime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in rt.instruments.query_duration.attribute_sets():
        snapshot = rt.instruments.query_duration.snapshot(key)
        assert snapshot is not None
        counts[str(key[3])] = counts.get(str(key[3]), 0) + snapshot[0]
    return counts


def _statement(rt: Runtime, fragment: str) -> Any:
    return next(s for s in rt.catalog.statements() if fragment in s.text)


def test_queries_are_counted_per_fingerprint_across_literals(rt: Runtime) -> None:
    for i in range(5):
        list(Author.objects.filter(name=f"x{i}"))
    statement = _statement(rt, 'WHERE "testapp_author"."name" = ?')
    assert _queries_by_fingerprint(rt)[statement.fingerprint] == 5
    key = ("sqlite", "SELECT", "default", statement.fingerprint)
    snapshot = rt.instruments.query_duration.snapshot(key)
    assert snapshot is not None and snapshot[0] == 5


def test_every_alias_is_instrumented(rt: Runtime) -> None:
    with connections["other"].cursor() as cursor:
        cursor.execute("SELECT 1")
    assert any(key[2] == "other" for key in rt.instruments.query_duration.attribute_sets())


def test_queries_outside_requests_and_in_threads_are_seen(rt: Runtime) -> None:
    def work() -> None:
        with connections["other"].cursor() as cursor:
            cursor.execute("SELECT 42")
        connections["other"].close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert any(key[2] == "other" for key in rt.instruments.query_duration.attribute_sets())


def test_n_plus_one_is_detected_once_per_request_and_fingerprint(rt: Runtime, books: None) -> None:
    client = Client()
    client.get("/books/n-plus-one/")
    client.get("/books/n-plus-one/")
    detections = rt.instruments.n_plus_one.items()
    assert len(detections) == 1
    (fingerprint, route), count = detections[0]
    assert route == "/books/n-plus-one/"
    assert count == 2
    assert "testapp_author" in next(
        s.text for s in rt.catalog.statements() if s.fingerprint == fingerprint
    )


def test_fixed_twin_is_not_an_n_plus_one(rt: Runtime, books: None) -> None:
    Client().get("/books/fixed/")
    assert rt.instruments.n_plus_one.items() == []


def test_repeats_below_threshold_are_not_n_plus_one(make_runtime: Any, books: None) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, N_PLUS_ONE_THRESHOLD=9)  # 8 books
    Client().get("/books/n-plus-one/")
    assert rt.instruments.n_plus_one.items() == []


def test_queries_per_request_by_route(rt: Runtime, books: None) -> None:
    Client().get("/books/n-plus-one/")
    snapshot = rt.instruments.queries_per_request.snapshot(("/books/n-plus-one/",))
    assert snapshot is not None
    count, total, _ = snapshot
    assert (count, total) == (1, 9)  # one list query + one per book


def test_slow_queries_are_counted_with_their_route(make_runtime: Any, books: None) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, SLOW_QUERY_MS=0)  # every query is slow
    Client().get("/books/fixed/")
    assert rt.instruments.slow_queries.items() == [
        ((_statement(rt, "INNER JOIN").fingerprint, "/books/fixed/"), 1)
    ]


def test_fast_queries_are_not_slow(rt: Runtime, books: None) -> None:
    Client().get("/books/fixed/")
    assert rt.instruments.slow_queries.items() == []


def test_db_spans_only_when_the_request_is_sampled(
    make_runtime: Any, spans: InMemorySpanExporter, books: None
) -> None:
    make_runtime(TRACES_SAMPLE_RATE=0.0)
    Client().get("/books/fixed/")
    assert spans.get_finished_spans() == ()

    make_runtime(TRACES_SAMPLE_RATE=1.0, SLOW_QUERY_MS=0)
    Client().get("/books/fixed/")
    finished = spans.get_finished_spans()
    db_spans = [s for s in finished if s.attributes and "django.db.fingerprint" in s.attributes]
    server = next(s for s in finished if s.name.startswith("GET"))
    assert len(db_spans) == 1
    assert db_spans[0].parent is not None
    assert db_spans[0].parent.span_id == server.context.span_id
    assert [e.name for e in db_spans[0].events] == ["slow query"]


def test_no_literal_or_parameter_leaves_the_process(
    make_runtime: Any, spans: InMemorySpanExporter
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0, SLOW_QUERY_MS=0)
    Client().get("/authors/lookup/", {"name": CANARY})
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM testapp_author WHERE name = '{CANARY}'")
    exported = repr([m for m in rt.collect_metrics()]) + repr(
        [
            (s.name, s.attributes, [e.attributes for e in s.events])
            for s in spans.get_finished_spans()
        ]
    )
    assert "testapp_author" in exported
    assert CANARY not in exported


def test_failing_query_span_carries_the_error_type_not_the_message(
    make_runtime: Any, spans: InMemorySpanExporter
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=1.0)
    from django.db import DatabaseError

    with (
        rt.tracer.start_as_current_span("job"),
        pytest.raises(DatabaseError),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT * FROM testapp_author WHERE name = %s AND nope = 1", [CANARY])
    (span,) = [
        s for s in spans.get_finished_spans() if s.attributes and "error.type" in s.attributes
    ]
    assert span.attributes is not None
    assert span.attributes["error.type"] == "OperationalError"
    assert not [e for e in span.events if e.name == "exception"]
    assert CANARY not in repr(span.attributes)


def test_fingerprint_overflow_goes_to_other(make_runtime: Any) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, MAX_FINGERPRINTS=2)
    with connection.cursor() as cursor:
        for column in ("1", "2", "3", "4"):
            cursor.execute(f"SELECT {column} AS c{column}")
    fingerprints = {str(key[3]) for key in rt.instruments.query_duration.attribute_sets()}
    assert "other" in fingerprints
    assert len(fingerprints) == 3


def test_profiler_statements_are_timed_but_not_counted_for_the_route(rt: Runtime) -> None:
    from telemetry.db import is_tooling

    explain = rt.catalog.lookup('EXPLAIN QUERY PLAN SELECT * FROM "testapp_author"')
    silk = rt.catalog.lookup('UPDATE "silk_request" SET "num_sql_queries" = 3 WHERE id = 1')
    view = rt.catalog.lookup('SELECT * FROM "testapp_author" WHERE "silky" = 1')
    assert is_tooling(explain) and is_tooling(silk)
    assert not is_tooling(view)


def test_tooling_queries_do_not_make_an_n_plus_one(make_runtime: Any) -> None:
    from django.test.utils import override_settings

    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, N_PLUS_ONE_THRESHOLD=2)
    with override_settings(ROOT_URLCONF="tests.telemetry.test_db"):
        Client().get("/explain-twice/")
    assert rt.instruments.n_plus_one.items() == []
    snapshot = rt.instruments.queries_per_request.snapshot(("/explain-twice/",))
    assert snapshot is not None and snapshot[1] == 0


def _explain_twice(request: Any) -> Any:
    from django.http import HttpResponse

    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute('EXPLAIN QUERY PLAN SELECT * FROM "testapp_author"')
    return HttpResponse("ok")


from django.urls import path  # noqa: E402

urlpatterns = [path("explain-twice/", _explain_twice)]
