"""Load for one demo node: a locust user with a weighted mix over every view of the demo shop.

Run one locust per node (``locust -f demo_fleet/locustfile.py --headless -u 10 --host
http://127.0.0.1:8001``); different ``-u`` per node gives the nodes visibly different load.
Environment (all optional, defaults match ``seed_shop``'s defaults):
FLEETSCOPE_LOAD_CATEGORIES, FLEETSCOPE_LOAD_PRODUCTS, FLEETSCOPE_LOAD_CUSTOMERS (ids exist
from 1 to N after seeding), FLEETSCOPE_LOAD_FLAKY_P (failure probability of /flaky/),
FLEETSCOPE_LOAD_WAIT ("min,max" seconds between a user's requests, default "0.05,0.3").
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name}={raw!r}: set it to a positive integer (default {default}).")
    return int(raw)


def _env_probability(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise SystemExit(f"{name}={raw!r}: set it to a probability between 0 and 1.")
    return value


def _env_wait(name: str, default: tuple[float, float]) -> tuple[float, float]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        low, high = (float(part) for part in raw.split(","))
    except ValueError:
        low, high = -1.0, -1.0
    if not 0.0 <= low <= high:
        raise SystemExit(f"{name}={raw!r}: set it to 'min,max' seconds, e.g. '0.05,0.3'.")
    return low, high


CATEGORIES = _env_int("FLEETSCOPE_LOAD_CATEGORIES", 20)
PRODUCTS = _env_int("FLEETSCOPE_LOAD_PRODUCTS", 2000)
CUSTOMERS = _env_int("FLEETSCOPE_LOAD_CUSTOMERS", 500)
FLAKY_P = _env_probability("FLEETSCOPE_LOAD_FLAKY_P", 0.1)
WAIT_S = _env_wait("FLEETSCOPE_LOAD_WAIT", (0.05, 0.3))


class ShopUser(HttpUser):
    """A shopper. Weights: catalogue-heavy browsing, a few orders, rare slow reports."""

    wait_time = between(*WAIT_S)

    @task(10)
    def home(self) -> None:
        self.client.get("/")

    # The biggest share: with ~20 keys and a 30 s timeout, most reads hit the cache,
    # and each key still misses once per timeout per worker process.
    @task(30)
    def catalogue(self) -> None:
        category_id = random.randint(1, CATEGORIES)
        self.client.get(f"/catalogue/{category_id}/", name="/catalogue/[category_id]/")

    @task(8)
    def products_n_plus_one(self) -> None:
        category_id = random.randint(1, CATEGORIES)
        self.client.get(
            f"/products/n-plus-one/?category={category_id}", name="/products/n-plus-one/"
        )

    @task(8)
    def products_fixed(self) -> None:
        category_id = random.randint(1, CATEGORIES)
        self.client.get(f"/products/fixed/?category={category_id}", name="/products/fixed/")

    @task(15)
    def api_product(self) -> None:
        pk = random.randint(1, PRODUCTS)
        self.client.get(f"/api/products/{pk}/", name="/api/products/[pk]/")

    @task(4)
    def order(self) -> None:
        items = [
            {"product_id": random.randint(1, PRODUCTS), "qty": random.randint(1, 3)}
            for _ in range(random.randint(1, 3))
        ]
        self.client.post(
            "/orders/", json={"customer_id": random.randint(1, CUSTOMERS), "items": items}
        )

    @task(6)
    def flaky(self) -> None:
        with self.client.get(f"/flaky/?p={FLAKY_P}", name="/flaky/", catch_response=True) as r:
            # The 500s are the point of this page; only anything else is a load failure.
            if r.status_code in (200, 500):
                r.success()
            else:
                r.failure(f"unexpected status {r.status_code}")

    # Rare: each one scans the whole review table for a few hundred milliseconds.
    @task(2)
    def slow_report(self) -> None:
        self.client.get("/reports/slow/")

    # Queues the complaints report for the background: the slow task on the `reports` queue.
    @task(1)
    def export_report(self) -> None:
        self.client.post("/reports/export/")

    @task(1)
    def healthz(self) -> None:
        self.client.get("/healthz")
