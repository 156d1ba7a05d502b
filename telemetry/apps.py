"""Django application config: configures the process's runtime and installs the instruments."""

from __future__ import annotations

from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Fleetscope telemetry"

    def ready(self) -> None:
        # Runs again on every app registry reload (override_settings(INSTALLED_APPS=...)):
        # everything below is idempotent, and the runtime is reconfigured, not rebuilt.
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            registry,
        )
        from .conf import get_config
        from .runtime import configure

        config = get_config()
        runtime = configure(config)  # an unusable sampler samples nothing; check E002 says why
        registry.apply(runtime, config)  # TELEMETRY["INSTRUMENTS"]
