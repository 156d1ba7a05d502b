"""Django application config: builds the runtime and hooks SQL and caches when the app is ready."""

from __future__ import annotations

from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Fleetscope telemetry"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .cache import instrument_caches
        from .conf import get_config
        from .db import instrument_databases
        from .runtime import ConfigurationError, Runtime, activate

        config = get_config()
        try:
            runtime = Runtime(config)
        except ConfigurationError:
            # The system check reports it (telemetry.E002); meanwhile sample nothing.
            runtime = Runtime(config.with_sampler("always_off"))
        activate(runtime)
        instrument_databases()
        instrument_caches(config["CACHE_ALIASES"])
        if config["REQUEST_INSTRUMENTATION"] == "opentelemetry-instrumentation-django":
            from .contrib import instrument_contrib_django

            instrument_contrib_django()
