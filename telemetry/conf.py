"""The `TELEMETRY` settings dict merged over documented defaults, cached until settings change.

Precedence (docs/telemetry.md has the table): what describes one node or one deployment
comes from the environment first (`FLEETSCOPE_NODE`, the standard `OTEL_*` variables),
then from `TELEMETRY`, then from the defaults. A settings file shared by every node can
therefore never make two nodes report the same `host.name`. Nothing here writes
`os.environ`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .registry import DEFAULT_INSTRUMENTS

DEFAULTS: dict[str, Any] = {
    # Signal sources, by dotted path (telemetry.registry); drop an entry to switch it off.
    "INSTRUMENTS": list(DEFAULT_INSTRUMENTS),
    # Identity (the environment wins: FLEETSCOPE_NODE, OTEL_SERVICE_NAME,
    # OTEL_RESOURCE_ATTRIBUTES).
    "SERVICE_NAME": "django",
    "NODE": None,
    "ENVIRONMENT": None,
    "SERVICE_VERSION": None,
    # Export (the OTEL_EXPORTER_OTLP_* variables win).
    "EXPORT": True,
    "ENDPOINT": None,
    "PROTOCOL": None,
    "EXPORT_TIMEOUT_MS": 10_000,
    "EXIT_FLUSH_TIMEOUT_MS": 2_000,
    "METRIC_EXPORT_INTERVAL_MS": 10_000,
    "SPAN_QUEUE_SIZE": 2048,
    # Traces: parent-based ratio sampling unless OTEL_TRACES_SAMPLER says otherwise.
    "TRACES_SAMPLE_RATE": 0.1,
    # Server spans carry the route template; True adds the raw path, tokens scrubbed.
    "RECORD_URL_PATH": False,
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
    # Celery tasks: a queue wait above this (seconds) is clock skew, dropped and counted.
    "TASK_MAX_QUEUE_WAIT_S": 86_400,
}

PROTOCOLS = ("http/protobuf", "grpc")
REQUEST_MODES = ("fleetscope", "opentelemetry-instrumentation-django")
DEFAULT_ENDPOINTS = {"http/protobuf": "http://127.0.0.1:4318", "grpc": "http://127.0.0.1:4317"}
SIGNALS = ("traces", "metrics")
_TRUE = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True)
class ExportTarget:
    """Where and how one signal is exported: resolved from OTEL_EXPORTER_OTLP_* and TELEMETRY.

    `url` is the full URL for OTLP/HTTP (`…/v1/traces`) and the base URL for gRPC.
    """

    signal: str
    protocol: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 10.0
    compression: str = "none"
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None
    insecure: bool | None = None
    sources: tuple[tuple[str, str], ...] = ()  # field -> where its value came from

    @property
    def header_names(self) -> list[str]:
        """Header names only: their values are credentials and are never printed."""
        return [name for name, _ in self.headers]


@dataclass(frozen=True)
class Config:
    """Effective configuration: the environment, then TELEMETRY, then DEFAULTS."""

    raw: dict[str, Any]
    service_name: str
    node: str
    environment: str | None
    service_version: str | None
    traces: ExportTarget
    metrics: ExportTarget
    export_traces: bool
    export_metrics: bool
    metric_export_interval_ms: int
    sampler: str
    sampler_arg: str | None
    sources: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # values that could not be used (reported by checks)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def with_sampler(self, sampler: str, arg: str | None = None) -> Config:
        return replace(self, sampler=sampler, sampler_arg=arg)

    @property
    def endpoint(self) -> str:
        """The traces endpoint's base, for display (metrics may differ: see `metrics`)."""
        return self.traces.url

    @property
    def protocol(self) -> str:
        return self.traces.protocol

    @property
    def exporting(self) -> bool:
        return self.export_traces or self.export_metrics

    @property
    def slow_query_seconds(self) -> float:
        return float(self.raw["SLOW_QUERY_MS"]) / 1000.0


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value.strip() if value and value.strip() else None


