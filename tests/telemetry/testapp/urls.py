"""URLs of the telemetry test app."""

from django.urls import path

from . import views

urlpatterns = [
    path("hello/", views.hello),
]
