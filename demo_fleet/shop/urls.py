"""URLs of the demo shop. The paths are part of the demo's contract: the locustfile,
the tests and the dashboards' http.route labels rely on them."""

from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("products/n-plus-one/", views.products_n_plus_one, name="products-n-plus-one"),
    path("products/fixed/", views.products_fixed, name="products-fixed"),
    path("reports/slow/", views.slow_report, name="slow-report"),
    path("reports/export/", views.export_report, name="export-report"),
    path("catalogue/<int:category_id>/", views.catalogue, name="catalogue"),
    path("orders/", views.create_order, name="orders"),
    path("flaky/", views.flaky, name="flaky"),
    path("api/products/<int:pk>/", views.api_product, name="api-product"),
    path("healthz", views.healthz, name="healthz"),
]
