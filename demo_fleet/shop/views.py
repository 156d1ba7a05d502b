"""Views of the demo shop: each exists to exercise one Fleetscope signal, named in its docstring."""

from __future__ import annotations

import json
import operator
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import reduce
from typing import Any

from django.core.cache import caches
from django.db import transaction
from django.db.models import Avg, Count, F, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .errors import DeliberateFailure
from .models import Category, Customer, Order, OrderItem, Product, Review
from .seeding import REVIEWS_UNTIL
from .tasks import (
    build_sales_report,
    enqueue,
    refresh_category_ratings,
    send_order_confirmation,
    sync_inventory,
)

PRODUCT_LIST_SIZE = 30
CATALOGUE_CACHE_TIMEOUT_S = 30
RATINGS_REFRESH_INTERVAL_S = 120
SLOW_REPORT_ROWS = 20
# The report's default window is the second (last) year of the seeded reviews: half the
# table matches, and all of it is scanned.
SLOW_REPORT_DEFAULT_SINCE = date(2025, 1, 1)
SLOW_REPORT_DEFAULT_UNTIL = REVIEWS_UNTIL.date()
LOW_RATING = 2
# Matched with a case-insensitive LIKE on every review body in the window: on PostgreSQL,
# whose parallel scans make the bare date filter fast, this keeps the report slow too.
COMPLAINT_WORDS = ("broke", "damaged", "disappointing")
DEFAULT_FAILURE_PROBABILITY = 0.1
MAX_ORDER_ITEMS = 20
MAX_ITEM_QTY = 100


@dataclass(frozen=True)
class ProductRow:
    """One line of the product list; both list views must render identical rows."""

    name: str
    category: str
    price: Decimal
    review_count: int


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Fast page, two cheap queries: the baseline latency every other route is compared with."""
    categories = Category.objects.all()
    featured = Product.objects.order_by("pk")[:8]
    return render(request, "shop/home.html", {"categories": categories, "featured": featured})


@require_GET
def products_n_plus_one(request: HttpRequest) -> HttpResponse:
    """N+1 queries: one query for the list, then one category and one review count per product.

    Exercises ``django.db.n_plus_one`` (the same statement fingerprint repeated in one request)
    and ``django.db.queries_per_request``.
    """
    category_id = _category_param(request)
    products = Product.objects.filter(category_id=category_id).order_by("name")
    # Deliberately no select_related/annotate: each attribute access below is a query.
    rows = [
        ProductRow(p.name, p.category.name, p.price, p.reviews.count())
        for p in products[:PRODUCT_LIST_SIZE]
    ]
    return _product_list(request, rows, variant="N+1")


@require_GET
def products_fixed(request: HttpRequest) -> HttpResponse:
    """The N+1 page fixed with select_related and annotate: one query, same output.

    The contrast for ``django.db.n_plus_one`` and ``django.db.queries_per_request``.
    """
    category_id = _category_param(request)
    products = (
        Product.objects.filter(category_id=category_id)
        .order_by("name")
        .select_related("category")
        .annotate(review_count=Count("reviews"))
    )
    rows = [
        ProductRow(p.name, p.category.name, p.price, p.review_count)
        for p in products[:PRODUCT_LIST_SIZE]
    ]
    return _product_list(request, rows, variant="fixed")


@require_GET
def slow_report(request: HttpRequest) -> HttpResponse:
    """Most complained-about products over a date window: the slow query.

    ``Review.created`` has no index, so the filter scans the whole review table, searches
    every body in the window for complaint words and groups by product. Exercises
    ``django.db.slow_queries`` and the slow-query panels. Query parameters ``since`` and
    ``until`` (YYYY-MM-DD) move the window.
    """
    try:
        since = _date_param(request, "since", SLOW_REPORT_DEFAULT_SINCE)
        until = _date_param(request, "until", SLOW_REPORT_DEFAULT_UNTIL)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    context = {
        "rows": complaint_rows(since, until),
        "since": since,
        "until": until,
        "low_rating": LOW_RATING,
        "complaint_words": COMPLAINT_WORDS,
    }
    return render(request, "shop/slow_report.html", context)


def complaint_rows(
    since: date = SLOW_REPORT_DEFAULT_SINCE, until: date = SLOW_REPORT_DEFAULT_UNTIL
) -> list[dict[str, Any]]:
    """The slow report's rows (the slow query), for the page and the background report."""
    rows = (
        Review.objects.filter(created__gte=_midnight(since), created__lt=_midnight(until))
        .values("product_id", "product__name")
        .annotate(
            reviews=Count("id"),
            low_ratings=Count("id", filter=Q(rating__lte=LOW_RATING)),
            complaint_mentions=Count("id", filter=_mentions_any(COMPLAINT_WORDS)),
            average_rating=Avg("rating"),
        )
        .order_by("-low_ratings", "-reviews", "product_id")[:SLOW_REPORT_ROWS]
    )
    return [dict(row) for row in rows]


