"""The demo shop's Celery app, set up as Celery's Django guide says: settings under the
CELERY_ namespace of fleetscope.demo.settings, tasks found in the installed apps.

Workers: `celery -A fleetscope.demo.celery_app worker -Q celery,reports`. Web nodes import
it from fleetscope.demo.wsgi, before Django starts, when the demo has a broker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetscope.demo.settings")

app = Celery("demo-shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
