"""Fleetscope telemetry: the ProfileLink table (Silk profile <-> trace, node, worker, route)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="ProfileLink",
            fields=[
                (
                    "silk_request_id",
                    models.CharField(max_length=36, primary_key=True, serialize=False),
                ),
                ("trace_id", models.CharField(blank=True, db_index=True, max_length=32)),
                ("node", models.CharField(max_length=255)),
                ("worker", models.CharField(max_length=255)),
                ("route", models.CharField(max_length=255)),
                ("fingerprints", models.TextField(blank=True, default="")),
                ("created", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["route", "created"], name="telemetry_profile_route")
                ],
            },
        ),
    ]
