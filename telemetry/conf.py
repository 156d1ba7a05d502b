"""The `TELEMETRY` settings dict merged over documented defaults, cached until settings change."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # Identity. service.name: OTEL_SERVICE_NAME, else SERVICE_NAME. host.name: NODE,
    # else FLEETSCOPE_NODE, else the hostname.
    "SERVICE_NAME": "django",
    "NODE": None,
    "ENVIRONMENT": None,
    "SERVICE_VERSION": None,
    # Export. ENDPOINT/PROTOCOL default to OTEL_EXPORTER_OTLP_ENDPOINT/_PROTOCOL.
    "EXPORT": True,
    "ENDPOINT": None,
    "PROTOCOL": None,
    "METRIC_EXPORT_INTERVAL_MS": 10_000,
    "SPAN_QUEUE_SIZE": 2048,
    # Traces: parent-based ratio sampling unless OTEL_TRACES_SAMPLER says otherwise.
    "TRACES_SAMPLE_RATE": 0.1,
    # "fleetscope" (the lean middleware) or "opentelemetry-instrumentation-django".
    "REQUEST_INSTRUMENTATION": "fleetscope",
    # SQL.
    "SLOW_QUERY_MS": 100,
    "N_PLUS_ONE_THRESHOLD": 5,
    "MAX_FINGERPRINTS": 500,
    "MAX_STATEMENT_LENGTH": 2048,
    # Caches: None instruments every alias in CACHES.
    "CACHE_ALIASES": None,
    "PROCESS_METRICS": True,
    # Silk: share of sampled requests that Silk also profiles.
    "SILK_RATE": 0.01,
}

PROTOCOLS = ("http/protobuf", "grpc")
REQUEST_MODES = ("fleetscope", "opentelemetry-instrumentation-django")
DEFAULT_ENDPOINT = "http://127.0.0.1:4318"


@dataclass(frozen=True)
class Config:
    """Effective configuration: TELEMETRY over DEFAULTS, standard OTEL_* variables on top."""

    raw: dict[str, Any]
    service_name: str
    node: str
    endpoint: str
    protocol: str
    metric_export_interval_ms: int
    sampler: str
    sampler_arg: str | None

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def with_sampler(self, sampler: str, arg: str | None = None) -> Config:
        return replace(self, sampler=sampler, sampler_arg=arg)

    @property
    def slow_query_seconds(self) -> float:
        return float(self.raw["SLOW_QUERY_MS"]) / 1000.0


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def build_config(user: dict[str, Any] | None) -> Config:
    raw = {**DEFAULTS, **(user or {})}
    interval = _env("OTEL_METRIC_EXPORT_INTERVAL")
    sampler = _env("OTEL_TRACES_SAMPLER")
    return Config(
        raw=raw,
        service_name=_env("OTEL_SERVICE_NAME") or str(raw["SERVICE_NAME"]),
        node=str(raw["NODE"] or _env("FLEETSCOPE_NODE") or socket.gethostname()),
        endpoint=str(raw["ENDPOINT"] or _env("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT),
        protocol=str(raw["PROTOCOL"] or _env("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"),
        metric_export_interval_ms=int(interval)
        if interval and interval.isdigit()
        else int(raw["METRIC_EXPORT_INTERVAL_MS"]),
        sampler=sampler or "parentbased_traceidratio",
        sampler_arg=_env("OTEL_TRACES_SAMPLER_ARG") if sampler else str(raw["TRACES_SAMPLE_RATE"]),
    )


@cache
def get_config() -> Config:
    return build_config(getattr(settings, "TELEMETRY", None))


@receiver(setting_changed)
def _clear_config(*, setting: str, **kwargs: Any) -> None:
    if setting == "TELEMETRY":
        get_config.cache_clear()
