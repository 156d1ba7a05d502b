"""URLs of the real-server benchmark: the benchmark views, the demo shop, and what peers add."""

from django.apps import apps
from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("benchmarks.benchapp.urls")),
    path("shop/", include("fleetscope.demo.shop.urls")),
]
if apps.is_installed("silk"):
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))
if apps.is_installed("django_prometheus"):
    urlpatterns.append(path("", include("django_prometheus.urls")))  # /metrics, as its docs say
