"""Django settings of the in-process benchmark; FLEETSCOPE_BENCH_CONFIG picks the configuration."""

import os

from benchmarks import setups

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
    setups.add_fleetscope(
        globals(),
        {
            "EXPORT": False,  # the harness adds its own exporters (benchmarks/worker.py)
            "TRACES_SAMPLE_RATE": 1.0 if "sampled" in CONFIG else 0.0,
            "PROCESS_METRICS": False,
            "SILK_RATE": 0.0,
        },
    )
if CONFIG == "bare-auth":
    setups.add_auth(globals())  # the Silk configuration's baseline
elif CONFIG == "fleetscope-silk":
    setups.add_fleetscope_silk(globals())  # these requests are not profiled (SILK_RATE 0)
elif CONFIG == "django-prometheus":
    setups.add_django_prometheus(globals())
