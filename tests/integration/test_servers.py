"""The app under the other setups a fleet runs: uvicorn (ASGI), gunicorn without --preload,
and export over OTLP/gRPC instead of the default OTLP/HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .stack import LocalStack, eventually, start_gunicorn_node

CASES = {
    # name: (server, entry point, preload, OTLP protocol)
    "uvicorn": ("uvicorn", "tests.integration.node_asgi:application", False, "http/protobuf"),
    "gunicorn-no-preload": (
        "gunicorn",
        "tests.integration.node_wsgi:application",
        False,
        "http/protobuf",
    ),
    "otlp-grpc": ("gunicorn", "tests.integration.node_wsgi:application", True, "grpc"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_requests_and_process_metrics_arrive(stack: LocalStack, tmp_path: Path, case: str) -> None:
    server, entry, preload, protocol = CASES[case]
    service = f"it-{case}"
    ports = stack.collector.ports
    endpoint = (
        f"http://{ports.host}:{ports.otlp_grpc}" if protocol == "grpc" else stack.otlp_endpoint
    )
    node = start_gunicorn_node(
        stack,
        tmp_path,
        f"node-{case}",
        "tests.integration.node_settings",
        entry,
        workers=1,
        preload=preload,
        server=server,
        env={
            "OTEL_SERVICE_NAME": service,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        },
    )
    try:
        with httpx.Client(base_url=node.url, timeout=30) as client:
            for pk in range(5):
                assert client.get(f"/items/{pk}/").status_code == 200
            assert client.get("/local-cache/").status_code == 200
        sel = f'job="{service}", host_name="node-{case}"'

        def requests_seen() -> float | None:
            result = stack.query(
                f"sum(http_server_request_duration_seconds_count{{{sel}, "
                f'http_route="/items/<int:pk>/"}})'
            )
            return float(result[0]["value"][1]) if result else None

        assert eventually(lambda: requests_seen() == 5, what=f"5 requests from {case}")
        hit_query = f'sum(django_cache_operations_total{{{sel}, django_cache_result="hit"}})'
        hits = eventually(
            lambda: [r for r in stack.query(hit_query) if float(r["value"][1]) == 1],
            what="the local cache hit",
        )
        assert hits
        assert eventually(
            lambda: stack.query(f"process_memory_usage_bytes{{{sel}}}"), what="process metrics"
        )
        spans = eventually(
            lambda: [s for s in stack.spans(service) if s["name"] == "GET /items/<int:pk>/"],
            what="server spans",
        )
        assert len(spans) == 5
    finally:
        node.process.stop()
