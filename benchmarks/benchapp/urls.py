"""URLs of the benchmark app."""

from django.urls import path

from . import views

urlpatterns = [
    path("hello/", views.hello),
    path("sql/", views.sql),
    path("mixed/", views.mixed),
]
