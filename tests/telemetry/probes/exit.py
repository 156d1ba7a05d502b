"""Runs one query with export on, prints a marker, and exits: tests time the exit.

Environment: PROBE_EXPORT ("1" or "0"), OTEL_EXPORTER_OTLP_ENDPOINT and friends.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = (
        "tests.telemetry.probes.export_settings"
        if os.environ.get("PROBE_EXPORT") == "1"
        else "tests.settings"
    )
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    from telemetry.runtime import get_runtime

    runtime = get_runtime()
    runtime.ensure_started()  # already started by the query; explicit for older versions
    if os.environ.get("PROBE_EXPORT") == "1":
        time.sleep(0.3)  # let the export thread try once
    print(f"done {time.time():.6f}", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
