"""The dashboards' Silk data links open views the telemetry app really serves."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.urls import resolve

from fleetscope.dashboards.panels import SILK_QUERY_URL, SILK_ROUTE_URL, SILK_TRACE_URL
from telemetry.silk import views as silk_views


@pytest.mark.parametrize(
    ("template", "clicked", "view"),
    [
        (SILK_TRACE_URL, "0af7651916cd43dd8448eb211c80319c", silk_views.trace_profile),
        (SILK_QUERY_URL, "0123456789abcdef", silk_views.query_profile),
        (SILK_ROUTE_URL, "%2Fproducts%2F", silk_views.route_profile),
    ],
)
def test_link_resolves_to_its_telemetry_view(template: str, clicked: str, view: object) -> None:
    url = (
        template.replace("${silk_base_url}", "http://node-1:8001")
        .replace("${__value.raw:percentencode}", clicked)
        .replace("${__value.raw}", clicked)
    )
    # The demo mounts the app at /telemetry/ as docs/silk.md tells users to.
    match = resolve(urlsplit(url).path, urlconf="fleetscope.demo.urls")
    assert match.func is view
