"""WSGI entry point of the integration test node."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.node_settings")
application = get_wsgi_application()
