"""The demo shop views answer as documented and cause the SQL and cache traffic they exist for."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fleetscope.demo.shop import views
from fleetscope.demo.shop.errors import DeliberateFailure
from fleetscope.demo.shop.models import Category, Order, OrderItem, Product, Review


@contextmanager
def sql_statements() -> Iterator[list[str]]:
    """Collects the SQL templates (placeholders, not values) run inside the block."""
    statements: list[str] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield statements


def table_rows(html: str) -> list[list[str]]:
    """The cells of each body row of the page's table."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def first_category_id() -> int:
    return Category.objects.order_by("pk").values_list("pk", flat=True)[0]


def test_home_lists_every_category_with_two_queries(client: Client, seeded: dict[str, int]):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/")

    assert response.status_code == 200
    for name in Category.objects.values_list("name", flat=True):
        assert name in response.content.decode()
    assert len(queries) <= 2


def test_n_plus_one_page_repeats_the_same_query_at_least_ten_times(client, seeded):
    with sql_statements() as statements:
        response = client.get("/products/n-plus-one/")

    assert response.status_code == 200
    most_common_sql, repeats = Counter(statements).most_common(1)[0]
    assert repeats >= 10, most_common_sql
    assert len(table_rows(response.content.decode())) == 30


def test_fixed_page_runs_no_statement_twice(client, seeded):
    with sql_statements() as statements:
        response = client.get("/products/fixed/")

    assert response.status_code == 200
    assert Counter(statements).most_common(1)[0][1] == 1
    assert len(statements) <= 2


def test_fixed_and_n_plus_one_pages_show_the_same_rows(client, seeded):
    category_id = Category.objects.order_by("pk").values_list("pk", flat=True)[1]

    slow = table_rows(client.get(f"/products/n-plus-one/?category={category_id}").content.decode())
    fixed = table_rows(client.get(f"/products/fixed/?category={category_id}").content.decode())

    assert slow == fixed
    category = Category.objects.get(pk=category_id)
    expected = [
        [p.name, category.name, str(p.price), str(p.reviews.count())]
        for p in Product.objects.filter(category=category).order_by("name")[:30]
    ]
    assert fixed == expected


def test_product_pages_say_so_when_the_shop_is_empty(client, db):
    response = client.get("/products/fixed/")

    assert response.status_code == 404


def test_slow_report_lists_products_with_most_low_ratings_in_the_window(
    client: Client, seeded: dict[str, int]
) -> None:
    response = client.get("/reports/slow/?since=2025-01-01&until=2026-01-01")

    assert response.status_code == 200
    since, until = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    low: Counter[int] = Counter()
    total: Counter[int] = Counter()
    mentions: Counter[int] = Counter()
    for review in Review.objects.filter(created__gte=since, created__lt=until):
        total[review.product_id] += 1
        low[review.product_id] += review.rating <= 2
        body = review.body.lower()
        mentions[review.product_id] += any(w in body for w in ("broke", "damaged", "disappointing"))
    ranked = sorted(total, key=lambda pk: (-low[pk], -total[pk], pk))[:20]
    names = dict(Product.objects.values_list("pk", "name"))
    expected = [[names[pk], str(low[pk]), str(total[pk]), str(mentions[pk])] for pk in ranked]
    assert [row[:4] for row in table_rows(response.content.decode())] == expected
    assert any(mentions[pk] for pk in ranked)


def test_slow_report_default_window_is_the_last_seeded_year(client, seeded):
    default = client.get("/reports/slow/")
    explicit = client.get("/reports/slow/?since=2025-01-01&until=2026-01-01")

    assert default.status_code == 200
    assert table_rows(default.content.decode()) == table_rows(explicit.content.decode())
    assert len(table_rows(default.content.decode())) == 20


def test_slow_report_filters_reviews_on_an_unindexed_column(seeded):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Review._meta.db_table)

    indexed = {column for c in constraints.values() if c["index"] for column in c["columns"]}
    assert "created" not in indexed


def test_slow_report_rejects_a_malformed_date_with_a_message(client, seeded):
    response = client.get("/reports/slow/?since=yesterday")

    assert response.status_code == 400
    assert "since" in response.content.decode()
    assert "2025-01-31" in response.content.decode()


def test_slow_report_says_when_the_window_is_empty(client, seeded):
    response = client.get("/reports/slow/?since=1999-01-01&until=2000-01-01")

    assert response.status_code == 200
    assert "No reviews in this window." in response.content.decode()


def test_catalogue_second_hit_is_served_from_cache_without_sql(client, seeded):
    category_id = first_category_id()
    url = f"/catalogue/{category_id}/"

    with CaptureQueriesContext(connection) as first_queries:
        first = client.get(url)
    with CaptureQueriesContext(connection) as second_queries:
        second = client.get(url)

    assert first.status_code == second.status_code == 200
    assert len(first_queries) > 0
    assert len(second_queries) == 0
    assert first.content == second.content
    for name in Product.objects.filter(category_id=category_id).values_list("name", flat=True):
        assert name in second.content.decode()


