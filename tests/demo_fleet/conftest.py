"""Fixtures for the demo shop tests: the shop's URLconf and templates, a tiny seeded shop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import caches
from django.core.management import call_command

# Small enough to seed in milliseconds, big enough that a category lists the 30 products
# the product pages show (90 products round-robin over 3 categories).
TINY_SEED = {"categories": 3, "products": 90, "customers": 10, "reviews": 900, "seed": 7}


@pytest.fixture(autouse=True)
def shop_site(settings) -> Iterator[None]:
    """Serve the demo project's URLs with Django templates; start and end with an empty cache.

    tests.settings installs the shop app but routes to the telemetry test app and defines
    no TEMPLATES, so both are overridden here.
    """
    settings.ROOT_URLCONF = "fleetscope.demo.urls"
    settings.TEMPLATES = [
        {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
    ]
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def seeded(db: None) -> dict[str, int]:
    """A shop seeded with TINY_SEED; returns the sizes used."""
    call_command("seed_shop", verbosity=0, **TINY_SEED)
    return TINY_SEED
