"""A minimal project using the telemetry app (PROBE_DIR: where its SQLite file lives;
PROBE_SILK=1 adds django-silk and the telemetry.silk sub-app)."""

import os

SECRET_KEY = "probe-only"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "telemetry",
]
if os.environ.get("PROBE_SILK") == "1":
    INSTALLED_APPS += ["silk", "telemetry.silk"]
    SILKY_AUTHENTICATION = True
    SILKY_AUTHORISATION = True
MIDDLEWARE = ["telemetry.middleware.TelemetryMiddleware"]
ROOT_URLCONF = "telemetry.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(os.environ["PROBE_DIR"], "db.sqlite3"),
    }
}
TELEMETRY = {"EXPORT": False}