@csrf_exempt
@require_POST
def export_report(request: HttpRequest) -> JsonResponse:
    """Queues the complaints report for the background (answers 202 at once).

    Exercises the slow task on the `reports` queue: ``celery.task.duration`` and
    ``django.db.slow_queries`` under ``celery.task.name``. Without a broker it does nothing.
    """
    enqueue(build_sales_report)
    return JsonResponse({"queued": "build_sales_report"}, status=202)


@require_GET
def catalogue(request: HttpRequest, category_id: int) -> HttpResponse:
    """A category's catalogue from the low-level cache (one key per category, 30 s timeout).

    Exercises ``django.cache.operations`` hit/miss counts: a hit issues no SQL at all.
    """
    cache = caches["default"]
    key = f"shop:catalogue:{category_id}"
    page: dict[str, Any] | None = cache.get(key)
    if page is None:
        category = Category.objects.filter(pk=category_id).first()
        if category is None:
            raise Http404(f"No category {category_id}.")
        products = Product.objects.filter(category=category).values("id", "name", "price", "stock")
        page = {"category": category.name, "products": list(products)}
        cache.set(key, page, CATALOGUE_CACHE_TIMEOUT_S)
        # A rebuilt page is a good moment to refresh the category's ratings (the N+1 task),
        # at most once per RATINGS_REFRESH_INTERVAL_S per cache (per worker with locmem).
        if cache.add(f"shop:ratings:queued:{category_id}", 1, RATINGS_REFRESH_INTERVAL_S):
            enqueue(refresh_category_ratings, category.pk)
    return render(request, "shop/catalogue.html", page)


@csrf_exempt
@require_POST
def create_order(request: HttpRequest) -> JsonResponse:
    """The write path: an order and its items in one transaction, stock decremented.

    Body: ``{"customer_id": 1, "items": [{"product_id": 2, "qty": 1}]}``; answers 201 with
    the order. Exercises INSERT/UPDATE operations in ``db.client.operation.duration``; queues
    the confirmation e-mail and the warehouse sync (tasks, when the demo has a broker).
    """
    try:
        customer_id, lines = _parse_order(request.body)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    with transaction.atomic():
        if not Customer.objects.filter(pk=customer_id).exists():
            return JsonResponse({"error": f"Unknown customer_id {customer_id}."}, status=400)
        products = Product.objects.in_bulk({product_id for product_id, _ in lines})
        missing = sorted({product_id for product_id, _ in lines} - products.keys())
        if missing:
            return JsonResponse({"error": f"Unknown product_id {missing[0]}."}, status=400)
        order = Order.objects.create(customer_id=customer_id, created=timezone.now())
        items = OrderItem.objects.bulk_create(
            OrderItem(order=order, product_id=pid, qty=qty, price=products[pid].price)
            for pid, qty in lines
        )
        # Stock never goes below zero; the demo does not refuse orders over it.
        for pid, qty in lines:
            Product.objects.filter(pk=pid, stock__gte=qty).update(stock=F("stock") - qty)
    enqueue(send_order_confirmation, order.pk)
    enqueue(sync_inventory, order.pk)
    total = sum((item.price * item.qty for item in items), Decimal(0))
    body = {
        "order_id": order.pk,
        "customer_id": customer_id,
        "items": [
            {"product_id": item.product_id, "qty": item.qty, "price": str(item.price)}
            for item in items
        ],
        "total": str(total),
    }
    return JsonResponse(body, status=201)


