"""Settings of the gunicorn node the integration tests run: the telemetry test app, exporting."""

import os

from tests.settings import *  # noqa: F403

_DIR = os.environ["FLEETSCOPE_TEST_NODE_DIR"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(_DIR, "db.sqlite3")},
    "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(_DIR, "other.sqlite3")},
}
CACHES = {
    # File-based: shared by the workers, so hits and misses do not depend on which one serves.
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.path.join(_DIR, "cache"),
    },
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"},
}
TELEMETRY = {
    "SERVICE_NAME": "it-node",
    "SLOW_QUERY_MS": 50,
    "N_PLUS_ONE_THRESHOLD": 5,
}

# Celery (tests/integration/celery_app.py), when a test gives the node a broker.
CELERY_BROKER_URL = os.environ.get("FLEETSCOPE_TEST_BROKER_URL", "memory://")
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
