"""Settings for probes/wrappers.py: two file-backed SQLite aliases, CONN_MAX_AGE from the env."""

import os
from pathlib import Path

from tests.settings import *  # noqa: F403

_DIR = Path(os.environ["PROBE_DIR"])
_AGE = int(os.environ.get("PROBE_CONN_MAX_AGE", "0"))
DATABASES = {
    alias: {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(_DIR / f"{alias}.sqlite3"),
        "CONN_MAX_AGE": _AGE,  # type: ignore[dict-item]
    }
    for alias in ("default", "other")
}
MIDDLEWARE = ["telemetry.middleware.TelemetryMiddleware"]
if os.environ.get("PROBE_USER_WRAPPER") == "1":
    MIDDLEWARE.append("tests.telemetry.testapp.middleware.QueryLoggerMiddleware")
TELEMETRY = {"EXPORT": False, "TRACES_SAMPLE_RATE": 0.0}
