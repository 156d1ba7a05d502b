"""Django application config: configures the process's runtime and hooks SQL and caches."""

from __future__ import annotations

from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Fleetscope telemetry"

    def ready(self) -> None:
        # Runs again on every app registry reload (override_settings(INSTALLED_APPS=...)):
        # everything below is idempotent, and the runtime is reconfigured, not rebuilt.
        from . import checks  # noqa: F401  (registers the system checks)
        from .cache import instrument_caches
        from .conf import get_config
        from .db import instrument_databases
        from .runtime import configure

        config = get_config()
        configure(config)  # an unusable sampler samples nothing; check E002 says why
        instrument_databases()
        instrument_caches(config["CACHE_ALIASES"])
        if config["REQUEST_INSTRUMENTATION"] == "opentelemetry-instrumentation-django":
            from .contrib import instrument_contrib_django

            instrument_contrib_django()
