"""Django settings of the demo shop that Fleetscope's demo fleet runs on every node.

Environment: DATABASE_URL (postgres://...) else SQLite at FLEETSCOPE_DEMO_DB or
``<FLEETSCOPE_DEMO_DIR or cwd>/demo.sqlite3``; REDIS_URL else a local-memory cache;
DJANGO_SECRET_KEY; FLEETSCOPE_SLOW_QUERY_MS. The node name (FLEETSCOPE_NODE) is read
by the telemetry app itself.
"""

import os

import django

from fleetscope.demo import env

BASE_DIR = env.demo_dir()

# A demo default on purpose: the shop holds no real data. Set DJANGO_SECRET_KEY anywhere public.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-secret-key-change-me")
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "telemetry",
    # Silk: "silk" is added by the Silk block at the end of this file.
    "fleetscope.demo.shop",
]

MIDDLEWARE = [
    # First, so the request span and timings cover every other middleware.
    "telemetry.middleware.TelemetryMiddleware",
    # Silk: its middleware goes after AuthenticationMiddleware (Silk block at the end).
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fleetscope.demo.urls"
WSGI_APPLICATION = "fleetscope.demo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = env.databases()
CACHES = env.caches()

# --- Celery (docs/demo.md): background tasks when the launcher gives the nodes a broker
# (FLEETSCOPE_DEMO_BROKER_URL, its Redis); without one the views queue nothing.
FLEETSCOPE_DEMO_TASKS = bool(os.environ.get("FLEETSCOPE_DEMO_BROKER_URL"))
CELERY_BROKER_URL = os.environ.get("FLEETSCOPE_DEMO_BROKER_URL") or "memory://"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ROUTES = {"fleetscope.demo.shop.tasks.build_sales_report": {"queue": "reports"}}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The confirmation e-mails go nowhere. Django 6.1 replaces EMAIL_BACKEND by MAILERS (and
# warns about the old setting).
_DUMMY_MAIL = "django.core.mail.backends.dummy.EmailBackend"
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _DUMMY_MAIL}}
else:
    EMAIL_BACKEND = _DUMMY_MAIL

TELEMETRY = {
    "SERVICE_NAME": "demo-shop",
    "SLOW_QUERY_MS": int(os.environ.get("FLEETSCOPE_SLOW_QUERY_MS", "100")),
    "N_PLUS_ONE_THRESHOLD": 5,
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Quiet: warnings and real errors only. The /flaky/ view's deliberate 500s would
# otherwise print a traceback for one request in ten under load.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "drop_deliberate_failures": {"()": "fleetscope.demo.shop.errors.DropDeliberateFailures"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["drop_deliberate_failures"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # 404s are expected traffic in a demo, not warnings.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

# --- Silk (docs/silk.md): profiles of a share of sampled requests, linked from traces and
# dashboards. On unless FLEETSCOPE_SILK=0; FLEETSCOPE_SILK_RATE sets TELEMETRY["SILK_RATE"].
if os.environ.get("FLEETSCOPE_SILK", "1") != "0":
    from django.core.exceptions import ImproperlyConfigured

    from telemetry.silk import IGNORE_QUERIES, SENSITIVE_KEYS, python_profiler, should_profile

    INSTALLED_APPS = [*INSTALLED_APPS, "silk", "telemetry.silk"]
    # After authentication: a staff user's explicit profile request needs request.user.
    _auth = MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
    MIDDLEWARE = [*MIDDLEWARE[:_auth], "silk.middleware.SilkyMiddleware", *MIDDLEWARE[_auth:]]
    _rate = os.environ.get("FLEETSCOPE_SILK_RATE", "0.01")
    try:
        TELEMETRY["SILK_RATE"] = float(_rate)
    except ValueError:
        raise ImproperlyConfigured(
            f"FLEETSCOPE_SILK_RATE={_rate!r} is not a number: set the share of sampled "
            "requests to profile, e.g. 0.01, or unset it."
        ) from None
    LOGIN_URL = "/admin/login/"  # Silk's pages and the /telemetry/silk/ links are staff-only
    SILKY_AUTHENTICATION = True
    SILKY_AUTHORISATION = True
    SILKY_INTERCEPT_FUNC = should_profile  # sampled traces x SILK_RATE, or staff on request
    SILKY_PYTHON_PROFILER_FUNC = python_profiler  # cProfile only when staff ask
    SILKY_SENSITIVE_KEYS = SENSITIVE_KEYS
    SILKY_IGNORE_QUERIES = IGNORE_QUERIES
    SILKY_ANALYZE_QUERIES = False
    SILKY_MAX_REQUEST_BODY_SIZE = 16 * 1024
    SILKY_MAX_RESPONSE_BODY_SIZE = 0
    SILKY_MAX_RECORDED_REQUESTS = 5_000
    SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT = 0  # `manage.py telemetry_silk_gc` on a timer