def _resource_attributes(environ: Mapping[str, str]) -> dict[str, str]:
    """OTEL_RESOURCE_ATTRIBUTES as a dict (the SDK's own parsing: key=value, URL-encoded)."""
    raw = _env(environ, "OTEL_RESOURCE_ATTRIBUTES")
    if raw is None:
        return {}
    from urllib.parse import unquote

    attributes: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    return attributes


def _first(*candidates: tuple[str, Any]) -> tuple[str, Any]:
    """(source, value) of the first candidate whose value is set."""
    for source, value in candidates:
        if value is not None and value != "":
            return source, value
    return candidates[-1]


def _export_target(
    signal: str, raw: dict[str, Any], environ: Mapping[str, str], problems: list[str]
) -> ExportTarget:
    upper = signal.upper()
    specific = f"OTEL_EXPORTER_OTLP_{upper}_"
    general = "OTEL_EXPORTER_OTLP_"
    sources: list[tuple[str, str]] = []

    def pick(suffix: str, setting: str | None = None, default: Any = None) -> tuple[str, Any]:
        candidates: list[tuple[str, Any]] = [
            (specific + suffix, _env(environ, specific + suffix)),
            (general + suffix, _env(environ, general + suffix)),
        ]
        if setting is not None:
            candidates.append((f"TELEMETRY['{setting}']", raw.get(setting)))
        candidates.append(("default", default))
        source, value = _first(*candidates)
        sources.append((suffix.lower(), source))
        return source, value

    _, protocol = pick("PROTOCOL", "PROTOCOL", "http/protobuf")
    protocol = str(protocol)
    source, endpoint = pick("ENDPOINT", "ENDPOINT", None)
    if endpoint is None:
        url = DEFAULT_ENDPOINTS.get(protocol, DEFAULT_ENDPOINTS["http/protobuf"])
        sources[-1] = ("endpoint", f"default for {protocol}")
        if protocol == "http/protobuf":
            url = f"{url}/v1/{signal}"
    elif source.startswith(specific) or protocol == "grpc":
        url = str(endpoint)  # a signal-specific OTLP/HTTP endpoint is a full URL
    else:
        url = f"{str(endpoint).rstrip('/')}/v1/{signal}"
    _, headers_raw = pick("HEADERS")
    headers: tuple[tuple[str, str], ...] = ()
    if headers_raw:
        from opentelemetry.util.re import parse_env_headers

        headers = tuple(parse_env_headers(str(headers_raw), liberal=True).items())
    timeout_source, timeout_raw = pick(
        "TIMEOUT", "EXPORT_TIMEOUT_MS", DEFAULTS["EXPORT_TIMEOUT_MS"]
    )
    try:
        timeout_s = float(timeout_raw) / 1000.0
        if timeout_s <= 0:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(
            f"{timeout_source} = {timeout_raw!r} is not a positive number of milliseconds."
        )
        timeout_s = DEFAULTS["EXPORT_TIMEOUT_MS"] / 1000.0
    _, compression = pick("COMPRESSION", None, "none")
    _, certificate = pick("CERTIFICATE")
    _, client_key = pick("CLIENT_KEY")
    _, client_certificate = pick("CLIENT_CERTIFICATE")
    _, insecure_raw = pick("INSECURE")
    return ExportTarget(
        signal=signal,
        protocol=protocol,
        url=url,
        headers=headers,
        timeout_s=timeout_s,
        compression=str(compression).lower(),
        certificate=certificate,
        client_key=client_key,
        client_certificate=client_certificate,
        insecure=None if insecure_raw is None else str(insecure_raw).lower() in _TRUE,
        sources=tuple(sources),
    )


