"""URLconf of the demo shop project: the shop at the root, the admin under /admin/, Silk."""

from django.apps import apps
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("fleetscope.demo.shop.urls")),
]

# Guarded so the shop's URLs also work in settings without the admin (the unit tests').
if apps.is_installed("django.contrib.admin"):
    urlpatterns.append(path("admin/", admin.site.urls))

# Silk's pages, and the links from traces and dashboards into them (docs/silk.md).
urlpatterns.append(path("telemetry/", include("telemetry.urls")))
if apps.is_installed("silk"):
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))
