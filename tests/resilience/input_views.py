"""Views of the resilience suite's nodes: each one lets a test push one kind of hostile input
through the instrumented code paths (SQL, cache, routes, bodies) of a real server."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from django.contrib.auth import authenticate, get_user_model, login
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def _alias(request: HttpRequest) -> str:
    return request.GET.get("db", "default")


@csrf_exempt
def sql_literal(request: HttpRequest) -> JsonResponse:
    """The request body as one SQL string literal (escaped): 10 MB bodies make 10 MB SQL."""
    literal = request.body.decode("utf-8", "replace").replace("'", "''")
    with connections[_alias(request)].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM auth_user WHERE username = '{literal}'")
        (count,) = cursor.fetchone()
    return JsonResponse({"count": count, "length": len(literal)})


@csrf_exempt
def sql_params(request: HttpRequest) -> JsonResponse:
    """Raw body bytes (any bytes, UTF-8 or not) and undecodable query text as parameters."""
    raw = request.body
    text = raw.decode("latin-1")  # every byte is some character: never fails
    query = request.GET.get("q", "")  # Django decodes %FF and friends with replacement
    with connections[_alias(request)].cursor() as cursor:
        cursor.execute("SELECT length(%s), length(%s), length(%s)", [raw, text, query])
        lengths = cursor.fetchone()
    return JsonResponse({"lengths": list(lengths)})


def sql_shapes(request: HttpRequest) -> JsonResponse:
    """`count` statements of distinct shapes (distinct column aliases), numbered from `start`.

    `cpu` is this thread's CPU time for them: what the statements and whatever wraps them
    cost, whatever else runs on the machine."""
    start, count = int(request.GET.get("start", 0)), int(request.GET.get("count", 100))
    began = time.thread_time()
    with connections[_alias(request)].cursor() as cursor:
        for number in range(start, start + count):
            cursor.execute(f"SELECT 1 AS shape_{number}")
            cursor.fetchone()
    return JsonResponse({"executed": count, "cpu": time.thread_time() - began})


@csrf_exempt
def sql_text(request: HttpRequest) -> JsonResponse:
    """The request body as the statement itself; the database may refuse it (a 200 either way:
    what is measured is what the instrumentation adds around the attempt)."""
    sql = request.body.decode("utf-8", "replace")
    began = time.thread_time()
    try:
        with connections[_alias(request)].cursor() as cursor:
            cursor.execute(sql)
        outcome = "ok"
    except DatabaseError as exc:
        outcome = type(exc).__name__
    return JsonResponse({"outcome": outcome, "cpu": time.thread_time() - began})


def user_lookup(request: HttpRequest) -> JsonResponse:
    """An ORM filter on a caller-supplied value (a SQL parameter Silk would render); reads the
    session too, so that the session cookie becomes a SQL parameter as well."""
    name = request.GET.get("name", "")
    signed_in = request.user.is_authenticated
    found = get_user_model().objects.filter(username=name).exists()
    return JsonResponse({"found": found, "signed_in": signed_in})


def user_literal(request: HttpRequest) -> JsonResponse:
    """A caller-supplied value embedded as an escaped SQL literal in raw SQL."""
    name = request.GET.get("name", "").replace("'", "''")
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM auth_user WHERE username = '{name}'")
        (count,) = cursor.fetchone()
    return JsonResponse({"count": count})


def cached(request: HttpRequest) -> JsonResponse:
    key = request.GET.get("key", "k")
    value = cache.get(key)
    if value is None:
        cache.set(key, "v")
    return JsonResponse({"hit": value is not None})


@csrf_exempt
def echo(request: HttpRequest) -> JsonResponse:
    """Reads a JSON, form or multipart body the way a real view would."""
    if request.content_type == "application/json":
        fields = sorted(json.loads(request.body or b"{}"))
    else:
        fields = sorted([*request.POST, *request.FILES])
    return JsonResponse({"fields": fields})


def password_reset(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Shaped like django.contrib.auth's reset URL: the path itself is a credential."""
    return HttpResponse("ok")


@csrf_exempt
def sign_in(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse("no", status=403)
    login(request, user)
    return HttpResponse("ok")


def hostile_route(request: HttpRequest, script: str) -> JsonResponse:
    """A route template full of markup and quotes, running a statement with hostile names six
    times: an N+1 of that route (and slow queries, with SLOW_QUERY_MS = 0) in every report."""
    with connections["default"].cursor() as cursor:
        for _ in range(6):
            cursor.execute(HOSTILE_SQL)
            cursor.fetchall()
    return JsonResponse({"ok": True})


# Quoted identifiers are kept in normalized text (they are names, not values): markup, quotes
# and a closing rich tag reach db.query.text, Prometheus and every report.
HOSTILE_SQL = (
    'SELECT 1 AS "<script>alert(1)</script>", 2 AS "[/]", 3 AS "[bold red]x[/bold red]", '
    '4 AS "it\'s ""q"" & <b>"'
)


async def slow_async(request: HttpRequest) -> JsonResponse:
    """Does one query, says it started (a marker file), then waits: the request a client
    cancels mid-flight."""
    from asgiref.sync import sync_to_async

    await sync_to_async(_one_query)()
    marker = request.GET.get("marker")
    if marker:
        Path(os.environ["FLEETSCOPE_DEMO_DIR"], marker).write_text("started")
    await asyncio.sleep(float(request.GET.get("seconds", "30")))
    return JsonResponse({"slept": True})


def _one_query() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM auth_user")
        cursor.fetchone()


async def request_context(request: HttpRequest) -> JsonResponse:
    """What this request sees of Fleetscope's context: its trace and its per-request state."""
    from opentelemetry import trace

    from telemetry.state import current_request

    context = trace.get_current_span().get_span_context()
    state = current_request.get()
    return JsonResponse(
        {
            "trace_id": format(context.trace_id, "032x"),
            "state": None
            if state is None
            else {"queries": state.queries, "repeats": len(state.repeats), "slow": len(state.slow)},
        }
    )


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A plain 404 (Django's default renders a template from a string on every 404)."""
    return HttpResponse("not found", status=404, content_type="text/plain")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return HttpResponse("forbidden", status=403, content_type="text/plain")
