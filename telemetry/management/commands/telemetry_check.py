"""`manage.py telemetry_check`: the effective configuration and whether the collector answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from django.core.management.base import BaseCommand, CommandError

from telemetry.conf import get_config
from telemetry.resource import build_resource
from telemetry.runtime import get_runtime


class Command(BaseCommand):
    help = "Print Fleetscope's effective telemetry configuration and probe the OTLP endpoint."

    def handle(self, *args: Any, **options: Any) -> None:
        config = get_config()
        runtime = get_runtime()
        resource = build_resource(config)
        rows = [
            ("service.name", config.service_name),
            ("host.name", config.node),
            ("service.instance.id", resource.attributes.get("service.instance.id")),
            ("endpoint", config.endpoint),
            ("protocol", config.protocol),
            ("sampler", f"{config.sampler} ({config.sampler_arg})"),
            ("metric export interval", f"{config.metric_export_interval_ms} ms"),
            ("request instrumentation", config["REQUEST_INSTRUMENTATION"]),
            ("slow query threshold", f"{config['SLOW_QUERY_MS']} ms"),
            ("N+1 threshold", config["N_PLUS_ONE_THRESHOLD"]),
            ("max fingerprints", config["MAX_FINGERPRINTS"]),
            ("export", "on" if config["EXPORT"] else "off"),
            ("runtime started", runtime.started),
        ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            self.stdout.write(f"{name:<{width}}  {value}")
        reachable, detail = probe_endpoint(config.endpoint, config.protocol)
        self.stdout.write(f"{'collector':<{width}}  {detail}")
        if not reachable:
            raise CommandError(f"The OTLP endpoint {config.endpoint} does not answer: {detail}")


def probe_endpoint(endpoint: str, protocol: str) -> tuple[bool, str]:
    """An empty OTLP/HTTP export is the cheapest request a collector must answer."""
    if protocol == "grpc":
        import socket

        parts = urlsplit(endpoint)
        try:
            with socket.create_connection((parts.hostname or "", parts.port or 4317), 2):
                return True, "reachable (gRPC port open)"
        except OSError as exc:
            return False, f"unreachable ({exc})"
    url = endpoint.rstrip("/") + "/v1/metrics"
    try:
        response = httpx.post(
            url, content=b"", timeout=3, headers={"Content-Type": "application/x-protobuf"}
        )
    except httpx.HTTPError as exc:
        return False, f"unreachable ({exc.__class__.__name__}: {exc})"
    if response.status_code < 400:
        return True, f"answers (HTTP {response.status_code} from {url})"
    return False, f"HTTP {response.status_code} from {url}"
