"""URLs of the Silk sub-app; `telemetry.urls` includes them under `silk/` when it is installed.

The trailing slash is optional because the dashboards' links omit it and a redirect
through APPEND_SLASH would need CommonMiddleware.
"""

from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^trace/(?P<trace_id>[^/]+)/?$", views.trace_profile, name="silk-trace"),
    re_path(r"^route/?$", views.route_profile, name="silk-route"),
    re_path(r"^query/(?P<fingerprint>[^/]+)/?$", views.query_profile, name="silk-query"),
]
