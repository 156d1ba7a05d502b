"""Settings of the resilience suite's nodes: the demo shop (admin, sessions, Silk) plus the
hostile views of `tests.resilience.input_urls`.

Environment (besides the demo's own FLEETSCOPE_DEMO_DIR / FLEETSCOPE_DEMO_DB):
FLEETSCOPE_TEST_TELEMETRY (JSON merged into TELEMETRY), FLEETSCOPE_TEST_BARE=1 (no
Fleetscope and no Silk at all: the baseline of timing comparisons), FLEETSCOPE_TEST_SILK_AUTH=0
(Silk without authentication), FLEETSCOPE_TEST_PG_URL (a PostgreSQL alias `pg`).
"""

import json
import os

from fleetscope.demo.env import database_from_url
from fleetscope.demo.settings import *  # noqa: F403
from fleetscope.demo.settings import DATABASES, INSTALLED_APPS, LOGGING, MIDDLEWARE, TELEMETRY

ROOT_URLCONF = "tests.resilience.input_urls"
# Fast logins: the suite signs users in many times, and hashing cost is not under test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CSRF_FAILURE_VIEW = "tests.resilience.input_views.csrf_failure"  # plain, like handler404
# The hostile views take bodies far larger than Django's 2.5 MB default.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024 * 1024

TELEMETRY = {
    **TELEMETRY,
    "SERVICE_NAME": "resilience",
    **json.loads(os.environ.get("FLEETSCOPE_TEST_TELEMETRY", "{}")),
}

# Everything the telemetry logger says, on the node's stderr (scanned for secrets).
_LOGGERS: dict[str, object] = dict(LOGGING["loggers"])  # type: ignore[call-overload]
LOGGING = {
    **LOGGING,
    "loggers": {
        **_LOGGERS,
        "telemetry": {"handlers": ["console"], "level": "DEBUG", "propagate": False},
    },
}

if os.environ.get("FLEETSCOPE_TEST_LEAN") == "1":
    # Fleetscope's middleware alone (the cardinality probe's 100k requests in one process).
    MIDDLEWARE = ["telemetry.middleware.TelemetryMiddleware"]
    # One connection for the whole loop, not a connect (and WAL pragma) per request.
    DATABASES = {**DATABASES, "default": {**DATABASES["default"], "CONN_MAX_AGE": None}}

if os.environ.get("FLEETSCOPE_TEST_SILK_AUTH") == "0":
    SILKY_AUTHENTICATION = False
    SILKY_AUTHORISATION = False

if os.environ.get("FLEETSCOPE_TEST_PG_URL"):
    DATABASES = {
        **DATABASES,
        "pg": {**database_from_url(os.environ["FLEETSCOPE_TEST_PG_URL"]), "CONN_MAX_AGE": 0},
    }

if os.environ.get("FLEETSCOPE_TEST_BARE") == "1":
    INSTALLED_APPS = [
        app for app in INSTALLED_APPS if app not in ("telemetry", "telemetry.silk", "silk")
    ]
    MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith(("telemetry.", "silk."))]
    SILKY_INTERCEPT_FUNC = None  # type: ignore[assignment]
    SILKY_PYTHON_PROFILER_FUNC = None  # type: ignore[assignment]
