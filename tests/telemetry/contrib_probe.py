"""Runs in its own process: the app with REQUEST_INSTRUMENTATION set to the contrib package.

Prints JSON describing what each side recorded, for tests/telemetry/test_contrib_mode.py.
The contrib instrumentor edits settings.MIDDLEWARE and the global providers, so it must
not run inside the main test process.
"""

from __future__ import annotations

import json
import os


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.telemetry.contrib_settings"
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    from telemetry.runtime import get_runtime
    from tests.telemetry.testapp.models import Author, Book

    for i in range(6):
        Book.objects.create(author=Author.objects.create(name=f"a{i}"), title=f"b{i}")
    import time

    client = Client()
    client.get("/items/5/", HTTP_X_REQUEST_START=f"t={int((time.time() - 0.2) * 1e6)}")
    client.get("/books/n-plus-one/")
    client.get("/no/such/page/")

    data = reader.get_metrics_data()
    names = sorted(
        {
            m.name
            for rm in (data.resource_metrics if data else [])
            for sm in rm.scope_metrics
            for m in sm.metrics
        }
    )
    runtime = get_runtime()
    from telemetry.checks import telemetry_checks

    metric_routes = sorted(
        {
            str((point.attributes or {}).get("http.route"))
            for rm in (data.resource_metrics if data else [])
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "http.server.request.duration"
            for point in m.data.data_points
        }
    )
    print(
        json.dumps(
            {
                "middleware": list(settings.MIDDLEWARE),
                "span_routes": sorted(
                    str((s.attributes or {}).get("http.route"))
                    for s in spans.get_finished_spans()
                    if s.kind == trace.SpanKind.SERVER
                ),
                "sdk_metrics": names,
                "metric_routes": metric_routes,
                "check_ids": [m.id for m in telemetry_checks()],
                "own_request_points": len(runtime.instruments.request_duration.attribute_sets()),
                "n_plus_one": [[list(k), v] for k, v in runtime.instruments.n_plus_one.items()],
                "busy_seconds": runtime.instruments.busy_time.seconds(),
                "busy_in_flight": runtime.instruments.busy_time.in_flight,
                "queue_time_routes": [
                    list(k) for k in runtime.instruments.queue_time.attribute_sets()
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
