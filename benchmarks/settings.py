"""Django settings for one benchmark configuration, chosen by FLEETSCOPE_BENCH_CONFIG."""

import os

CONFIG = os.environ.get("FLEETSCOPE_BENCH_CONFIG", "bare")
SECRET_KEY = "benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "benchmarks.benchapp.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "benchmarks.benchapp"]
MIDDLEWARE: list[str] = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
LOGGING_CONFIG = None

if CONFIG.startswith("fleetscope"):
    INSTALLED_APPS.append("telemetry")
    MIDDLEWARE.insert(0, "telemetry.middleware.TelemetryMiddleware")
    TELEMETRY = {
        "EXPORT": False,  # the harness adds discarding exporters: same queueing cost, no I/O
        "TRACES_SAMPLE_RATE": 1.0 if CONFIG.endswith("sampled") else 0.0,
        "PROCESS_METRICS": False,
        "SILK_RATE": 0.0,
    }
if CONFIG in ("bare-auth", "fleetscope-silk"):
    # Silk's staff-only access needs sessions and auth; its baseline has them too.
    INSTALLED_APPS += ["django.contrib.auth", "django.contrib.sessions"]
    MIDDLEWARE += [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
if CONFIG == "fleetscope-silk":
    # Silk installed the way docs/silk.md says; these requests are not profiled.
    from telemetry.silk import python_profiler, should_profile

    INSTALLED_APPS += ["silk", "telemetry.silk"]
    MIDDLEWARE += ["silk.middleware.SilkyMiddleware"]
    SILKY_INTERCEPT_FUNC = should_profile
    SILKY_PYTHON_PROFILER_FUNC = python_profiler
    SILKY_AUTHENTICATION = True
    SILKY_AUTHORISATION = True
    SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT = 0
elif CONFIG == "django-prometheus":
    INSTALLED_APPS.append("django_prometheus")
    MIDDLEWARE = [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *MIDDLEWARE,
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ]
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.sqlite3"
    CACHES["default"]["BACKEND"] = "django_prometheus.cache.backends.locmem.LocMemCache"
