"""`http.route` labels: URL patterns rendered readably (regex routes without anchors), names an
app gives (request.telemetry_route, TELEMETRY["ROUTE_NAME"]), bounded per process."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.checks import Error
from django.test import Client, override_settings

from telemetry.checks import telemetry_checks
from telemetry.routes import OVERFLOW_ROUTE, RouteCatalog, fold_name, render_pattern
from telemetry.runtime import Runtime
from tests.telemetry.testapp import urls as testapp_urls

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.telemetry.testapp.route_urls")]


def _routes(rt: Runtime) -> set[tuple[str, int]]:
    return {(str(r), int(s)) for _, r, s in rt.instruments.request_duration.attribute_sets()}


@pytest.mark.parametrize(
    ("pattern", "rendered"),
    [
        (r"^((?:[\w\-]+/)*)$", "/<var>"),  # Wagtail's catch-all, WAGTAIL_APPEND_SLASH on
        (r"^([\w\-/]*)$", "/<var>"),  # ... and off
        (r"^archive/(?P<year>[0-9]{4})/(?P<slug>[\w-]+)/$", "/archive/<year>/<slug>/"),
        (r"api/v(?P<version>\d+)/things/$", "/api/v<version>/things/"),  # include() joined
        (r"^docs/(?:(?P<lang>[a-z]{2})/)?index\.html\Z", "/docs/index.html"),
        (r"^a\(b\)/[()]+$", "/a(b)/"),
    ],
)
def test_regex_routes_render_without_regex_syntax(pattern: str, rendered: str) -> None:
    assert render_pattern(pattern) == rendered


def test_path_routes_of_a_plain_django_app_are_unchanged() -> None:
    patterns = [str(p.pattern) for p in testapp_urls.urlpatterns]
    assert len(patterns) > 10
    # What every earlier release reported for path() routes.
    assert [render_pattern(p) for p in patterns] == ["/" + p.lstrip("^/") for p in patterns]


def test_requests_are_labelled_by_rendered_pattern(rt: Runtime) -> None:
    client = Client()
    for url in ("/items/3/", "/archive/2024/hello/", "/api/v2/things/", "/about/team/"):
        assert client.get(url).status_code == 200, url
    assert _routes(rt) == {
        ("/items/<int:pk>/", 200),
        ("/archive/<year>/<slug>/", 200),
        ("/api/v<version>/things/", 200),
        ("/<var>", 200),
    }


def test_a_view_names_its_route(rt: Runtime) -> None:
    client = Client()
    client.get("/named/a/b/", {"type": "BlogPage"})
    client.get("/named/c/", {"type": "BlogPage"})
    client.get("/named/d/")
    assert _routes(rt) == {("page:BlogPage", 200), ("page:Article", 200)}


def test_route_name_setting_names_requests_and_none_keeps_the_pattern(make_runtime: Any) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, ROUTE_NAME="tests.telemetry.route_names.by_header")
    client = Client()
    client.get("/about/", headers={"X-Page-Type": "landing"})
    client.get("/items/1/")
    assert _routes(rt) == {("landing", 200), ("/items/<int:pk>/", 200)}


def test_a_failing_route_namer_never_breaks_the_request(
    make_runtime: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, ROUTE_NAME="tests.telemetry.route_names.broken")
    client = Client()
    with caplog.at_level(logging.ERROR, logger="telemetry"):
        assert client.get("/items/1/").status_code == 200
        assert client.get("/items/2/").status_code == 200
    assert _routes(rt) == {("/items/<int:pk>/", 200)}
    assert len([r for r in caplog.records if "ROUTE_NAME" in r.getMessage()]) == 1


def test_named_routes_are_capped_per_process(make_runtime: Any) -> None:
    rt = make_runtime(TRACES_SAMPLE_RATE=0.0, MAX_ROUTE_NAMES=3)
    client = Client()
    for page_type in ("A", "B", "C", "D", "E", "A"):
        client.get("/named/x/", {"type": page_type})
    assert _routes(rt) == {
        ("page:A", 200),
        ("page:B", 200),
        ("page:C", 200),
        (OVERFLOW_ROUTE, 200),
    }


def test_names_built_from_raw_paths_lose_their_ids_and_tokens(rt: Runtime) -> None:
    client = Client()
    client.get("/raw/orders/4711/")
    client.get("/raw/orders/4712/")
    client.get("/raw/reset/9f8e7d6c5b4a39281706f5e4d3c2b1a0/")
    assert _routes(rt) == {("/raw/orders/<int>/", 200), ("/raw/reset/<token>/", 200)}


def test_catalog_memory_stays_bounded_when_every_name_differs() -> None:
    catalog = RouteCatalog(max_names=2)
    labels = {catalog.named(f"/orders/{n}/") for n in range(1000)}
    labels |= {catalog.named(f"name-{n}") for n in range(1000)}
    assert labels == {"/orders/<int>/", "name-0", OVERFLOW_ROUTE}
    assert len(catalog._names) <= 8


def test_fold_name_caps_length() -> None:
    assert len(fold_name("x" * 1000)) == 128
    assert fold_name("  wagtail:BlogPage ") == "wagtail:BlogPage"


@pytest.mark.parametrize(
    "value", ["tests.telemetry.route_names.missing", "tests.telemetry.route_names.NOT_CALLABLE"]
)
def test_unusable_route_name_setting_is_a_check_error(value: str) -> None:
    with override_settings(TELEMETRY={"EXPORT": False, "ROUTE_NAME": value}):
        errors = [m for m in telemetry_checks() if m.id == "telemetry.E010"]
    assert len(errors) == 1 and isinstance(errors[0], Error)
    assert value in errors[0].msg
