"""Background tasks of the demo shop, each there to show one task signal in Fleetscope.

Views queue them with `enqueue()`, which does nothing when the demo runs without a broker
(`fleetscope demo up --no-tasks`, or the unit tests): the shop works either way.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.core.cache import caches
from django.core.mail import send_mail
from django.db.models import Avg
from django.template.loader import render_to_string

from .models import Order, OrderItem, Product

REPORT_CACHE_KEY = "shop:reports:complaints"
REPORT_CACHE_TIMEOUT_S = 300
RATINGS_CACHE_TIMEOUT_S = 120
RATINGS_PRODUCTS = 30
# The warehouse's API times out this often; a sync is tried at most 1 + WAREHOUSE_RETRIES
# times, so about 0.35 ** 3 = 4 % of syncs fail for good.
WAREHOUSE_FAILURE_P = 0.35
WAREHOUSE_RETRIES = 2


class WarehouseUnavailable(Exception):
    """The (imaginary) warehouse API did not answer."""


def enqueue(task: Task, *args: Any) -> None:
    """Queue `task` when the demo has a broker (settings.FLEETSCOPE_DEMO_TASKS)."""
    if getattr(settings, "FLEETSCOPE_DEMO_TASKS", False):
        task.delay(*args)


@shared_task
def send_order_confirmation(order_id: int) -> int:
    """The order confirmation e-mail: a few joined queries, a template, a cache write.

    Exercises `celery.task.duration` for a fast, frequent task and its queue wait."""
    order = Order.objects.select_related("customer").get(pk=order_id)
    items = list(OrderItem.objects.filter(order=order).select_related("product"))
    body = render_to_string(
        "shop/order_confirmation.txt",
        {
            "order": order,
            "items": items,
            "total": sum(item.price * item.qty for item in items),
        },
    )
    sent = send_mail(f"Your order {order.pk}", body, "shop@example.com", [order.customer.email])
    caches["default"].set(f"shop:customer:{order.customer_id}:last-order", order.pk, 3600)
    return sent


@shared_task
def build_sales_report(since: str | None = None) -> int:
    """The complaints report of /reports/slow/, built in the background and cached: the slow
    task (its query scans the whole review table). Queue `reports`."""
    from .views import complaint_rows  # the page's query (views import this module)

    rows = complaint_rows(date.fromisoformat(since)) if since else complaint_rows()
    caches["default"].set(REPORT_CACHE_KEY, rows, REPORT_CACHE_TIMEOUT_S)
    return len(rows)


@shared_task
def refresh_category_ratings(category_id: int) -> int:
    """Average rating of each product of a category, one query per product: the N+1 task
    (`django.db.n_plus_one` with `celery.task.name`)."""
    products = Product.objects.filter(category_id=category_id).order_by("name")
    ratings = {
        product.pk: product.reviews.aggregate(average=Avg("rating"))["average"]
        for product in products[:RATINGS_PRODUCTS]
    }
    caches["default"].set(f"shop:ratings:{category_id}", ratings, RATINGS_CACHE_TIMEOUT_S)
    return len(ratings)


@shared_task(bind=True, max_retries=WAREHOUSE_RETRIES, default_retry_delay=1)
def sync_inventory(self: Task, order_id: int) -> int:
    """Tells the warehouse what an order took; its API fails now and then: the task that
    retries, and sometimes fails for good (`celery.task.retries`, `celery.task.failures`)."""
    lines = list(OrderItem.objects.filter(order_id=order_id).values_list("product_id", "qty"))
    if random.random() < WAREHOUSE_FAILURE_P:
        # Past max_retries, retry() raises the exception itself: the run fails.
        raise self.retry(exc=WarehouseUnavailable("the warehouse did not answer"))
    return len(lines)
