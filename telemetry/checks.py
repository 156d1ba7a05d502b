"""System checks with stable ids for the misconfigurations users actually make."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from . import registry
from .conf import (
    DEFAULTS,
    NUMBERS,
    PROTOCOLS,
    REQUEST_MODES,
    ExportTarget,
    build_config,
    invalid_settings,
)
from .requests import MIDDLEWARE_PATH
from .runtime import ConfigurationError, build_sampler

__all__ = ["MIDDLEWARE_PATH", "telemetry_checks"]


def _settings(messages: list[CheckMessage]) -> None:
    user: dict[str, Any] = getattr(settings, "TELEMETRY", None) or {}
    if not isinstance(user, dict):
        messages.append(Error("TELEMETRY must be a dict.", id="telemetry.E005"))
        return
    unknown = sorted(set(user) - set(DEFAULTS))
    if unknown:
        messages.append(
            Warning(
                f"Unknown TELEMETRY key(s): {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="telemetry.W003",
            )
        )
    config = build_config(user)
    for problem in config.problems:
        messages.append(Warning(problem, id="telemetry.W005"))
    for target in _distinct(config.traces, config.metrics, "endpoint"):
        _endpoint(target, messages)
    try:
        build_sampler(config)
    except ConfigurationError as exc:
        messages.append(Error(str(exc), id="telemetry.E002"))
    for target in _distinct(config.traces, config.metrics, "protocol"):
        if target.protocol not in PROTOCOLS:
            messages.append(
                Error(
                    f"OTLP protocol {target.protocol!r} is not supported.",
                    hint=f"Use one of {', '.join(PROTOCOLS)} (OTEL_EXPORTER_OTLP_PROTOCOL or "
                    "TELEMETRY['PROTOCOL']).",
                    id="telemetry.E003",
                )
            )
    if config["REQUEST_INSTRUMENTATION"] not in REQUEST_MODES:
        messages.append(
            Error(
                f"TELEMETRY['REQUEST_INSTRUMENTATION'] = {config['REQUEST_INSTRUMENTATION']!r} is "
                "not supported.",
                hint=f"Use one of {', '.join(REQUEST_MODES)}.",
                id="telemetry.E004",
            )
        )
    elif config["REQUEST_INSTRUMENTATION"] != "fleetscope":
        opt_in = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
        if not {"http", "http/dup"} & {part.strip() for part in opt_in.split(",")}:
            messages.append(
                Error(
                    "The contrib Django instrumentation reports the old HTTP conventions "
                    "(`http.server.duration` in ms) unless the process starts with "
                    "OTEL_SEMCONV_STABILITY_OPT_IN=http; Fleetscope's dashboards read "
                    "`http.server.request.duration` (s).",
                    hint="Set OTEL_SEMCONV_STABILITY_OPT_IN=http in the environment of every "
                    "node (Fleetscope never writes the environment).",
                    id="telemetry.E008",
                )
            )
    if config["ROUTE_NAME"] is not None:
        from .routes import load_namer

        try:
            load_namer(config["ROUTE_NAME"])
        except (ImportError, TypeError) as exc:
            messages.append(
                Error(
                    f"TELEMETRY['ROUTE_NAME'] = {config['ROUTE_NAME']!r} cannot be used: {exc}",
                    hint="Give the dotted path of a callable taking the request and returning "
                    "a route name or None, e.g. 'myproject.telemetry.route_name'.",
                    id="telemetry.E010",
                )
            )
    invalid = invalid_settings(user)
    for key, problem in invalid.items():
        default = DEFAULTS[key]
        ids = {"SILK_RATE": "telemetry.E007", "INSTRUMENTS": "telemetry.E009"}
        messages.append(
            Error(
                f"{problem}; the default ({default!r}) is used until it is fixed.",
                id=ids.get(key, "telemetry.E006" if key in NUMBERS else "telemetry.E011"),
            )
        )


def _distinct(traces: ExportTarget, metrics: ExportTarget, field: str) -> list[ExportTarget]:
    """Both targets when `field` came from a signal-specific variable; else one (one mistake,
    one message)."""
    if dict(metrics.sources).get(field, "").startswith("OTEL_EXPORTER_OTLP_METRICS_"):
        return [traces, metrics]
    if dict(traces.sources).get(field, "").startswith("OTEL_EXPORTER_OTLP_TRACES_"):
        return [traces, metrics]
    return [traces]


def _endpoint(target: ExportTarget, messages: list[CheckMessage]) -> None:
    source = dict(target.sources).get("endpoint", "the endpoint")
    parts = urlsplit(target.url)
    hint = (
        f"Set {source} to a URL such as http://127.0.0.1:4318 (OTLP/HTTP) or "
        "http://127.0.0.1:4317 (gRPC)."
    )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        messages.append(
            Error(
                f"OTLP {target.signal} endpoint {target.url!r} (from {source}) cannot be parsed "
                "as http(s)://host:port.",
                hint=hint,
                id="telemetry.E001",
            )
        )
        return
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        messages.append(
            Error(
                f"OTLP {target.signal} endpoint {target.url!r} (from {source}) has an invalid "
                "port.",
                hint=hint,
                id="telemetry.E001",
            )
        )


@register()
def telemetry_checks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    _settings(messages)
    _instruments(messages)
    return messages


def _instruments(messages: list[CheckMessage]) -> None:
    user = getattr(settings, "TELEMETRY", None)
    config = build_config(user if isinstance(user, dict) else None)
    for path in registry.listed(config):
        try:
            instrument = registry.load(path)
        except registry.InstrumentError as exc:
            messages.append(Error(str(exc), id="telemetry.E009"))
            continue
        messages.extend(instrument.checks(config))
