"""System checks with stable ids for the misconfigurations users actually make."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .conf import DEFAULTS, PROTOCOLS, REQUEST_MODES, build_config
from .runtime import ConfigurationError, build_sampler

MIDDLEWARE_PATH = "telemetry.middleware.TelemetryMiddleware"


def _middleware(messages: list[CheckMessage]) -> None:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE_PATH not in middleware:
        messages.append(
            Warning(
                "TelemetryMiddleware is not in MIDDLEWARE: requests are not measured and N+1 / "
                "queries-per-request cannot be attributed to routes.",
                hint=f"Add '{MIDDLEWARE_PATH}' as the first entry of MIDDLEWARE.",
                id="telemetry.W001",
            )
        )
    elif middleware[0] != MIDDLEWARE_PATH:
        messages.append(
            Warning(
                "TelemetryMiddleware is not the first middleware: time spent in the middleware "
                f"before it ({middleware[0]}) is not measured.",
                hint=f"Move '{MIDDLEWARE_PATH}' to the top of MIDDLEWARE.",
                id="telemetry.W002",
            )
        )


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
    endpoint = urlsplit(config.endpoint)
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
        messages.append(
            Error(
                f"OTLP endpoint {config.endpoint!r} cannot be parsed as http(s)://host:port.",
                hint="Set OTEL_EXPORTER_OTLP_ENDPOINT or TELEMETRY['ENDPOINT'], e.g. "
                "http://127.0.0.1:4318.",
                id="telemetry.E001",
            )
        )
    else:
        try:
            endpoint.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            messages.append(
                Error(
                    f"OTLP endpoint {config.endpoint!r} has an invalid port.", id="telemetry.E001"
                )
            )
    try:
        build_sampler(config)
    except ConfigurationError as exc:
        messages.append(Error(str(exc), id="telemetry.E002"))
    if config.protocol not in PROTOCOLS:
        messages.append(
            Error(
                f"OTLP protocol {config.protocol!r} is not supported.",
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
    for key, minimum in (
        ("SLOW_QUERY_MS", 0),
        ("N_PLUS_ONE_THRESHOLD", 2),
        ("MAX_FINGERPRINTS", 1),
        ("METRIC_EXPORT_INTERVAL_MS", 100),
    ):
        value = config[key]
        if not isinstance(value, int | float) or value < minimum:
            messages.append(
                Error(
                    f"TELEMETRY['{key}'] = {value!r} must be a number >= {minimum}.",
                    id="telemetry.E006",
                )
            )
    aliases = config["CACHE_ALIASES"]
    if aliases is not None:
        wanted = {aliases} if isinstance(aliases, str) else set(aliases)
        unknown_aliases = sorted(wanted - set(getattr(settings, "CACHES", {})))
        if unknown_aliases:
            messages.append(
                Warning(
                    f"TELEMETRY['CACHE_ALIASES'] names cache alias(es) not in CACHES: "
                    f"{', '.join(unknown_aliases)}; they are not instrumented.",
                    hint="Use aliases from CACHES, or None for all of them.",
                    id="telemetry.W004",
                )
            )
    rate = config["SILK_RATE"]
    if not isinstance(rate, int | float) or not 0 <= rate <= 1:
        messages.append(
            Error(f"TELEMETRY['SILK_RATE'] = {rate!r} must be in [0, 1].", id="telemetry.E007")
        )


def _silk(messages: list[CheckMessage]) -> None:
    if not apps.is_installed("silk"):
        return
    if not (
        getattr(settings, "SILKY_AUTHENTICATION", False)
        and getattr(settings, "SILKY_AUTHORISATION", False)
    ):
        messages.append(
            Warning(
                "django-silk is installed without SILKY_AUTHENTICATION and SILKY_AUTHORISATION: "
                "anyone can read profiles (SQL, headers, timings) at /silk/.",
                hint="Set SILKY_AUTHENTICATION = True and SILKY_AUTHORISATION = True (staff only).",
                id="telemetry.W010",
            )
        )
    from .silk_checks import silk_checks

    silk_checks(messages)


@register()
def telemetry_checks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    _middleware(messages)
    _settings(messages)
    _silk(messages)
    return messages
