"""Silk glue: who gets profiled, how profiles are tied to traces, who can open them, what is hidden.

This module is also the URLconf of its tests (the test app's views, Silk's pages and the
telemetry URLs), and its fixture adds Silk's middleware for these tests only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from io import StringIO
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.db.models.sql.compiler import SQLCompiler
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory
from django.urls import include, path, resolve
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from silk.models import Request, Response, SQLQuery

from telemetry.runtime import Runtime
from telemetry.silk import (
    PROFILE_HEADER,
    profiled_request,
    python_profiler,
    restore_sql_compiler,
    should_profile,
)
from telemetry.silk.checks import silk_checks
from telemetry.silk.models import ProfileLink
from tests.telemetry.testapp.models import Author, Book

pytestmark = pytest.mark.django_db


def whoami(request: HttpRequest) -> HttpResponse:
    """Loads the session and the user inside the view, where Silk records SQL."""
    return HttpResponse(request.user.get_username())


def change_password(request: HttpRequest) -> HttpResponse:
    """A user is created, then changes password: both write a password hash."""
    user = User.objects.create_user("newcomer", password=CANARY)
    user.set_password(CANARY + "-2")
    user.save()
    User.objects.filter(pk=user.pk).update(password=user.password)
    return HttpResponse(str(User.objects.filter(pk=user.pk).exists()))


urlpatterns = [
    path("whoami/", whoami),
    path("change-password/", change_password),
    path("", include("tests.telemetry.testapp.urls")),
    path("silk/", include("silk.urls", namespace="silk")),
    path("telemetry/", include("telemetry.urls")),
]

MIDDLEWARE = [
    "telemetry.middleware.TelemetryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "silk.middleware.SilkyMiddleware",
]
CANARY = "canary-5e1d7b-topsecret"
EXPLICIT = {"headers": {PROFILE_HEADER: "1"}}
SILK_PAGE_SETTINGS = {
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
        }
    ],
    "STATIC_URL": "/static/",
}


@pytest.fixture(autouse=True)
def silk_site(settings: Any) -> Iterator[None]:
    settings.MIDDLEWARE = MIDDLEWARE
    settings.ROOT_URLCONF = __name__
    yield
    profiled_request.set(None)


@pytest.fixture(autouse=True, scope="module")
def _restore_sql_compiler() -> Iterator[None]:
    # Silk wraps SQLCompiler.execute_sql for good on the first request it records; leave the
    # other test modules the compiler they had.
    yield
    restore_sql_compiler()


@pytest.fixture
def sampled(make_runtime: Any) -> Runtime:
    """Every trace sampled, every sampled trace profiled."""
    runtime: Runtime = make_runtime(TRACES_SAMPLE_RATE=1.0, SILK_RATE=1.0, NODE="node-7")
    return runtime


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ops", password="x", is_staff=True))
    return client


@pytest.fixture
def books() -> None:
    for i in range(3):
        Book.objects.create(author=Author.objects.create(name=f"a{i}"), title=f"b{i}")


def _server_span(spans: InMemorySpanExporter, path: str) -> ReadableSpan:
    """The last server span of the route `path` resolves to (spans carry routes, not paths)."""
    route = "/" + resolve(path).route
    return [
        s
        for s in spans.get_finished_spans()
        if s.kind == trace.SpanKind.SERVER
        and s.attributes
        and s.attributes.get("http.route") == route
    ][-1]


def _profile(client: Client, url: str, **kwargs: Any) -> Request:
    before = set(Request.objects.values_list("pk", flat=True))
    assert client.get(url, **kwargs).status_code < 500
    new = Request.objects.exclude(pk__in=before)
    assert new.count() == 1, f"expected one Silk profile of {url}"
    return new.get()


# -- who gets profiled ------------------------------------------------------------------


def _decide(
    runtime: Runtime, user: Any, *, sampled_trace: bool, url: str = "/hello/", **extra: Any
) -> tuple[bool, bool]:
    request = RequestFactory().get(url, **extra)
    request.user = user
    span = runtime.tracer.start_span("GET") if sampled_trace else trace.INVALID_SPAN
    with trace.use_span(span, end_on_exit=True):
        return should_profile(request), python_profiler(request)


STAFF = User(username="ops", is_staff=True)
NOT_STAFF = User(username="customer")


@pytest.mark.parametrize(
    ("sampled_trace", "silk_rate", "user", "extra", "expected"),
    [
        pytest.param(False, 1.0, AnonymousUser(), {}, (False, False), id="unsampled"),
        pytest.param(True, 0.0, AnonymousUser(), {}, (False, False), id="sampled-rate-0"),
        pytest.param(True, 1.0, AnonymousUser(), {}, (True, False), id="sampled-rate-1"),
        pytest.param(True, 1.0, STAFF, {}, (True, False), id="staff-not-asking"),
        pytest.param(
            False, 0.0, STAFF, {"headers": {PROFILE_HEADER: "1"}}, (True, True), id="staff-header"
        ),
        pytest.param(
            False,
            0.0,
            STAFF,
            {"QUERY_STRING": "a=1&fleetscope_profile=1"},
            (True, True),
            id="staff-query",
        ),
        pytest.param(
            False,
            0.0,
            STAFF,
            {"headers": {PROFILE_HEADER: "0"}},
            (False, False),
            id="staff-header-0",
        ),
        pytest.param(
            False,
            0.0,
            NOT_STAFF,
            {"headers": {PROFILE_HEADER: "1"}},
            (False, False),
            id="non-staff-header",
        ),
        pytest.param(
            False,
            0.0,
            AnonymousUser(),
            {"QUERY_STRING": "fleetscope_profile=1"},
            (False, False),
            id="anonymous-query",
        ),
    ],
)
def test_silk_records_sampled_traces_at_silk_rate_or_staff_requests(
    make_runtime: Any,
    sampled_trace: bool,
    silk_rate: float,
    user: Any,
    extra: dict[str, Any],
    expected: tuple[bool, bool],
) -> None:
    runtime = make_runtime(TRACES_SAMPLE_RATE=1.0, SILK_RATE=silk_rate)
    assert _decide(runtime, user, sampled_trace=sampled_trace, **extra) == expected


def test_unprofiled_requests_cost_silk_no_query(
    make_runtime: Any, django_assert_num_queries: Any
) -> None:
    make_runtime(TRACES_SAMPLE_RATE=0.0, SILK_RATE=1.0)
    client = Client()
    with django_assert_num_queries(0):
        for _ in range(3):
            assert client.get("/hello/").status_code == 200
    assert not Request.objects.exists() and not ProfileLink.objects.exists()


def test_silk_leaves_djangos_sql_compiler_alone_after_a_profiled_request(
    sampled: Runtime,
) -> None:
    django_execute_sql = SQLCompiler.execute_sql
    _profile(Client(), "/books/fixed/")
    # Unprofiled requests after it must not pay Silk's double SQL compilation.
    assert SQLCompiler.execute_sql is django_execute_sql
    assert not hasattr(SQLCompiler, "_execute_sql")


def test_sampled_traces_at_rate_0_are_not_recorded(make_runtime: Any) -> None:
    make_runtime(TRACES_SAMPLE_RATE=1.0, SILK_RATE=0.0)
    Client().get("/items/3/")
    assert not Request.objects.exists()


def test_python_profiler_runs_only_when_staff_ask(sampled: Runtime, staff: Client) -> None:
    assert _profile(staff, "/items/1/").pyprofile == ""
    assert "function calls" in _profile(staff, "/items/2/", **EXPLICIT).pyprofile


def test_staff_can_profile_an_unsampled_request(make_runtime: Any, staff: Client) -> None:
    make_runtime(TRACES_SAMPLE_RATE=0.0, SILK_RATE=0.0)
    assert staff.get("/items/4/").status_code == 200
    assert not Request.objects.exists()
    assert _profile(staff, "/items/4/?fleetscope_profile=1").path == "/items/4/"
    assert _profile(staff, "/items/5/", **EXPLICIT).path == "/items/5/"


# -- links ------------------------------------------------------------------------------


def test_profile_is_linked_to_its_trace_node_worker_and_route(
    sampled: Runtime, spans: InMemorySpanExporter
) -> None:
    silk = _profile(Client(), "/items/7/")
    span = _server_span(spans, "/items/7/")
    link = ProfileLink.objects.get()
    assert link.silk_request_id == silk.pk
    assert link.trace_id == format(span.context.trace_id, "032x")
    assert link.route == "/items/<int:pk>/" == span.attributes["http.route"]  # type: ignore[index]
    assert link.node == "node-7"
    assert link.worker == sampled.resource.attributes["service.instance.id"]
    assert link.worker.startswith("node-7/")
    assert span.attributes["fleetscope.silk.request_id"] == silk.pk  # type: ignore[index]


@pytest.mark.django_db(transaction=True)
def test_profile_is_linked_under_asgi_too(sampled: Runtime, spans: InMemorySpanExporter) -> None:
    # Silk's middleware is sync-only: Django runs it in a worker thread under ASGI.
    assert asyncio.run(AsyncClient().get("/items/6/")).status_code == 200
    span = _server_span(spans, "/items/6/")
    link = ProfileLink.objects.get()
    assert link.trace_id == format(span.context.trace_id, "032x")
    assert link.route == "/items/<int:pk>/"
    assert span.attributes["fleetscope.silk.request_id"] == link.silk_request_id  # type: ignore[index]


def test_profile_lists_the_fingerprints_of_its_statements(
    sampled: Runtime, spans: InMemorySpanExporter, books: None
) -> None:
    _profile(Client(), "/books/n-plus-one/")
    trace_id = _server_span(spans, "/books/n-plus-one/").context.trace_id
    app_fingerprints = {
        s.attributes["django.db.fingerprint"]
        for s in spans.get_finished_spans()
        if s.context.trace_id == trace_id
        and s.attributes
        and str(s.attributes.get("db.query.text")).startswith('SELECT "testapp_')
    }
    # The books, then each book's author (Silk adds an EXPLAIN of each, also listed).
    assert len(app_fingerprints) == 2
    assert app_fingerprints <= set(ProfileLink.objects.get().fingerprint_list())


def test_a_link_failure_never_breaks_the_request(
    sampled: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.db import DatabaseError

    def fail(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("no such table: telemetry_profilelink")

    monkeypatch.setattr(ProfileLink, "save", fail)
    assert Client().get("/items/8/").status_code == 200
    assert Request.objects.filter(path="/items/8/", end_time__isnull=False).exists()
    assert "was not linked to its trace" in caplog.text


# -- the redirect views -------------------------------------------------------------------


def test_staff_follow_a_trace_id_to_its_silk_page(
    sampled: Runtime, spans: InMemorySpanExporter, staff: Client, settings: Any
) -> None:
    silk = _profile(Client(), "/items/9/")
    trace_id = format(_server_span(spans, "/items/9/").context.trace_id, "032x")
    for url in (
        f"/telemetry/silk/trace/{trace_id}",
        f"/telemetry/silk/trace/{trace_id}/",
        f"/telemetry/silk/trace/{trace_id.upper()}",
    ):
        response = staff.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/silk/request/{silk.pk}/"
    for key, value in SILK_PAGE_SETTINGS.items():
        setattr(settings, key, value)
    page = staff.get(f"/telemetry/silk/trace/{trace_id}", follow=True)
    assert page.status_code == 200 and "/items/9/" in page.content.decode()


def test_several_profiles_of_one_trace_are_listed(sampled: Runtime, staff: Client) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    first = _profile(Client(), "/items/1/", headers={"traceparent": traceparent})
    second = _profile(Client(), "/hello/", headers={"traceparent": traceparent})
    page = staff.get("/telemetry/silk/trace/0af7651916cd43dd8448eb211c80319c")
    body = page.content.decode()
    assert page.status_code == 200
    assert f"/silk/request/{first.pk}/" in body and f"/silk/request/{second.pk}/" in body
    assert body.index("/hello/") < body.index("/items/&lt;int:pk&gt;/")  # newest first


def test_anonymous_users_are_sent_to_log_in(sampled: Runtime, settings: Any) -> None:
    for url in (
        "/telemetry/silk/trace/0af7651916cd43dd8448eb211c80319c",
        "/telemetry/silk/route/?route=/hello/",
        "/telemetry/silk/query/0123456789abcdef",
        "/silk/",
        "/silk/requests/",
    ):
        response = Client().get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(settings.LOGIN_URL + "?next="), url


def test_non_staff_users_are_refused(sampled: Runtime) -> None:
    client = Client()
    client.force_login(User.objects.create_user("customer", password="x"))
    for url in (
        "/telemetry/silk/trace/0af7651916cd43dd8448eb211c80319c",
        "/telemetry/silk/route/?route=/hello/",
        "/telemetry/silk/query/0123456789abcdef",
        "/silk/",
        "/silk/requests/",
    ):
        assert client.get(url).status_code == 403, url


def test_unknown_trace_gets_a_404_that_explains_why(staff: Client, make_runtime: Any) -> None:
    make_runtime(TRACES_SAMPLE_RATE=1.0, SILK_RATE=0.25)
    response = staff.get("/telemetry/silk/trace/0af7651916cd43dd8448eb211c80319c")
    body = response.content.decode()
    assert response.status_code == 404
    assert "SILK_RATE" in body and "0.25" in body and PROFILE_HEADER in body
    assert staff.get("/telemetry/silk/trace/not-a-trace").status_code == 404


def test_a_profile_deleted_by_silk_is_not_offered(
    sampled: Runtime, spans: InMemorySpanExporter, staff: Client
) -> None:
    silk = _profile(Client(), "/items/3/")
    trace_id = format(_server_span(spans, "/items/3/").context.trace_id, "032x")
    silk.delete()
    assert staff.get(f"/telemetry/silk/trace/{trace_id}").status_code == 404
    assert staff.get("/telemetry/silk/route/?route=/items/<int:pk>/").status_code == 404


def test_route_opens_its_newest_profile(sampled: Runtime, staff: Client) -> None:
    _profile(Client(), "/items/1/")
    newest = _profile(Client(), "/items/2/")
    _profile(Client(), "/hello/")
    response = staff.get("/telemetry/silk/route/", {"route": "/items/<int:pk>/"})
    assert response.status_code == 302
    assert response["Location"] == f"/silk/request/{newest.pk}/"
    assert staff.get("/telemetry/silk/route/?route=/nowhere/").status_code == 404
    assert staff.get("/telemetry/silk/route/").status_code == 400


def test_fingerprint_opens_the_sql_of_its_newest_profile(
    sampled: Runtime, spans: InMemorySpanExporter, staff: Client, books: None
) -> None:
    silk = _profile(Client(), "/books/fixed/")
    _profile(Client(), "/hello/")
    fingerprint = next(
        s.attributes["django.db.fingerprint"]
        for s in spans.get_finished_spans()
        if s.attributes and "testapp_book" in str(s.attributes.get("db.query.text"))
    )
    response = staff.get(f"/telemetry/silk/query/{fingerprint}")
    assert response.status_code == 302
    assert response["Location"] == f"/silk/request/{silk.pk}/sql/"
    assert staff.get("/telemetry/silk/query/00000000000000ff").status_code == 404
    assert staff.get("/telemetry/silk/query/DROP TABLE").status_code == 404


# -- what Silk stores ---------------------------------------------------------------------


def _everything_silk_stored() -> str:
    rows: list[Any] = []
    for model in (Request, Response, SQLQuery):
        rows.extend(model.objects.values())
    return repr(rows)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/x-www-form-urlencoded",
            urlencode({"username": "alice", "password": CANARY, "api_key": CANARY}),
        ),
        (
            "application/json",
            json.dumps({"username": "alice", "password": CANARY, "card": {"secret": CANARY}}),
        ),
    ],
)
def test_secrets_in_form_fields_and_headers_are_masked(
    sampled: Runtime, content_type: str, body: str
) -> None:
    response = Client().post(
        "/hello/",
        body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {CANARY}", "X-Api-Key": CANARY, "X-Auth-Token": CANARY},
    )
    assert response.status_code == 200
    silk = Request.objects.get(path="/hello/", method="POST")
    assert "password" in silk.raw_body and "********************" in silk.raw_body
    assert silk.headers["x-api-key"] == "********************"
    assert CANARY not in _everything_silk_stored()


def test_session_keys_never_reach_silk_tables(sampled: Runtime, staff: Client) -> None:
    session_key = staff.session.session_key
    silk = _profile(staff, "/whoami/")
    assert SQLQuery.objects.filter(request=silk, query__contains="auth_user").exists()
    assert session_key and session_key not in _everything_silk_stored()


def test_password_hashes_never_reach_silk_sql(sampled: Runtime) -> None:
    silk = _profile(Client(), "/change-password/")
    password_hash = User.objects.get(username="newcomer").password
    stored = repr(list(SQLQuery.objects.filter(request=silk).values_list("query", flat=True)))
    assert "auth_user" in stored  # Silk did record the request's SQL
    assert password_hash.split("$")[-1] not in stored and "pbkdf2_sha256$" not in stored


def test_query_strings_and_token_paths_are_masked(sampled: Runtime) -> None:
    silk = _profile(Client(), f"/reset/MjQ/{CANARY}-4f2a9c/?name={CANARY}&page=2")
    assert silk.path == "/reset/<uidb64>/<token>/"
    assert json.loads(silk.query_params) == {
        "name": "********************",
        "page": "********************",
    }
    assert CANARY not in _everything_silk_stored()


def test_sql_parameters_are_folded_in_the_statements_silk_stores(sampled: Runtime) -> None:
    silk = _profile(Client(), f"/authors/lookup/?name={CANARY}")
    [query] = SQLQuery.objects.filter(request=silk).values_list("query", flat=True)
    assert query == (
        'SELECT ? AS "a" FROM "testapp_author" WHERE "testapp_author"."name" = ? LIMIT ?'
    )
    assert CANARY not in _everything_silk_stored()


def test_unprofiled_requests_note_no_statement(rt: Runtime) -> None:
    from telemetry.state import RequestState, current_request

    state = RequestState(None, None)
    token = current_request.set(state)
    try:
        assert Author.objects.filter(name=CANARY).count() == 0
    finally:
        current_request.reset(token)
    assert state.silk is None and state.queries == 1


def test_a_statement_the_observer_did_not_see_keeps_only_its_operation(
    sampled: Runtime,
) -> None:
    from telemetry.silk.masking import mask_statements

    silk = _profile(Client(), "/hello/")
    SQLQuery.objects.create(request=silk, query=f"SELECT * FROM t WHERE name = {CANARY}")
    assert mask_statements(silk.pk, {}) == 1
    [query] = SQLQuery.objects.filter(request=silk).values_list("query", flat=True)
    assert query.startswith("SELECT …") and CANARY not in query


def test_values_in_explain_conditions_are_folded() -> None:
    from telemetry.silk.masking import mask_analysis

    plan = (
        "Index Scan using auth_user_username_key on auth_user  (cost=0.15..8.17 rows=1 width=4)\n"
        f"  Index Cond: ((username)::text = '{CANARY}'::text)\n"
        "  Filter: (id = 42)"
    )
    masked = mask_analysis(plan, "postgresql")
    assert masked is not None and CANARY not in masked and "42" not in masked
    assert masked.splitlines()[0] == plan.splitlines()[0]  # costs stay readable
    assert "Index Cond: ((username)::text = ?::text)" in masked


# -- storage --------------------------------------------------------------------------------


def test_gc_command_keeps_the_newest_profiles_and_their_links(sampled: Runtime) -> None:
    for pk in range(4):
        _profile(Client(), f"/items/{pk}/")
    newest = Request.objects.order_by("-start_time")[0]
    out = StringIO()
    call_command("telemetry_silk_gc", max_requests=1, stdout=out)
    assert list(Request.objects.all()) == [newest]
    assert [link.silk_request_id for link in ProfileLink.objects.all()] == [newest.pk]
    assert "1 kept of 4" in out.getvalue() and "3 trace link(s) removed" in out.getvalue()


# -- system checks --------------------------------------------------------------------------


def _ids(settings: Any, **overrides: Any) -> set[str]:
    for key, value in overrides.items():
        setattr(settings, key, value)
    messages: list[CheckMessage] = []
    silk_checks(messages)
    return {m.id for m in messages if m.id}


def test_recommended_silk_settings_pass_the_checks(settings: Any) -> None:
    assert _ids(settings) == set()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SILKY_INTERCEPT_FUNC": None}, "telemetry.W011"),
        ({"SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT": 10}, "telemetry.W012"),
        ({"SILKY_ANALYZE_QUERIES": True}, "telemetry.W013"),
        ({"SILKY_PYTHON_PROFILER": True, "SILKY_PYTHON_PROFILER_FUNC": None}, "telemetry.W014"),
        ({"MIDDLEWARE": [MIDDLEWARE[0], MIDDLEWARE[3], *MIDDLEWARE[1:3]]}, "telemetry.W015"),
    ],
)
def test_unsafe_or_costly_silk_settings_are_reported(
    settings: Any, overrides: dict[str, Any], expected: str
) -> None:
    assert _ids(settings, **overrides) == {expected}


async def _asgi_get(path: str) -> int:
    """One request through Django's real ASGIHandler (not the test client): the request runs
    in a task and request_finished fires in the handler's own context, as under uvicorn."""
    from django.core.handlers.asgi import ASGIHandler

    sent: list[dict[str, Any]] = []
    received = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if received:
            return received.pop()
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await ASGIHandler()(scope, receive, send)
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


@pytest.mark.django_db(transaction=True)
def test_the_sql_compiler_is_restored_after_profiled_asgi_requests(sampled: Runtime) -> None:
    """Regression: under ASGI on Django 5.x request_finished fires outside the request's
    context, the in-flight count never dropped, and Silk's SQLCompiler wrapper (+70-90 us per
    query) stayed for the rest of the process."""
    import telemetry.silk

    django_execute_sql = SQLCompiler.execute_sql
    for _ in range(3):
        assert asyncio.run(_asgi_get("/books/fixed/")) == 200
    assert Request.objects.count() == 3  # each one was profiled
    assert telemetry.silk._in_flight == 0
    assert SQLCompiler.execute_sql is django_execute_sql
