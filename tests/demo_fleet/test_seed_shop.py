"""The seed_shop command: deterministic, sized as asked, idempotent, flushable."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from fleetscope.demo.shop.models import Category, Customer, Order, Product, Review
from fleetscope.demo.shop.seeding import SHOP_MODELS

from .conftest import TINY_SEED


def snapshot() -> dict[str, list[tuple[object, ...]]]:
    """Every shop row, ids included, in id order."""
    return {
        model.__name__: list(model._default_manager.order_by("pk").values_list())
        for model in SHOP_MODELS
    }


def seed(**options: object) -> str:
    out = StringIO()
    call_command("seed_shop", stdout=out, **{**TINY_SEED, **options})
    return out.getvalue()


def test_same_seed_gives_identical_rows(db):
    seed()
    first = snapshot()

    seed(flush=True)

    assert snapshot() == first


def test_another_seed_gives_other_rows(db):
    seed()
    first = snapshot()

    seed(flush=True, seed=8)

    assert snapshot()["Review"] != first["Review"]
    assert snapshot()["Product"] != first["Product"]


def test_sizes_are_respected_and_products_spread_evenly(db):
    seed(categories=4, products=40, customers=6, reviews=123)

    assert Category.objects.count() == 4
    assert Product.objects.count() == 40
    assert Customer.objects.count() == 6
    assert Review.objects.count() == 123
    per_category = {c.name: c.products.count() for c in Category.objects.all()}
    assert set(per_category.values()) == {10}


def test_seeding_twice_without_flush_leaves_the_data_alone(db):
    seed()
    before = snapshot()

    output = seed(seed=99)

    assert snapshot() == before
    assert "--flush" in output


def test_flush_also_removes_orders(client, db):
    seed()
    response = client.post(
        "/orders/",
        '{"customer_id": 1, "items": [{"product_id": 1, "qty": 1}]}',
        content_type="application/json",
    )
    assert response.status_code == 201

    seed(flush=True)

    assert not Order.objects.exists()


def test_progress_is_printed(db):
    output = seed()

    assert "reviews: 900/900" in output
    assert "Seeded the shop" in output


@pytest.mark.parametrize(
    ("option", "value"), [("categories", 0), ("products", 0), ("customers", -1), ("reviews", -5)]
)
def test_impossible_sizes_are_refused_with_the_option_named(db, option, value):
    with pytest.raises(CommandError, match=f"--{option}"):
        seed(**{option: value})
