"""A minimal OTLP/HTTP receiver for probes: records the service.instance.id of each request."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class InstanceRecorder:
    def __init__(self) -> None:
        self.instances: set[str] = set()
        self.requests = 0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.record(self.path, body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def record(self, path: str, body: bytes) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        self.requests += 1
        if path != "/v1/metrics":
            return
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics:
            for attribute in rm.resource.attributes:
                if attribute.key == "service.instance.id":
                    self.instances.add(attribute.value.string_value)
