"""URLs of the telemetry test app."""

from django.urls import path

from . import views

urlpatterns = [
    path("hello/", views.hello),
    path("items/<int:pk>/", views.item),
    path("books/n-plus-one/", views.n_plus_one),
    path("books/fixed/", views.fixed),
    path("authors/lookup/", views.lookup),
    path("cached/", views.cached),
    path("boom/", views.boom),
    path("authors/literal/", views.literal),
    path("slow/", views.slow),
    path("sleep/", views.sleep),
    path("local-cache/", views.local_cache),
    path("two-aliases/", views.two_aliases),
    path("preexec/", views.preexec),
    path("annotated/", views.annotated),
    path("reset/<uidb64>/<token>/", views.password_reset),
    path("tasks/enqueue/", views.enqueue),
]
