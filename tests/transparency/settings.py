"""Django settings for the transparency job: Django's own tests/test_sqlite.py, plus caches.

runtests.py replaces INSTALLED_APPS and MIDDLEWARE with its own lists; the driver adds
Fleetscope to those lists in the instrumented run, so nothing about apps or middleware is
set here. The memcached and Redis entries make Django's cache tests run those backends
(tests/cache/tests.py looks them up by BACKEND in settings.CACHES).
"""

from __future__ import annotations

import os

# The extracted Django tests/ folder is first on sys.path (driver.py).
from test_sqlite import *  # noqa: F403

from tests.transparency.config import (
    INSTRUMENTED,
    MEMCACHED_ENV,
    MODE_ENV,
    REDIS_ENV,
)
from tests.transparency.config import TEST_RUNNER as RECORDING_RUNNER

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "memcached": {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": os.environ[MEMCACHED_ENV],
    },
    "redis": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ[REDIS_ENV],
    },
}

TEST_RUNNER = RECORDING_RUNNER  # records each test's outcome (django_runner.py)

if os.environ.get(MODE_ENV) == INSTRUMENTED:
    # Every trace sampled, so the traced SQL and cache paths run; the endpoint comes from
    # OTEL_EXPORTER_OTLP_ENDPOINT (a loopback port nobody listens on).
    TELEMETRY = {"SERVICE_NAME": "django-transparency", "TRACES_SAMPLE_RATE": 1.0}
