"""Cost of turning sampled spans into an OTLP request, per span: the SDK's path vs Fleetscope's.

    python -m benchmarks.encoding

The SDK path is what an SDK `BatchSpanProcessor` + OTLP exporter does with Fleetscope's
deferred SQL spans: build `ReadableSpan`s, encode them with the SDK's protobuf encoder,
serialize. Fleetscope's path writes the same `ExportTraceServiceRequest` from cached
per-statement bytes (telemetry/otlp.py). Timed with the thread's CPU clock (min of rounds),
which a busy machine disturbs far less than wall time.
"""

from __future__ import annotations

import time

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource

from telemetry.otlp import export_trace_request
from telemetry.spans import DeferredSpan, SpanTemplate

BATCH = 256
ROUNDS = 30


def _batch() -> list[DeferredSpan]:
    templates = [
        SpanTemplate(
            f"SELECT shop_product{i}",
            {
                "db.system.name": "postgresql",
                "db.operation.name": "SELECT",
                "db.query.summary": f"SELECT shop_product{i}",
                "db.query.text": 'SELECT "shop_product"."id", "shop_product"."name", '
                '"shop_product"."price" FROM "shop_product" WHERE "shop_product"."id" = ?',
                "django.db.alias": "default",
                "django.db.fingerprint": f"{i:016x}",
            },
        )
        for i in range(10)
    ]
    return [
        DeferredSpan(templates[n % 10], 2**100 + n // 11, n + 1, 7, None, n, n + 1000)
        for n in range(BATCH)
    ]


def _best(action: object) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.thread_time()
        action()  # type: ignore[operator]
        best = min(best, time.thread_time() - start)
    return best / BATCH * 1e6


def main() -> None:
    resource = Resource.create({"service.name": "shop", "host.name": "node-1"})
    spans = _batch()

    def sdk() -> None:
        encode_spans([span.materialize(resource) for span in spans]).SerializeToString()

    def materialize_only() -> None:
        [span.materialize(resource) for span in spans]

    def ours() -> None:
        export_trace_request(resource, spans)

    ours()  # template bytes cached, as after the first batch in a process
    rows = [
        ("SDK: materialize + encode + serialize", _best(sdk)),
        ("  of which materialize", _best(materialize_only)),
        ("Fleetscope: export_trace_request", _best(ours)),
    ]
    for name, us in rows:
        print(f"{name:<40} {us:7.2f} µs/span")


if __name__ == "__main__":
    main()
