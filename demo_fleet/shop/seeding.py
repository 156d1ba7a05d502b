"""Deterministic generation of the demo shop's data (used by the ``seed_shop`` command)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.management.color import no_style
from django.db import connections, models

from .models import Category, Customer, Order, OrderItem, Product, Review

# Fixed, not "now": the same seed must give the same rows whenever it runs, and the
# slow report's default window (see views.py) is expressed against this epoch.
SEED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
REVIEWS_UNTIL = datetime(2026, 1, 1, tzinfo=UTC)

BATCH_SIZE = 5000

CATEGORY_NAMES = (
    "Books", "Garden", "Kitchen", "Toys", "Music", "Outdoor", "Office", "Lighting",
    "Bath", "Bikes", "Camping", "Audio", "Games", "Tools", "Pets", "Baby",
    "Crafts", "Sports", "Travel", "Tea",
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Folding", "Handmade", "Heavy", "Light",
    "Mini", "Modern", "Portable", "Pro", "Rustic", "Smart", "Solid", "Vintage",
)  # fmt: skip
NOUNS = (
    "Basket", "Bottle", "Chair", "Clock", "Cup", "Desk", "Drum", "Kettle", "Kit",
    "Lamp", "Map", "Mug", "Pan", "Pen", "Rack", "Set", "Stand", "Tent", "Tray", "Vase",
)  # fmt: skip
FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivan", "Jo",
    "Kai", "Lena", "Milo", "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tom",
)  # fmt: skip
LAST_NAMES = (
    "Adler", "Brook", "Costa", "Diaz", "Evans", "Fox", "Grant", "Hale", "Ito",
    "Jones", "Kaur", "Lund", "Moreau", "Novak", "Okafor", "Park", "Reyes", "Singh",
)  # fmt: skip
REVIEW_PHRASES = (
    "great quality", "works as described", "arrived quickly", "sturdy", "feels cheap",
    "flimsy", "broke after a week", "would buy again", "recommended to friends",
    "colour matches the photo", "smaller than expected", "larger than expected",
    "good value for money", "packaging was damaged", "easy to assemble",
    "instructions unclear", "customer service helped", "returned it", "love it",
    "my kids use it every day", "perfect gift", "battery life is short", "feels premium",
    "disappointing",
)  # fmt: skip
RATINGS = (1, 2, 3, 4, 5)
RATING_WEIGHTS = (6, 7, 12, 30, 45)

# Children before parents, so the flush order is valid even without deferred constraints.
SHOP_MODELS: tuple[type[models.Model], ...] = (
    OrderItem,
    Order,
    Review,
    Product,
    Customer,
    Category,
)


@dataclass(frozen=True)
class SeedSizes:
    categories: int = 20
    products: int = 2000
    customers: int = 500
    reviews: int = 200_000


Progress = Callable[[str, int, int], None]


def has_data(using: str) -> bool:
    """True when any shop table already holds rows."""
    return any(model._default_manager.using(using).exists() for model in SHOP_MODELS)


def flush(using: str) -> None:
    """Empty the shop tables and reset their id sequences, so a reseed gives the same ids."""
    connection = connections[using]
    tables = [model._meta.db_table for model in SHOP_MODELS]
    statements = connection.ops.sql_flush(no_style(), tables, reset_sequences=True)
    connection.ops.execute_sql_flush(statements)


def seed(sizes: SeedSizes, seed: int, using: str, progress: Progress) -> None:
    """Create the rows for ``sizes``; the same ``seed`` always produces the same rows."""
    rng = random.Random(seed)
    _bulk(using, Category, _categories(sizes.categories), sizes.categories, progress)
    category_ids = list(Category.objects.using(using).order_by("pk").values_list("pk", flat=True))
    _bulk(using, Product, _products(rng, sizes.products, category_ids), sizes.products, progress)
    _bulk(using, Customer, _customers(rng, sizes.customers), sizes.customers, progress)
    product_ids = list(Product.objects.using(using).order_by("pk").values_list("pk", flat=True))
    customer_ids = list(Customer.objects.using(using).order_by("pk").values_list("pk", flat=True))
    reviews = _reviews(rng, sizes.reviews, product_ids, customer_ids)
    _bulk(using, Review, reviews, sizes.reviews, progress)


def _bulk(
    using: str,
    model: type[models.Model],
    rows: Iterator[models.Model],
    total: int,
    progress: Progress,
) -> None:
    label = str(model._meta.verbose_name_plural)
    done = 0
    batch: list[models.Model] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH_SIZE:
            model._default_manager.using(using).bulk_create(batch)
            done += len(batch)
            batch.clear()
            progress(label, done, total)
    if batch or done == 0:
        model._default_manager.using(using).bulk_create(batch)
        done += len(batch)
        progress(label, done, total)


def _categories(count: int) -> Iterator[Category]:
    for i in range(count):
        base = CATEGORY_NAMES[i % len(CATEGORY_NAMES)]
        lap = i // len(CATEGORY_NAMES)
        yield Category(name=base if lap == 0 else f"{base} {lap + 1}")


def _products(rng: random.Random, count: int, category_ids: list[int]) -> Iterator[Product]:
    for i in range(count):
        # Round robin, so every category gets the same number of products.
        yield Product(
            category_id=category_ids[i % len(category_ids)],
            name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i + 1}",
            price=Decimal(rng.randint(199, 49_999)).scaleb(-2),
            stock=rng.randint(1_000, 100_000),
        )


def _customers(rng: random.Random, count: int) -> Iterator[Customer]:
    for i in range(count):
        yield Customer(
            name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            email=f"customer{i + 1}@example.com",
        )


def _reviews(
    rng: random.Random, count: int, product_ids: list[int], customer_ids: list[int]
) -> Iterator[Review]:
    span_s = int((REVIEWS_UNTIL - SEED_EPOCH).total_seconds())
    for _ in range(count):
        yield Review(
            product_id=rng.choice(product_ids),
            customer_id=rng.choice(customer_ids),
            rating=rng.choices(RATINGS, RATING_WEIGHTS)[0],
            body=", ".join(rng.choices(REVIEW_PHRASES, k=rng.randint(3, 14))).capitalize() + ".",
            created=SEED_EPOCH + timedelta(seconds=rng.randrange(span_s)),
        )
