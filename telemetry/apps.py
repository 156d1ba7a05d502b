"""Django application config for the telemetry app."""

from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Fleetscope telemetry"
