"""WSGI entry point of the integration test node."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.node_settings")
if os.environ.get("FLEETSCOPE_TEST_BROKER_URL"):
    # As a Django project's __init__.py does: the Celery app before Django, so that shared
    # tasks bind to it and the telemetry app sees Celery in use.
    from tests.integration import celery_app  # noqa: F401

application = get_wsgi_application()
