"""WSGI entry point of the benchmark server (gunicorn)."""

from django.core.wsgi import get_wsgi_application

from benchmarks.server_app import prepare

prepare()
application = get_wsgi_application()
