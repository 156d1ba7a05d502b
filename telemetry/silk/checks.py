"""System checks for a django-silk setup that would be unsafe or costly on a production fleet.

`silk_checks(messages)` is meant to be called from `telemetry.checks._silk`, next to
telemetry.W010 (Silk without authentication).
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Warning

SILK_MIDDLEWARE = "silk.middleware.SilkyMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
TELEMETRY_MIDDLEWARE = "telemetry.middleware.TelemetryMiddleware"


def silk_checks(messages: list[CheckMessage]) -> None:
    if not apps.is_installed("silk"):
        return
    if getattr(settings, "SILKY_INTERCEPT_FUNC", None) is None:
        messages.append(
            Warning(
                "Silk records requests without Fleetscope's sampling: every request (or "
                "SILKY_INTERCEPT_PERCENT of them) pays Silk's database writes, and profiles are "
                "not linked to traces.",
                hint="from telemetry.silk import should_profile; SILKY_INTERCEPT_FUNC = "
                "should_profile (see docs/silk.md).",
                id="telemetry.W011",
            )
        )
    if getattr(settings, "SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT", 10) != 0:
        messages.append(
            Warning(
                "Silk deletes old profiles inside requests (SILKY_MAX_RECORDED_REQUESTS_CHECK_"
                "PERCENT is not 0): a random request pays a large DELETE.",
                hint="Set SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT = 0 and run `manage.py "
                "telemetry_silk_gc` from a timer.",
                id="telemetry.W012",
            )
        )
    if getattr(settings, "SILKY_ANALYZE_QUERIES", False):
        messages.append(
            Warning(
                "SILKY_ANALYZE_QUERIES runs every recorded statement a second time under EXPLAIN "
                "ANALYZE, which on PostgreSQL executes writes twice.",
                hint="Set SILKY_ANALYZE_QUERIES = False.",
                id="telemetry.W013",
            )
        )
    if (
        getattr(settings, "SILKY_PYTHON_PROFILER", False)
        and getattr(settings, "SILKY_PYTHON_PROFILER_FUNC", None) is None
    ):
        messages.append(
            Warning(
                "SILKY_PYTHON_PROFILER runs cProfile in every recorded request.",
                hint="from telemetry.silk import python_profiler; SILKY_PYTHON_PROFILER_FUNC = "
                "python_profiler (only requests staff ask to profile).",
                id="telemetry.W014",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if SILK_MIDDLEWARE in middleware:
        silk = middleware.index(SILK_MIDDLEWARE)
        before = middleware[:silk]
        if AUTH_MIDDLEWARE not in before or TELEMETRY_MIDDLEWARE not in before:
            messages.append(
                Warning(
                    "SilkyMiddleware comes before TelemetryMiddleware or AuthenticationMiddleware: "
                    "Silk cannot see whether the trace is sampled or whether a staff user asked "
                    "for a profile.",
                    hint=f"Put '{SILK_MIDDLEWARE}' right after '{AUTH_MIDDLEWARE}'.",
                    id="telemetry.W015",
                )
            )
