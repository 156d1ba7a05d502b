"""Fleetscope telemetry: no tables.

Until 0.1 this migration created `telemetry_profilelink`. The table now belongs to the
optional sub-app `telemetry.silk` (its migration 0001 adopts an existing table, with its
rows, or creates it), so a project without Silk has no Silk table. An install that already
applied this migration keeps its table; nothing here touches it.
"""

from django.db import migrations


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = []
