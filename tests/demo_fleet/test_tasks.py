"""The demo shop's background tasks: what the views queue, and what each task does when run.

Tasks run eagerly here (`apply()`, the test database is only visible to this thread); the
integration demo (tests/integration/test_demo.py) runs them on a real worker node.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, signals
from django.core import mail
from django.core.cache import caches
from django.test import Client, override_settings

from fleetscope.demo.shop import tasks
from fleetscope.demo.shop.models import Category, Customer, Order, Product

from .test_views import sql_statements


@pytest.fixture
def published() -> Iterator[list[tuple[str, str]]]:
    """(task name, routing key) of every message the shop publishes, none actually sent."""
    app = Celery("demo-tests", broker="memory://", set_as_current=True)
    app.conf.task_routes = {f"{tasks.__name__}.build_sales_report": {"queue": "reports"}}
    messages: list[tuple[str, str]] = []

    def record(sender: Any = None, routing_key: str = "", **kwargs: Any) -> None:
        messages.append((str(sender).rsplit(".", 1)[-1], routing_key))

    signals.before_task_publish.connect(record, weak=False, dispatch_uid="demo-tests")
    try:
        yield messages
    finally:
        signals.before_task_publish.disconnect(dispatch_uid="demo-tests")
        app.close()


def _order(client: Client, customer: Customer, product: Product) -> dict[str, Any]:
    body = {"customer_id": customer.pk, "items": [{"product_id": product.pk, "qty": 2}]}
    response = client.post("/orders/", body, content_type="application/json")
    assert response.status_code == 201
    return dict(response.json())


def test_without_a_broker_the_views_queue_nothing(
    client: Client, seeded: dict[str, int], published: list[tuple[str, str]]
) -> None:
    _order(client, Customer.objects.first(), Product.objects.first())  # type: ignore[arg-type]
    assert client.get(f"/catalogue/{Category.objects.first().pk}/").status_code == 200  # type: ignore[union-attr]
    assert client.post("/reports/export/").status_code == 202
    assert published == []


@override_settings(FLEETSCOPE_DEMO_TASKS=True)
def test_views_queue_the_confirmation_the_sync_the_ratings_and_the_report(
    client: Client, seeded: dict[str, int], published: list[tuple[str, str]]
) -> None:
    _order(client, Customer.objects.first(), Product.objects.first())  # type: ignore[arg-type]
    category = Category.objects.first()
    assert category is not None
    client.get(f"/catalogue/{category.pk}/")
    client.get(f"/catalogue/{category.pk}/")  # a cache hit: no second refresh
    assert client.post("/reports/export/").status_code == 202
    assert published == [
        ("send_order_confirmation", "celery"),
        ("sync_inventory", "celery"),
        ("refresh_category_ratings", "celery"),
        ("build_sales_report", "reports"),
    ]


@override_settings(FLEETSCOPE_DEMO_TASKS=True)
def test_a_category_is_refreshed_at_most_once_per_interval(
    client: Client, seeded: dict[str, int], published: list[tuple[str, str]]
) -> None:
    category = Category.objects.first()
    assert category is not None
    for _ in range(3):  # three rebuilt pages (the catalogue key expired each time)
        caches["default"].delete(f"shop:catalogue:{category.pk}")
        assert client.get(f"/catalogue/{category.pk}/").status_code == 200
    assert published == [("refresh_category_ratings", "celery")]


# Django's test environment sends mail to the locmem outbox (EMAIL_BACKEND, or MAILERS on 6.1+).
def test_the_confirmation_mails_the_customer_their_order(
    client: Client, seeded: dict[str, int]
) -> None:
    customer, product = Customer.objects.first(), Product.objects.first()
    assert customer is not None and product is not None
    order = _order(client, customer, product)
    assert tasks.send_order_confirmation.apply(args=[order["order_id"]]).get() == 1
    [message] = mail.outbox
    assert message.to == [customer.email]
    assert f"2 x {product.name}" in message.body
    assert order["total"] in message.body
    key = f"shop:customer:{customer.pk}:last-order"
    assert caches["default"].get(key) == order["order_id"]


def test_the_report_task_caches_the_slow_report_rows(seeded: dict[str, int]) -> None:
    from fleetscope.demo.shop.views import complaint_rows

    with sql_statements() as statements:
        rows = tasks.build_sales_report.apply().get()
    assert rows == len(complaint_rows()) > 0
    assert caches["default"].get(tasks.REPORT_CACHE_KEY) == complaint_rows()
    assert any('"shop_review"."created"' in sql for sql in statements)


def test_the_ratings_task_runs_one_query_per_product(seeded: dict[str, int]) -> None:
    category = Category.objects.first()
    assert category is not None
    with sql_statements() as statements:
        count = tasks.refresh_category_ratings.apply(args=[category.pk]).get()
    assert count == tasks.RATINGS_PRODUCTS
    repeated = max(statements.count(sql) for sql in set(statements))
    assert repeated == tasks.RATINGS_PRODUCTS  # the N+1
    assert len(caches["default"].get(f"shop:ratings:{category.pk}")) == count


def test_the_inventory_sync_retries_then_fails_when_the_warehouse_never_answers(
    seeded: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    order = Order.objects.create(customer=Customer.objects.get(pk=1))
    monkeypatch.setattr(tasks.random, "random", lambda: 0.0)
    runs: list[str] = []
    signals.task_postrun.connect(
        lambda state=None, **kwargs: runs.append(state), weak=False, dispatch_uid="runs"
    )
    try:
        result = tasks.sync_inventory.apply(args=[order.pk])
    finally:
        signals.task_postrun.disconnect(dispatch_uid="runs")
    assert isinstance(result.result, tasks.WarehouseUnavailable)
    assert sorted(runs) == ["FAILURE", *["RETRY"] * tasks.WAREHOUSE_RETRIES]


def test_the_inventory_sync_succeeds_when_the_warehouse_answers(
    seeded: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    order = Order.objects.create(customer=Customer.objects.get(pk=1))
    monkeypatch.setattr(tasks.random, "random", lambda: 0.99)
    assert tasks.sync_inventory.apply(args=[order.pk]).get() == 0
