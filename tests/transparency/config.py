"""Names shared by the job's parent process, the driver it starts, and the Django settings."""

from __future__ import annotations

BASELINE = "baseline"
INSTRUMENTED = "instrumented"
MODES = (BASELINE, INSTRUMENTED)

# Environment of each run (set by runner.py, read by settings.py and django_runner.py).
MODE_ENV = "FLEETSCOPE_TRANSPARENCY_MODE"
MEMCACHED_ENV = "FLEETSCOPE_TRANSPARENCY_MEMCACHED"  # host:port
REDIS_ENV = "FLEETSCOPE_TRANSPARENCY_REDIS"  # redis:// URL

SETTINGS_MODULE = "tests.transparency.settings"
TEST_RUNNER = "tests.transparency.django_runner.RecordingRunner"

# What a user adds to install Fleetscope (docs/telemetry.md).
TELEMETRY_APP = "telemetry"
TELEMETRY_MIDDLEWARE = "telemetry.middleware.TelemetryMiddleware"

# Both runs send one request through the whole middleware stack before the tests, as a
# server does on its first request: in the instrumented run it starts export (to a port
# nobody listens on), so the exit delay measures a node whose collector is unreachable.
FIRST_REQUEST_PATH = "/fleetscope-transparency-first-request/"

# Test classes that must run (not be skipped) in both runs: the memcached and Redis backends.
REQUIRED_CLASSES = (
    "cache.tests.PyMemcacheCacheTests",
    "cache.tests.RedisCacheTests",
)
