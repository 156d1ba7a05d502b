"""The ProfileLink table (Silk profile <-> trace, node, worker, route).

Installs upgraded from Fleetscope 0.1 already have it (created by `telemetry` 0001): the
table is adopted as it is, rows included; otherwise it is created.
"""

from typing import Any

import django.utils.timezone
from django.db import migrations, models

TABLE = "telemetry_profilelink"


def create_if_missing(apps: Any, schema_editor: Any) -> None:
    if TABLE not in schema_editor.connection.introspection.table_names():
        schema_editor.create_model(apps.get_model("telemetry_silk", "ProfileLink"))


def drop(apps: Any, schema_editor: Any) -> None:
    if TABLE in schema_editor.connection.introspection.table_names():
        schema_editor.delete_model(apps.get_model("telemetry_silk", "ProfileLink"))


class Migration(migrations.Migration):
    initial = True

    dependencies = [("telemetry", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
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
                        (
                            "created",
                            models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                        ),
                    ],
                    options={
                        "db_table": TABLE,
                        "indexes": [
                            models.Index(
                                fields=["route", "created"], name="telemetry_profile_route"
                            )
                        ],
                    },
                ),
            ],
        ),
        # After the state has the model, so that the historical model can be built.
        migrations.RunPython(create_if_missing, drop),
    ]
