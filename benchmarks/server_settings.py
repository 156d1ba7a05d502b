"""Django settings of the real-server benchmark: one app, instrumented as its configuration says.

Every configuration is the same small app with sessions and auth (what real apps have and
what Silk's staff-only pages need), the benchmark views and the demo shop, on a SQLite
file (FLEETSCOPE_BENCH_DB) with persistent connections and the local-memory cache. Only
the instrumentation, named by FLEETSCOPE_BENCH_SETUP; "migrate" installs every app, to build
the database once.
"""

import os

from benchmarks import setups

SETUP = os.environ.get("FLEETSCOPE_BENCH_SETUP", "bare")
SAMPLE_RATE = float(os.environ.get("FLEETSCOPE_BENCH_SAMPLE_RATE", "0.1"))
SETUPS = (
    "bare",
    "fleetscope",
    "fleetscope-silk",
    "fleetscope-contrib",
    "otel",
    "django-prometheus",
    "silk",
    "migrate",
)
if SETUP not in SETUPS:
    raise ValueError(f"FLEETSCOPE_BENCH_SETUP={SETUP!r}: use one of {', '.join(SETUPS)}")

SECRET_KEY = "benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "benchmarks.server_urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "benchmarks.benchapp", "fleetscope.demo.shop"]
MIDDLEWARE: list[str] = []
setups.add_auth(globals())
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("FLEETSCOPE_BENCH_DB", "bench.sqlite3"),
        "CONN_MAX_AGE": None,
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

_TELEMETRY = {
    "SERVICE_NAME": "bench",  # OTEL_SERVICE_NAME (set per configuration by the harness) wins
    "TRACES_SAMPLE_RATE": SAMPLE_RATE,
}
if SETUP == "fleetscope":
    setups.add_fleetscope(globals(), _TELEMETRY)
elif SETUP == "fleetscope-contrib":
    setups.add_fleetscope(
        globals(),
        {**_TELEMETRY, "REQUEST_INSTRUMENTATION": "opentelemetry-instrumentation-django"},
    )
elif SETUP == "fleetscope-silk":
    setups.add_fleetscope(globals(), _TELEMETRY)  # SILK_RATE: the default
    setups.add_fleetscope_silk(globals())
elif SETUP == "django-prometheus":
    setups.add_django_prometheus(globals())
elif SETUP == "silk":
    setups.add_stock_silk(globals())
elif SETUP == "migrate":
    INSTALLED_APPS += ["telemetry", "silk"]
