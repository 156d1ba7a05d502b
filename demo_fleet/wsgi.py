"""WSGI entry point of the demo shop (``gunicorn demo_fleet.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetscope.demo.settings")
if os.environ.get("FLEETSCOPE_DEMO_BROKER_URL"):
    # The Celery app before Django, as a project's __init__.py imports it: shared tasks bind
    # to it, and the telemetry app sees Celery in use.
    from fleetscope.demo import celery_app  # noqa: F401

application = get_wsgi_application()
