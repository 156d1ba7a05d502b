"""URLs of the telemetry app: ``path("telemetry/", include("telemetry.urls"))``.

Today they are the Silk sub-app's profile links (`silk/trace/<id>`, `silk/route`,
`silk/query/<fingerprint>`), present when "telemetry.silk" is in INSTALLED_APPS.
"""

from django.apps import apps
from django.urls import URLPattern, URLResolver, include, path

app_name = "telemetry"

urlpatterns: list[URLPattern | URLResolver] = []
if apps.is_installed("telemetry.silk"):
    urlpatterns.append(path("silk/", include("telemetry.silk.urls")))
