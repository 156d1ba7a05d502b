"""Django application config of the demo shop."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "fleetscope.demo.shop"
    label = "shop"
    verbose_name = "Demo shop"
    # Fixed here, not left to the project's DEFAULT_AUTO_FIELD, so the committed
    # migration matches whatever settings module installs the app.
    default_auto_field = "django.db.models.BigAutoField"
