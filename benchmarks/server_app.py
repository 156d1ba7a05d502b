"""What the benchmark server runs before Django loads: stock OpenTelemetry, when configured.

Imported by the WSGI and ASGI entry points in the worker process (the harness never uses
--preload), so the SDK's exporter threads start where the requests are served.
"""

import os


def prepare() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.server_settings")
    if os.environ.get("FLEETSCOPE_BENCH_SETUP") != "otel":
        return
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from benchmarks.setups import stock_otel

    # Endpoint and service name from OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME;
    # metrics every 10 s like Fleetscope's default (the SDK's own default is 60 s).
    stock_otel(
        float(os.environ.get("FLEETSCOPE_BENCH_SAMPLE_RATE", "0.1")),
        OTLPSpanExporter(),
        OTLPMetricExporter(),
        export_interval_ms=10_000,
    )
