"""ASGI application of tests/integration/silk_probe.py (uvicorn)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.silk_probe")
application = get_asgi_application()
