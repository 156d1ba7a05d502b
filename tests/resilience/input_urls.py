"""URLs of the resilience suite's nodes: the demo shop, the admin, Silk, and hostile views."""

from django.urls import URLPattern, URLResolver, include, path

from . import input_views as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("sql/literal/", views.sql_literal),
    path("sql/params/", views.sql_params),
    path("sql/shapes/", views.sql_shapes),
    path("sql/text/", views.sql_text),
    path("users/lookup/", views.user_lookup),
    path("users/literal/", views.user_literal),
    path("cached/", views.cached),
    path("echo/", views.echo),
    path("reset/<uidb64>/<token>/", views.password_reset),
    path("sign-in/", views.sign_in),
    # The route template itself is hostile text: it becomes the http.route label.
    path("hostile/<script>/'\"[/]&amp;/", views.hostile_route),
    path("slow-async/", views.slow_async),
    path("context/", views.request_context),
    path("", include("fleetscope.demo.urls")),
]

handler404 = "tests.resilience.input_views.not_found"
