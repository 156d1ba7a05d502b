"""A URLconf with regex routes and named routes, for tests/telemetry/test_routes.py."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path


def plain(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return HttpResponse("ok")


def named(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Names its own route, as a CMS view serving many page types through one pattern."""
    request.telemetry_route = f"page:{request.GET.get('type', 'Article')}"  # type: ignore[attr-defined]
    return HttpResponse("named")


def raw_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    """A careless name: the raw path, ids and tokens included."""
    request.telemetry_route = request.path  # type: ignore[attr-defined]
    return HttpResponse("raw")


urlpatterns = [
    path("items/<int:pk>/", plain),
    re_path(r"^archive/(?P<year>[0-9]{4})/(?P<slug>[\w-]+)/$", plain),
    path("api/", include([re_path(r"^v(?P<version>\d+)/things/$", plain)])),
    re_path(r"^named/(.*)$", named),
    re_path(r"^raw/(.*)$", raw_path),
    re_path(r"^((?:[\w\-]+/)*)$", plain),
]
