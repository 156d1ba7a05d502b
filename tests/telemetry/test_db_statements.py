"""How the SQL observer uses statements: transaction control and shared statements never make
an N+1, and each connection's raw-SQL cache stays within its byte budget."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import path

from telemetry.db import MAX_CACHED_KEY_BYTES, observer_of
from telemetry.runtime import Runtime
from tests.telemetry.testapp.models import Author

pytestmark = pytest.mark.django_db


def _get_or_create_in_savepoints(request: HttpRequest) -> HttpResponse:
    # What ATOMIC_REQUESTS and get_or_create do: one savepoint per call, inside a transaction.
    with transaction.atomic():
        for n in range(6):
            with transaction.atomic():
                Author.objects.get_or_create(name=f"author {n}")
    return HttpResponse("ok")


def _statements_past_the_cap(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        for n in range(8):
            cursor.execute(f"SELECT {n} AS c{n}")
    return HttpResponse("ok")


urlpatterns = [
    path("savepoints/", _get_or_create_in_savepoints),
    path("past-the-cap/", _statements_past_the_cap),
]


def _detected(rt: Runtime) -> list[str]:
    """Normalized text of every statement detected as an N+1."""
    texts = {statement.fingerprint: statement.text for statement in rt.catalog.statements()}
    detected = [str(key[0]) for key, _ in rt.instruments.n_plus_one.items()]
    return [texts.get(fingerprint, fingerprint) for fingerprint in detected]


@override_settings(ROOT_URLCONF=__name__)
def test_savepoints_of_a_get_or_create_loop_are_not_an_n_plus_one(make_runtime: Any) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, N_PLUS_ONE_THRESHOLD=5)
    with CaptureQueriesContext(connection) as executed:
        Client().get("/savepoints/")
    detected = _detected(rt)
    assert not [text for text in detected if "SAVEPOINT" in text]
    # The loop's own SELECT and INSERT still are one: six of each.
    assert any(text.startswith('SELECT "testapp_author"') for text in detected)
    assert any(text.startswith('INSERT INTO "testapp_author"') for text in detected)
    # Savepoints still count as queries of the request.
    savepoints = [query for query in executed.captured_queries if "SAVEPOINT" in query["sql"]]
    assert len(savepoints) >= 12
    snapshot = rt.instruments.queries_per_request.snapshot(("/savepoints/",))
    assert snapshot is not None and snapshot[1] == len(executed.captured_queries)


@override_settings(ROOT_URLCONF=__name__)
def test_statements_past_the_fingerprint_cap_are_not_an_n_plus_one(make_runtime: Any) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, MAX_FINGERPRINTS=2, N_PLUS_ONE_THRESHOLD=5)
    Client().get("/past-the-cap/")
    assert rt.instruments.n_plus_one.items() == []
    snapshot = rt.instruments.queries_per_request.snapshot(("/past-the-cap/",))
    assert snapshot is not None and snapshot[1] == 8


def test_each_connections_sql_cache_holds_at_most_its_byte_budget(rt: Runtime) -> None:
    with connection.cursor() as cursor:
        for n in range(400):  # 400 distinct statements of 20 KB: 8 MB of raw SQL
            cursor.execute(f"SELECT {n} /* {'x' * 20_000} */")
    observer = observer_of(connection)
    assert observer is not None
    held = sum(sys.getsizeof(sql) for sql in observer._keys)
    assert 0 < held <= MAX_CACHED_KEY_BYTES
