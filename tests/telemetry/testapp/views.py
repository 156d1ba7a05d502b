"""Views of the telemetry test app, each built to cause one signal."""

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from .models import Author, Book


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


def item(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse({"pk": pk})


def n_plus_one(request: HttpRequest) -> JsonResponse:
    """Touches book.author for every book: one query per book."""
    return JsonResponse({"authors": [book.author.name for book in Book.objects.all()]})


def fixed(request: HttpRequest) -> JsonResponse:
    books = Book.objects.select_related("author")
    return JsonResponse({"authors": [book.author.name for book in books]})


def lookup(request: HttpRequest) -> JsonResponse:
    """Filters by a caller-supplied name: the value must never leave the process."""
    name = request.GET.get("name", "")
    return JsonResponse({"found": Author.objects.filter(name=name).exists()})


def cached(request: HttpRequest) -> JsonResponse:
    key = request.GET.get("key", "k")
    value = cache.get(key)
    if value is None:
        value = "v"
        cache.set(key, value)
    return JsonResponse({"value": value})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def literal(request: HttpRequest) -> JsonResponse:
    """Embeds a value as an SQL literal (escaped): normalization must fold it away."""
    from django.db import connection

    name = request.GET.get("name", "").replace("'", "''")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM testapp_author WHERE name = '{name}'")
        (count,) = cursor.fetchone()
    return JsonResponse({"count": count})


def slow(request: HttpRequest) -> JsonResponse:
    """A deliberately slow statement (a recursive count, ~170 ms): the slow-query target."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %s) "
            "SELECT COUNT(*) FROM c",
            [1_000_000],
        )
        (count,) = cursor.fetchone()
    return JsonResponse({"count": count})


def sleep(request: HttpRequest) -> HttpResponse:
    """Holds the worker for ?ms= milliseconds (at most 2 s) without using CPU: a fixed
    service time for capacity tests on a busy machine."""
    import time

    milliseconds = min(max(int(request.GET.get("ms", "50")), 0), 2000)
    time.sleep(milliseconds / 1000)
    return HttpResponse(f"slept {milliseconds} ms")


def local_cache(request: HttpRequest) -> JsonResponse:
    """One hit and one miss on the `local` alias per request, whatever the worker."""
    from django.core.cache import caches

    local = caches["local"]
    local.set("present", 1)
    return JsonResponse({"hit": local.get("present"), "miss": local.get("absent")})


def two_aliases(request: HttpRequest) -> JsonResponse:
    """Two queries on `default` and one on `other`."""
    authors = Author.objects.count()
    books = Book.objects.count()
    others = Author.objects.using("other").count()
    return JsonResponse({"authors": authors, "books": books, "other": others})


def preexec(request: HttpRequest) -> JsonResponse:
    """subprocess with preexec_fn forks from inside a request: the fork hook must not block."""
    import subprocess

    result = subprocess.run(["true"], preexec_fn=lambda: None, timeout=30, check=False)
    return JsonResponse({"returncode": result.returncode})


def password_reset(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Shaped like django.contrib.auth's reset URL: the path itself is a credential."""
    return HttpResponse("ok")


def annotated(request: HttpRequest) -> JsonResponse:
    """What application code does with the current span: attributes, events, exceptions,
    and spans of its own from the global tracer."""
    from opentelemetry import trace

    span = trace.get_current_span()
    span.set_attribute("shop.customer_tier", "gold")
    span.add_event("cart loaded", {"items": 3})
    try:
        raise ValueError("handled")
    except ValueError as exc:
        span.record_exception(exc)
    with trace.get_tracer("shop").start_as_current_span("user work"):
        pass
    return JsonResponse({"ok": True})


def enqueue(request: HttpRequest) -> JsonResponse:
    """Queues `?task=<name>` (`&times=<n>`) of testapp/tasks.py: the request a task's trace
    continues."""
    from .tasks import TASKS

    task = TASKS[request.GET.get("task", "ok")]
    args: list[object] = [float(request.GET["seconds"])] if "seconds" in request.GET else []
    if "key" in request.GET:
        args = [request.GET["key"]]
    ids = [task.delay(*args).id for _ in range(int(request.GET.get("times", "1")))]
    return JsonResponse({"queued": ids})
