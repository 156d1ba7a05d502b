"""Wagtail integration: a page request's `http.route` is its page type (`wagtail:BlogPage`).

Wagtail serves every page through one catch-all URL pattern, so the pattern alone would put
the whole site under one route. Wagtail imports `wagtail_hooks` modules of installed apps
only when Wagtail itself is installed: without Wagtail this module is never imported and
costs nothing. The hook uses Wagtail's public `before_serve_page` hook, runs before the
page's `serve()` and only names the request (telemetry/routes.py bounds the names).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from wagtail import hooks

from .routes import ROUTE_ATTRIBUTE

PREFIX = "wagtail:"


@hooks.register("before_serve_page")
def name_route_by_page_type(page: Any, request: HttpRequest, *args: Any) -> None:
    # Set through __dict__, as the route catalog reads it: no attribute hooks involved.
    request.__dict__[ROUTE_ATTRIBUTE] = PREFIX + type(page).__name__
