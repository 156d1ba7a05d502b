"""WSGI entry point of the demo shop (``gunicorn demo_fleet.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetscope.demo.settings")

application = get_wsgi_application()
