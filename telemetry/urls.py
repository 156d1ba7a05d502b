"""URLs of the telemetry app: ``path("telemetry/", include("telemetry.urls"))``.

The trailing slash is optional because the dashboards' links omit it and a redirect
through APPEND_SLASH would need CommonMiddleware.
"""

from django.urls import re_path

from . import silk_views

app_name = "telemetry"

urlpatterns = [
    re_path(r"^silk/trace/(?P<trace_id>[^/]+)/?$", silk_views.trace_profile, name="silk-trace"),
    re_path(r"^silk/route/?$", silk_views.route_profile, name="silk-route"),
    re_path(r"^silk/query/(?P<fingerprint>[^/]+)/?$", silk_views.query_profile, name="silk-query"),
]
