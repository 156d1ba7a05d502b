"""The Celery app of the integration test nodes, set up the way Celery's Django guide does it:
settings under the CELERY_ namespace, tasks discovered in the installed apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.node_settings")

app = Celery("it")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