def test_catalogue_caches_each_category_separately(client, seeded):
    first_id, second_id = Category.objects.order_by("pk").values_list("pk", flat=True)[:2]
    client.get(f"/catalogue/{first_id}/")

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/catalogue/{second_id}/")

    assert response.status_code == 200
    assert len(queries) > 0
    assert Category.objects.get(pk=second_id).name in response.content.decode()


def test_catalogue_of_a_missing_category_is_404(client, seeded):
    assert client.get("/catalogue/999999/").status_code == 404


def order_body(customer_id: int, items: list[tuple[int, int]]) -> str:
    lines = [{"product_id": pk, "qty": qty} for pk, qty in items]
    return json.dumps({"customer_id": customer_id, "items": lines})


def test_order_post_writes_the_order_and_its_items(client, seeded):
    first, second = Product.objects.order_by("pk")[:2]
    customer_id = 3

    response = client.post(
        "/orders/",
        order_body(customer_id, [(first.pk, 2), (second.pk, 1)]),
        content_type="application/json",
    )

    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get(pk=body["order_id"])
    assert order.customer_id == customer_id
    items = sorted(OrderItem.objects.filter(order=order).values_list("product_id", "qty", "price"))
    assert items == [(first.pk, 2, first.price), (second.pk, 1, second.price)]
    assert body["total"] == str(first.price * 2 + second.price)
    assert Product.objects.get(pk=first.pk).stock == first.stock - 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "must be JSON"),
        ("[1, 2]", "JSON object"),
        ('{"customer_id": 1, "items": []}', "items"),
        ('{"customer_id": true, "items": [{"product_id": 1, "qty": 1}]}', "customer_id"),
        ('{"customer_id": 1, "items": [{"product_id": 1, "qty": 0}]}', "qty"),
        ('{"customer_id": 999999, "items": [{"product_id": 1, "qty": 1}]}', "customer_id"),
        ('{"customer_id": 1, "items": [{"product_id": 999999, "qty": 1}]}', "product_id 999999"),
    ],
)
def test_order_post_rejects_bad_input_without_writing(client, seeded, payload, message):
    response = client.post("/orders/", payload, content_type="application/json")

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Order.objects.exists()
    assert not OrderItem.objects.exists()


def test_orders_only_accept_post(client, seeded):
    assert client.get("/orders/").status_code == 405


def test_flaky_with_fail_1_raises_a_server_error(client, db):
    with pytest.raises(DeliberateFailure):
        client.get("/flaky/?fail=1")

    assert Client(raise_request_exception=False).get("/flaky/?fail=1").status_code == 500


def test_flaky_with_fail_0_always_answers_200(client, db):
    responses = [client.get("/flaky/?fail=0&p=1") for _ in range(20)]

    assert {r.status_code for r in responses} == {200}


def test_flaky_probability_comes_from_p(client, db):
    assert client.get("/flaky/?p=0").status_code == 200
    with pytest.raises(DeliberateFailure):
        client.get("/flaky/?p=1")


@pytest.mark.parametrize(("draw", "fails"), [(0.05, True), (0.15, False)])
def test_flaky_fails_one_request_in_ten_by_default(client, db, monkeypatch, draw, fails):
    monkeypatch.setattr(views.random, "random", lambda: draw)

    if fails:
        with pytest.raises(DeliberateFailure):
            client.get("/flaky/")
    else:
        assert client.get("/flaky/").status_code == 200


@pytest.mark.parametrize("query", ["p=2", "p=x", "fail=yes"])
def test_flaky_rejects_bad_parameters_with_a_message(client, db, query):
    response = client.get(f"/flaky/?{query}")

    assert response.status_code == 400
    assert query.split("=")[0] in response.content.decode()


def test_api_product_returns_the_product_as_json(client, seeded):
    product = Product.objects.select_related("category").order_by("pk")[5]

    response = client.get(f"/api/products/{product.pk}/")

    assert response.status_code == 200
    data = response.json()
    assert data["id"] == product.pk
    assert data["name"] == product.name
    assert data["price"] == str(product.price)
    assert data["category"] == {"id": product.category_id, "name": product.category.name}
    assert data["review_count"] == Review.objects.filter(product=product).count()
    ratings = list(Review.objects.filter(product=product).values_list("rating", flat=True))
    assert data["average_rating"] == round(sum(ratings) / len(ratings), 2)


def test_api_product_missing_is_a_json_404(client, seeded):
    response = client.get("/api/products/999999/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "999999" in response.json()["error"]


def test_healthz_answers_without_touching_the_database(client):
    # No db fixture: pytest-django turns any database access into an error here.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content.decode() == "ok\n"
