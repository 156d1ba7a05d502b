"""Staff-only redirects from a trace id, a route or a statement fingerprint to Silk's page.

Grafana links here (dashboards/panels.py, ``SILK_*_URL``). The links live in the shared
database, so any node can answer for a profile recorded on any other node.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.apps import apps
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.cache import never_cache

from ..conf import get_config
from ..runtime import active_runtime
from . import PROFILE_HEADER, PROFILE_PARAM, may_read_profiles

TRACE_ID = re.compile(r"[0-9a-f]{32}")
FINGERPRINT = re.compile(r"[0-9a-f]{16}|other")

View = Callable[..., HttpResponse]


def staff_only(view: View) -> View:
    """Anonymous users go to the login page; users who may not read Silk get a 403."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None:
            return _page(
                "Sign-in unavailable",
                [
                    "Silk profiles are for signed-in staff, and this site does not identify "
                    "users: add django.contrib.auth.middleware.AuthenticationMiddleware to "
                    "MIDDLEWARE."
                ],
                status=403,
            )
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not may_read_profiles(user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return guarded


def _page(
    title: str, paragraphs: list[str], status: int = 200, links: list[tuple[str, str]] | None = None
) -> HttpResponse:
    body = format_html(
        '<!doctype html><html><head><meta charset="utf-8"><title>{}</title></head>'
        "<body><h1>{}</h1>{}{}</body></html>",
        title,
        title,
        format_html_join("", "<p>{}</p>", ((p,) for p in paragraphs)),
        format_html("<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a></li>', links))
        if links
        else "",
    )
    return HttpResponse(body, status=status)


def _silk_url(name: str, silk_request_id: str) -> str:
    return reverse(f"silk:{name}", kwargs={"request_id": silk_request_id})


def _how_profiles_are_taken() -> str:
    runtime = active_runtime()
    rate = (runtime.config if runtime is not None else get_config())["SILK_RATE"]
    return (
        f"Silk profiles a share of the traces that were sampled (TELEMETRY['SILK_RATE'] = "
        f"{rate} here), and `manage.py telemetry_silk_gc` deletes the oldest profiles "
        "beyond SILKY_MAX_RECORDED_REQUESTS. To profile a request now, send it signed in "
        f"as staff with the header {PROFILE_HEADER}: 1 or the query ?{PROFILE_PARAM}=1."
    )


def _silk_unavailable() -> HttpResponse | None:
    if not apps.is_installed("silk"):
        return _page(
            "Silk is not installed",
            [
                "This node has no django-silk: add 'silk' to INSTALLED_APPS and Silk's "
                "middleware to MIDDLEWARE (see docs/silk.md)."
            ],
            status=404,
        )
    try:
        reverse("silk:summary")
    except NoReverseMatch:
        return _page(
            "Silk's pages are not served",
            ["Add path('silk/', include('silk.urls', namespace='silk')) to the URLconf."],
            status=404,
        )
    return None


@never_cache
@staff_only
def trace_profile(request: HttpRequest, trace_id: str) -> HttpResponse:
    """The Silk page of the request(s) of one trace; a list when several were profiled."""
    trace_id = trace_id.lower()
    if not TRACE_ID.fullmatch(trace_id):
        return _page(
            "Not a trace id",
            [f"{trace_id!r} is not an OpenTelemetry trace id (32 hexadecimal digits)."],
            status=404,
        )
    unavailable = _silk_unavailable()
    if unavailable is not None:
        return unavailable
    from .links import profiles_of_trace

    links = profiles_of_trace(trace_id)
    if not links:
        return _page(
            "No Silk profile for this trace",
            [
                f"No request of trace {trace_id} was profiled, or its profile was deleted.",
                _how_profiles_are_taken(),
            ],
            status=404,
            links=[(reverse("silk:requests"), "All Silk profiles")],
        )
    if len(links) == 1:
        return HttpResponseRedirect(_silk_url("request_detail", links[0].silk_request_id))
    return _page(
        f"Silk profiles of trace {trace_id}",
        ["Several requests of this trace were profiled (newest first):"],
        links=[
            (
                _silk_url("request_detail", link.silk_request_id),
                f"{link.route} on {link.worker} at {link.created:%Y-%m-%d %H:%M:%S}",
            )
            for link in links
        ],
    )


@never_cache
@staff_only
def route_profile(request: HttpRequest) -> HttpResponse:
    """The newest Silk profile of `?route=<http.route>`."""
    route = request.GET.get("route", "")
    if not route:
        return _page(
            "Which route?",
            [
                "Give the route as its URL pattern, e.g. ?route=/products/<int:pk>/ (the "
                "http.route label)."
            ],
            status=400,
        )
    unavailable = _silk_unavailable()
    if unavailable is not None:
        return unavailable
    from .links import latest_of_route

    link = latest_of_route(route)
    if link is None:
        return _page(
            "No Silk profile for this route",
            [f"No stored profile has the route {route}.", _how_profiles_are_taken()],
            status=404,
            links=[(reverse("silk:requests"), "All Silk profiles")],
        )
    return HttpResponseRedirect(_silk_url("request_detail", link.silk_request_id))


@never_cache
@staff_only
def query_profile(request: HttpRequest, fingerprint: str) -> HttpResponse:
    """The SQL tab of the newest Silk profile that ran the statement with this fingerprint."""
    fingerprint = fingerprint.lower()
    if not FINGERPRINT.fullmatch(fingerprint):
        return _page(
            "Not a statement fingerprint",
            [f"{fingerprint!r} is not a django.db.fingerprint (16 hexadecimal digits)."],
            status=404,
        )
    unavailable = _silk_unavailable()
    if unavailable is not None:
        return unavailable
    from .links import latest_with_fingerprint

    link = latest_with_fingerprint(fingerprint)
    if link is None:
        return _page(
            "No Silk profile ran this statement",
            [
                f"No stored profile ran the statement with fingerprint {fingerprint}.",
                _how_profiles_are_taken(),
            ],
            status=404,
            links=[(reverse("silk:requests"), "All Silk profiles")],
        )
    return HttpResponseRedirect(_silk_url("request_sql", link.silk_request_id))
