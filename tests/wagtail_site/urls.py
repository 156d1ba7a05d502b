"""Wagtail's own URLconf (its catch-all `serve` pattern) after one plain Django path."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from wagtail import urls as wagtail_urls


def plain(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse("plain")


urlpatterns = [
    path("plain/<int:pk>/", plain),
    path("", include(wagtail_urls)),
]
