"""ASGI entry point of the benchmark server (uvicorn)."""

from django.core.asgi import get_asgi_application

from benchmarks.server_app import prepare

prepare()
application = get_asgi_application()
