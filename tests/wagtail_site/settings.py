"""A minimal Wagtail site for tests/telemetry/test_wagtail_hooks.py: Wagtail's catch-all URL
pattern, two page types, the telemetry app, and one plain Django path for comparison."""

import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "wagtail",
    "taggit",
    "modelcluster",
    "telemetry",
    "tests.wagtail_site",
]
MIDDLEWARE = ["telemetry.middleware.TelemetryMiddleware"]
ROOT_URLCONF = "tests.wagtail_site.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("FLEETSCOPE_WAGTAIL_DB", ":memory:"),
    }
}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "/static/"
WAGTAIL_SITE_NAME = "Fleetscope test site"
WAGTAILADMIN_BASE_URL = "http://testserver"
TELEMETRY = {"EXPORT": False, "SERVICE_NAME": "wagtail-site"}
