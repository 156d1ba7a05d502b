"""ASGI entry point of the demo shop (``uvicorn demo_fleet.asgi:application``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_fleet.settings")

application = get_asgi_application()
