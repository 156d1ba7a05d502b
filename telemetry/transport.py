"""Sending encoded OTLP requests: one attempt, a hard timeout, and a verdict; no retry loop.

The SDK's OTLP exporters retry inside `export()` with exponential backoff until their
timeout, and log every attempt to stderr. Fleetscope's export thread decides itself what to
retry and when (telemetry/export.py), must finish its final flush within a couple of
seconds at exit, and reports failures once per interval: so a send is one HTTP POST
(http.client, keep-alive) or one gRPC unary call, bounded by the timeout it is given.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import ssl
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from .conf import ExportTarget

# What OTLP says may be retried (OTLP/HTTP spec: 429, 502, 503, 504; gRPC: the codes below).
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_RETRYABLE_GRPC = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}
    | {"RESOURCE_EXHAUSTED"}
)
_PATHS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}


class EndpointError(ValueError):
    """An endpoint no request can be sent to; the message names it and where it came from."""


@dataclass(frozen=True)
class SendResult:
    ok: bool
    retryable: bool = False
    error_type: str = ""  # bounded label value: "connection", "timeout", "http_503", ...
    detail: str = ""  # for the log line; never holds payload data
    response: bytes = b""


class Sender(Protocol):
    target: ExportTarget

    def send(self, body: bytes, timeout: float) -> SendResult: ...

    def close(self) -> None: ...


def _ssl_context(target: ExportTarget) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=target.certificate)
    if target.client_certificate:
        context.load_cert_chain(target.client_certificate, target.client_key)
    return context


class HttpSender:
    """OTLP/HTTP with protobuf bodies over one kept-alive connection."""

    def __init__(self, target: ExportTarget) -> None:
        self.target = target
        parts = urlsplit(target.url)
        try:
            port = parts.port
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("not an http(s)://host:port URL")
        except ValueError as exc:
            source = dict(target.sources).get("endpoint", "the endpoint")
            raise EndpointError(
                f"the OTLP {target.signal} endpoint {target.url!r} (from {source}) cannot be "
                f"used: {exc}"
            ) from None
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port or (443 if self._https else 80)
        self._path = parts.path or "/"
        if parts.query:
            self._path += "?" + parts.query
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": "fleetscope-telemetry",
            **dict(target.headers),
        }
        if target.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection = self._connection
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=_ssl_context(self.target)
                )
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._connection = connection
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection

    def send(self, body: bytes, timeout: float) -> SendResult:
        if self.target.compression == "gzip":
            body = gzip.compress(body, compresslevel=5)
        try:
            connection = self._connect(timeout)
            connection.request("POST", self._path, body, self._headers)
            response = connection.getresponse()
            data = response.read()
        except TimeoutError:
            self.close()
            return SendResult(False, True, "timeout", f"no answer within {timeout:.1f} s")
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return SendResult(False, True, "connection", f"{type(exc).__name__}: {exc}")
        status = response.status
        if 200 <= status < 300:
            return SendResult(True, response=data)
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return SendResult(
            False, status in RETRYABLE_HTTP, f"http_{status}", f"HTTP {status} {response.reason}"
        )

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()


class GrpcSender:
    """OTLP/gRPC: one unary call with the already-encoded request (needs the [grpc] extra)."""

    def __init__(self, target: ExportTarget) -> None:
        import grpc

        self.target = target
        self._grpc = grpc
        parts = urlsplit(target.url if "://" in target.url else f"http://{target.url}")
        address = f"{parts.hostname or '127.0.0.1'}:{parts.port or 4317}"
        insecure = target.insecure if target.insecure is not None else parts.scheme == "http"
        compression = grpc.Compression.Gzip if target.compression == "gzip" else None
        if insecure:
            self._channel = grpc.insecure_channel(address, compression=compression)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(target.certificate),
                private_key=_read(target.client_key),
                certificate_chain=_read(target.client_certificate),
            )
            self._channel = grpc.secure_channel(address, credentials, compression=compression)
        # No serializers: the request is already protobuf bytes, the reply stays bytes.
        self._call = self._channel.unary_unary(_PATHS[target.signal])
        self._metadata = tuple((k.lower(), v) for k, v in target.headers)

    def send(self, body: bytes, timeout: float) -> SendResult:
        try:
            reply: Any = self._call(body, timeout=timeout, metadata=self._metadata)
        except self._grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
            error_type = "timeout" if code == "DEADLINE_EXCEEDED" else f"grpc_{code.lower()}"
            return SendResult(False, code in _RETRYABLE_GRPC, error_type, f"gRPC {code}")
        return SendResult(True, response=bytes(reply or b""))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._channel.close()


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def make_sender(target: ExportTarget) -> Sender:
    if target.protocol == "grpc":
        return GrpcSender(target)
    return HttpSender(target)
