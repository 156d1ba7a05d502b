"""Delegate request spans and metrics to opentelemetry-instrumentation-django when asked to.

Set TELEMETRY["REQUEST_INSTRUMENTATION"] = "opentelemetry-instrumentation-django" to get
the contrib instrumentation's extras (request/response hooks, header capture). Fleetscope
keeps SQL, caches, N+1 and slow-query detection; the contrib instrumentor inserts its own
middleware (its choice, not ours) and emits the stable HTTP semantic conventions.
"""

from __future__ import annotations

import os

from fleetscope.errors import FleetscopeError


def instrument_contrib_django() -> None:
    # Stable `http.server.request.duration` (seconds), the name dashboards query.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    try:
        from opentelemetry.instrumentation.django import DjangoInstrumentor
    except ImportError as exc:
        raise FleetscopeError(
            "TELEMETRY['REQUEST_INSTRUMENTATION'] is 'opentelemetry-instrumentation-django' but "
            "that package is not installed: pip install 'fleetscope[contrib]'."
        ) from exc
    instrumentor = DjangoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # Global (proxy) providers: they resolve to ours once each process starts exporting.
        instrumentor.instrument()
