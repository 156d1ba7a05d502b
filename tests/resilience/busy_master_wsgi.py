"""WSGI entry point whose module runs a query when it is imported: under `gunicorn --preload`
the master records it and starts exporting, so every worker (recycled ones too) is forked
from a process whose export thread is running."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.resilience.node_settings")
application = get_wsgi_application()

from django.db import connection  # noqa: E402

with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
connection.close()  # a connection is never shared with forked workers