def build_config(user: dict[str, Any] | None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    raw = {**DEFAULTS, **(user if isinstance(user, dict) else {})}
    problems: list[str] = []
    resource = _resource_attributes(environ)
    sources: dict[str, str] = {}

    def choose(name: str, *candidates: tuple[str, Any]) -> Any:
        source, value = _first(*candidates)
        sources[name] = source
        return value

    service_name = choose(
        "service.name",
        ("OTEL_SERVICE_NAME", _env(environ, "OTEL_SERVICE_NAME")),
        ("OTEL_RESOURCE_ATTRIBUTES", resource.get("service.name")),
        ("TELEMETRY['SERVICE_NAME']", raw["SERVICE_NAME"]),
        ("default", "django"),
    )
    node = choose(
        "host.name",
        ("FLEETSCOPE_NODE", _env(environ, "FLEETSCOPE_NODE")),
        ("OTEL_RESOURCE_ATTRIBUTES", resource.get("host.name")),
        ("TELEMETRY['NODE']", raw["NODE"]),
        ("hostname", socket.gethostname()),
    )
    environment = choose(
        "deployment.environment.name",
        ("OTEL_RESOURCE_ATTRIBUTES", resource.get("deployment.environment.name")),
        ("TELEMETRY['ENVIRONMENT']", raw["ENVIRONMENT"]),
        ("default", None),
    )
    version = choose(
        "service.version",
        ("OTEL_RESOURCE_ATTRIBUTES", resource.get("service.version")),
        ("TELEMETRY['SERVICE_VERSION']", raw["SERVICE_VERSION"]),
        ("default", None),
    )
    interval_env = _env(environ, "OTEL_METRIC_EXPORT_INTERVAL")
    interval: Any = raw["METRIC_EXPORT_INTERVAL_MS"]
    sources["metric export interval"] = "TELEMETRY['METRIC_EXPORT_INTERVAL_MS']"
    if interval_env is not None:
        if interval_env.isdigit() and int(interval_env) > 0:
            interval = int(interval_env)
            sources["metric export interval"] = "OTEL_METRIC_EXPORT_INTERVAL"
        else:
            problems.append(
                f"OTEL_METRIC_EXPORT_INTERVAL = {interval_env!r} is not a positive number of "
                "milliseconds; TELEMETRY['METRIC_EXPORT_INTERVAL_MS'] is used instead."
            )
    sdk_disabled = (_env(environ, "OTEL_SDK_DISABLED") or "").lower() == "true"
    export = bool(raw["EXPORT"]) and not sdk_disabled
    sampler = choose(
        "sampler",
        ("OTEL_TRACES_SAMPLER", _env(environ, "OTEL_TRACES_SAMPLER")),
        ("default", "parentbased_traceidratio"),
    )
    sampler_arg = choose(
        "sampler argument",
        ("OTEL_TRACES_SAMPLER_ARG", _env(environ, "OTEL_TRACES_SAMPLER_ARG")),
        ("TELEMETRY['TRACES_SAMPLE_RATE']", str(raw["TRACES_SAMPLE_RATE"])),
    )
    if sdk_disabled:
        sampler, sampler_arg = "always_off", None
        sources["sampler"] = "OTEL_SDK_DISABLED"
    traces = _export_target("traces", raw, environ, problems)
    metrics = _export_target("metrics", raw, environ, problems)
    return Config(
        raw=raw,
        service_name=str(service_name),
        node=str(node),
        environment=None if environment is None else str(environment),
        service_version=None if version is None else str(version),
        traces=traces,
        metrics=metrics,
        export_traces=export and (_env(environ, "OTEL_TRACES_EXPORTER") or "otlp") != "none",
        export_metrics=export and (_env(environ, "OTEL_METRICS_EXPORTER") or "otlp") != "none",
        metric_export_interval_ms=_interval(interval),
        sampler=str(sampler),
        sampler_arg=sampler_arg,
        sources=sources,
        problems=tuple(problems),
    )


def _interval(value: Any) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return int(DEFAULTS["METRIC_EXPORT_INTERVAL_MS"])  # the check reports it (E006)


@cache
def get_config() -> Config:
    return build_config(getattr(settings, "TELEMETRY", None))


@receiver(setting_changed)
def _clear_config(*, setting: str, **kwargs: Any) -> None:
    if setting == "TELEMETRY":
        get_config.cache_clear()