@require_GET
def flaky(request: HttpRequest) -> HttpResponse:
    """Fails with a 500 (an unhandled exception) with probability ``?p=`` (default 0.1).

    ``?fail=1`` always fails and ``?fail=0`` never does. Exercises error rates:
    ``http.server.request.duration`` with ``http.response.status_code=500``.
    """
    try:
        fail = _should_fail(request)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    if fail:
        raise DeliberateFailure("Deliberate failure from /flaky/.")
    return HttpResponse("ok\n", content_type="text/plain")


@require_GET
def api_product(request: HttpRequest, pk: int) -> JsonResponse:
    """JSON API for one product (one query with joins and aggregates); 404 as JSON.

    Exercises a parametrised route: ``http.route`` must stay ``api/products/<int:pk>/``.
    """
    product = (
        Product.objects.select_related("category")
        .annotate(review_count=Count("reviews"), average_rating=Avg("reviews__rating"))
        .filter(pk=pk)
        .first()
    )
    if product is None:
        return JsonResponse({"error": f"No product {pk}."}, status=404)
    average = product.average_rating
    return JsonResponse(
        {
            "id": product.pk,
            "name": product.name,
            "price": str(product.price),
            "stock": product.stock,
            "category": {"id": product.category_id, "name": product.category.name},
            "review_count": product.review_count,
            "average_rating": round(average, 2) if average is not None else None,
        }
    )


def healthz(request: HttpRequest) -> HttpResponse:
    """Readiness check for the launcher: no database, no cache, always 200."""
    return HttpResponse("ok\n", content_type="text/plain")


def _product_list(request: HttpRequest, rows: list[ProductRow], variant: str) -> HttpResponse:
    return render(request, "shop/product_list.html", {"rows": rows, "variant": variant})


def _category_param(request: HttpRequest) -> int:
    """``?category=<id>``, else the first category; 404 when there is none."""
    raw = request.GET.get("category")
    if raw is None:
        category_id = Category.objects.order_by("pk").values_list("pk", flat=True).first()
        if category_id is None:
            raise Http404("The shop has no categories; run the seed_shop command.")
        return category_id
    try:
        return int(raw)
    except ValueError:
        raise Http404(f"No category {raw!r}.") from None


def _date_param(request: HttpRequest, name: str, default: date) -> date:
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"?{name}= must be a date like 2025-01-31, not {raw!r}.") from None


def _mentions_any(words: tuple[str, ...]) -> Q:
    return reduce(operator.or_, (Q(body__icontains=word) for word in words))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _should_fail(request: HttpRequest) -> bool:
    fail = request.GET.get("fail")
    if fail is not None:
        if fail not in ("0", "1"):
            raise ValueError(f"?fail= must be 0 or 1, not {fail!r}.")
        return fail == "1"
    raw = request.GET.get("p")
    try:
        p = DEFAULT_FAILURE_PROBABILITY if raw is None else float(raw)
    except ValueError:
        p = -1.0
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"?p= must be a probability between 0 and 1, not {raw!r}.")
    return random.random() < p


def _parse_order(body: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Validated (customer_id, [(product_id, qty), ...]) from the order JSON."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("The body must be JSON.") from None
    if not isinstance(data, dict):
        raise ValueError('The body must be a JSON object: {"customer_id": ..., "items": [...]}.')
    customer_id = _positive_int(data.get("customer_id"), "customer_id")
    items = data.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ORDER_ITEMS:
        raise ValueError(f"items must be a list of 1 to {MAX_ORDER_ITEMS} items.")
    lines = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError('Each item must be an object: {"product_id": ..., "qty": ...}.')
        qty = _positive_int(item.get("qty"), "qty")
        if qty > MAX_ITEM_QTY:
            raise ValueError(f"qty must be at most {MAX_ITEM_QTY}.")
        lines.append((_positive_int(item.get("product_id"), "product_id"), qty))
    return customer_id, lines


def _positive_int(value: object, name: str) -> int:
    # bool is an int subclass; true/false in JSON is a client bug, not an id.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}.")
    return value
