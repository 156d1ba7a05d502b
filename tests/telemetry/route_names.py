"""ROUTE_NAME callables for tests/telemetry/test_routes.py."""

from django.http import HttpRequest


def by_header(request: HttpRequest) -> str | None:
    return request.headers.get("X-Page-Type")


def broken(request: HttpRequest) -> str | None:
    raise RuntimeError("a bug in the app's route namer")


NOT_CALLABLE = "route"
