"""Delegate request spans and metrics to opentelemetry-instrumentation-django when asked to.

Set TELEMETRY["REQUEST_INSTRUMENTATION"] = "opentelemetry-instrumentation-django" to get
the contrib instrumentation's extras (request/response hooks, header capture). Fleetscope
keeps SQL, caches, N+1 and slow-query detection. The contrib instrumentor inserts its own
middleware at the top of MIDDLEWARE (its choice, not ours), and reports the stable HTTP
conventions (`http.server.request.duration` in seconds) only when the process starts with
OTEL_SEMCONV_STABILITY_OPT_IN=http (check telemetry.E008 says so; Fleetscope never writes
the environment). Routes: the contrib package writes `http.route` without the leading slash
(`items/<int:pk>/`) and not at all for unmatched requests; `align_route` rewrites it to
Fleetscope's form (`/items/<int:pk>/`, `unmatched`) so both modes label alike and the
`http_*` and `django_db_*` series join.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from fleetscope.errors import FleetscopeError

CONTRIB_MIDDLEWARE = (
    "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
)
_keys: tuple[str, str] | None = None


def instrument_contrib_django() -> None:
    try:
        from opentelemetry.instrumentation.django import DjangoInstrumentor
    except ImportError as exc:
        raise FleetscopeError(
            "TELEMETRY['REQUEST_INSTRUMENTATION'] is 'opentelemetry-instrumentation-django' but "
            "that package is not installed: pip install 'fleetscope[contrib]'."
        ) from exc
    instrumentor = DjangoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # Global (proxy) providers: they resolve to Fleetscope's tracer provider.
        instrumentor.instrument()


def _request_keys() -> tuple[str, str]:
    """Where the contrib middleware keeps a request's span and metric attributes."""
    global _keys
    if _keys is None:
        from opentelemetry.instrumentation.django.middleware.otel_middleware import (
            _DjangoMiddleware,
        )

        _keys = (_DjangoMiddleware._environ_span_key, _DjangoMiddleware._environ_duration_attr_key)
    return _keys


def align_route(request: HttpRequest, route: str) -> None:
    """Give the contrib request span and duration metric Fleetscope's route label."""
    span_key, attrs_key = _request_keys()
    meta: dict[str, Any] = request.META
    attributes = meta.get(attrs_key)
    if isinstance(attributes, dict):
        attributes["http.route"] = route
    span = meta.get(span_key)
    if span is not None and span.is_recording():
        span.set_attribute("http.route", route)
