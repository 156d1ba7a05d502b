"""`telemetry.silk`: the optional Silk sub-app (profile links, their table, views, clean-up).

Add "telemetry.silk" to INSTALLED_APPS, after "telemetry" and "silk", to link Silk profiles
to traces, routes and fingerprints (docs/silk.md). Without it nothing of this sub-app is
loaded and the project has no Silk table.
"""

from __future__ import annotations

from django.apps import AppConfig


class TelemetrySilkConfig(AppConfig):
    name = "telemetry.silk"
    label = "telemetry_silk"
    verbose_name = "Fleetscope Silk profiles"
    default_auto_field = "django.db.models.AutoField"
