"""Django settings for the unit tests: SQLite in memory, local-memory caches."""

import django

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "telemetry",
    "tests.telemetry.testapp",
    "fleetscope.demo.shop",
]
MIDDLEWARE = [
    "telemetry.middleware.TelemetryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.telemetry.testapp.urls"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    "sessions": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "s"},
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
TELEMETRY: dict[str, object] = {"EXPORT": False}

# --- Silk (telemetry/silk.py, docs/silk.md). Installed so its tables exist; its middleware is
# added only by tests/telemetry/test_silk.py (override_settings), so no other test is profiled.
from telemetry.silk import (  # noqa: E402
    IGNORE_QUERIES,
    SENSITIVE_KEYS,
    python_profiler,
    should_profile,
)

INSTALLED_APPS = [*INSTALLED_APPS, "silk", "telemetry.silk"]
SILKY_AUTHENTICATION = True
SILKY_AUTHORISATION = True
SILKY_INTERCEPT_FUNC = should_profile
SILKY_PYTHON_PROFILER_FUNC = python_profiler
SILKY_SENSITIVE_KEYS = SENSITIVE_KEYS
SILKY_IGNORE_QUERIES = IGNORE_QUERIES
SILKY_ANALYZE_QUERIES = False
SILKY_MAX_RECORDED_REQUESTS = 1000
SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT = 0

# Django 6.1 sends mail through MAILERS and warns when none is configured (the test
# environment swaps the backend for the locmem outbox either way).
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
