"""How each benchmarked library is installed, shared by both harnesses (in process and real server).

Settings helpers take a settings module's globals() and add one library the way its docs
say; `stock_otel` sets up the contrib instrumentation with SDK providers as a user would.
Both harnesses call the same functions, so a configuration means the same thing in both.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

Settings = dict[str, Any]

AUTH_APPS = ["django.contrib.auth", "django.contrib.sessions"]
AUTH_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def add_auth(settings: Settings) -> None:
    """Sessions and auth: what every real app has, and what Silk's staff-only pages need."""
    settings["INSTALLED_APPS"] += [
        app for app in AUTH_APPS if app not in settings["INSTALLED_APPS"]
    ]
    settings["MIDDLEWARE"] += [m for m in AUTH_MIDDLEWARE if m not in settings["MIDDLEWARE"]]


def add_fleetscope(settings: Settings, telemetry: dict[str, Any]) -> None:
    """The telemetry app and its middleware first, as docs/telemetry.md says."""
    settings["INSTALLED_APPS"].append("telemetry")
    settings["MIDDLEWARE"].insert(0, "telemetry.middleware.TelemetryMiddleware")
    settings["TELEMETRY"] = telemetry


def add_fleetscope_silk(settings: Settings) -> None:
    """django-silk installed as docs/silk.md says: Fleetscope decides which requests it records."""
    from telemetry.silk import IGNORE_QUERIES, SENSITIVE_KEYS, python_profiler, should_profile

    add_auth(settings)
    settings["INSTALLED_APPS"] += ["silk", "telemetry.silk"]
    settings["MIDDLEWARE"].append("silk.middleware.SilkyMiddleware")  # after authentication
    settings.update(
        SILKY_INTERCEPT_FUNC=should_profile,
        SILKY_PYTHON_PROFILER_FUNC=python_profiler,
        SILKY_AUTHENTICATION=True,
        SILKY_AUTHORISATION=True,
        SILKY_SENSITIVE_KEYS=SENSITIVE_KEYS,
        SILKY_IGNORE_QUERIES=IGNORE_QUERIES,
        SILKY_ANALYZE_QUERIES=False,
        SILKY_MAX_REQUEST_BODY_SIZE=16 * 1024,
        SILKY_MAX_RESPONSE_BODY_SIZE=0,
        SILKY_MAX_RECORDED_REQUESTS=5_000,
        SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT=0,
    )


def add_stock_silk(settings: Settings) -> None:
    """django-silk as its README installs it: every request recorded (its default 100%)."""
    add_auth(settings)
    settings["INSTALLED_APPS"].append("silk")
    settings["MIDDLEWARE"].append("silk.middleware.SilkyMiddleware")
    settings.update(SILKY_AUTHENTICATION=True, SILKY_AUTHORISATION=True)


def add_django_prometheus(settings: Settings) -> None:
    """django-prometheus with its middleware pair, database engine and cache backends."""
    settings["INSTALLED_APPS"].append("django_prometheus")
    settings["MIDDLEWARE"] = [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *settings["MIDDLEWARE"],
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ]
    for database in settings["DATABASES"].values():
        engine = database["ENGINE"].rsplit(".", 1)[-1]
        database["ENGINE"] = f"django_prometheus.db.backends.{engine}"
    for cache in settings["CACHES"].values():
        if cache["BACKEND"].endswith("locmem.LocMemCache"):
            cache["BACKEND"] = "django_prometheus.cache.backends.locmem.LocMemCache"


def stock_otel(
    ratio: float,
    span_exporter: SpanExporter,
    metric_exporter: MetricExporter,
    export_interval_ms: int,
) -> None:
    """Contrib Django + sqlite3 instrumentation with SDK providers, as a user would set them.

    Call before Django loads the app (the contrib instrumentor inserts its middleware).
    """
    import os

    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    # Stable HTTP semantic conventions: http.server.request.duration, as Fleetscope emits.
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"
    provider = TracerProvider(sampler=ParentBasedTraceIdRatio(ratio))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    reader = PeriodicExportingMetricReader(
        metric_exporter, export_interval_millis=export_interval_ms
    )
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    SQLite3Instrumentor().instrument()
    DjangoInstrumentor().instrument()
