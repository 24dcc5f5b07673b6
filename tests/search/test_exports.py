"""Staff exports: CSV streamed through one server-side cursor, kept in Redis per normalized
parameters, for those holding the model's view permission, rate-limited; and the admin's actions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from catalog.models import Product
from hybridsite import cache_keys
from orders.models import Order, OrderLine

pytestmark = pytest.mark.django_db(transaction=True)
PRODUCTS = "/api/internal/exports/products.csv"
ORDERS = "/api/internal/exports/orders.csv"


def staff(*codenames: str) -> Client:
    user = get_user_model().objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", password="x", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def rows(response) -> list[list[str]]:
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def orders(shop) -> list[Order]:
    """Two orders on 1 and 2 March 2026, of one customer."""
    customer = get_user_model().objects.create_user("shopper", password="x")
    placed = []
    for day, sku in ((1, "HAM-1"), (2, "SAW-1")):
        order = Order.objects.create(
            user=customer, idempotency_key=f"k{day}", currency="EUR", total=Decimal("10.00"), cart_version=1,
            created_at=datetime(2026, 3, day, 12, tzinfo=UTC),
        )
        product = shop[sku]
        OrderLine.objects.create(order=order, product=product, sku=sku, name=product.name, quantity=1,
                                 unit_price=Decimal("10.00"))
        placed.append(order)
    return placed


def test_products_export_has_every_product_with_prices_and_stock(shop, redis_clean):
    response = staff("view_product").get(PRODUCTS)
    assert response.status_code == 200 and response["X-Export-Cache"] == "miss"
    assert 'filename="products-start-now.csv"' in response["Content-Disposition"]
    header, *body = rows(response)
    assert header == ["sku", "name", "category", "active", "version", "updated_at", "prices", "stock"]
    drill = next(row for row in body if row[0] == "DRL-1")
    assert drill[1:4] == ["Cordless drill", "power-tools", "True"] and drill[6:] == ["EUR 89.00 USD 95.00", "1"]
    assert sorted(row[0] for row in body) == sorted(shop)


def test_orders_export_by_date_range_and_cached_per_normalized_range(orders, redis_clean):
    client = staff("view_order")
    first = client.get(ORDERS, {"since": "2026-03-02", "until": "2026-03-31"})
    assert first["X-Export-Cache"] == "miss"
    header, *body = rows(first)
    assert header[:2] == ["order", "created_at"] and [row[0] for row in body] == [str(orders[1].pk)]
    assert body[0][5:] == ["SAW-1", "Hand saw", "1", "10.00"]
    # The same range, spelled otherwise: from the cache, chunk by chunk, the same bytes.
    again = client.get(f"{ORDERS}?until=2026-3-31&since=2026-03-02&unknown=1")
    assert again["X-Export-Cache"] == "hit"
    assert rows(again) == [header, *body]
    assert [row[0] for row in rows(client.get(ORDERS, {"until": "2026-03-01"}))[1:]] == [str(orders[0].pk)]
    # A range that ends before it starts selects nothing: the header alone, as for any empty range.
    reversed_range = client.get(ORDERS, {"since": "2026-03-02", "until": "2026-03-01"})
    assert reversed_range.status_code == 200 and rows(reversed_range) == [header]
    assert len(list(redis_clean.scan_iter(match=cache_keys.export_chunks("x").rsplit(":", 1)[0] + ":*"))) == 3


def test_a_cached_export_never_outlives_its_time_nor_stays_half_written(shop, redis_clean, settings):
    settings.EXPORT_CHUNK_ROWS = 2
    client = staff("view_product")
    response = client.get(PRODUCTS)
    stream = iter(response.streaming_content)
    next(stream)  # half read: nothing kept yet
    assert client.get(PRODUCTS)["X-Export-Cache"] == "miss"
    rest = b"".join(stream)
    assert rest
    kept = redis_clean.keys(cache_keys.export_chunks("x").rsplit(":", 1)[0] + ":*")
    assert len(kept) == 1 and 0 < redis_clean.pttl(kept[0]) <= settings.EXPORT_CACHE_SECONDS * 1000
    assert redis_clean.llen(kept[0]) == 3  # header and 2 rows, 2 rows, 1 row
    settings.EXPORT_CACHE_MAX_BYTES = 10
    redis_clean.delete(*kept)
    assert rows(client.get(PRODUCTS))[1:]
    assert not redis_clean.keys(cache_keys.export_chunks("x").rsplit(":", 1)[0] + ":*")  # too big to keep


def test_export_streams_from_a_server_side_cursor(shop, redis_clean, settings):
    """Rows come through a cursor Postgres holds open, chunk by chunk: the response never has them
    all (a queryset evaluated whole would leave no cursor behind)."""
    settings.EXPORT_CHUNK_ROWS = 2
    Product.objects.bulk_create(
        Product(sku=f"BULK-{n:04d}", name=f"Bulk {n}", category_id=shop["HAM-1"].category_id) for n in range(200)
    )
    response = staff("view_product").get(PRODUCTS)
    stream = iter(response.streaming_content)
    first = next(stream)
    assert first.count(b"\n") == 3  # header and the first 2 rows
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE NOT is_holdable")
        assert cursor.fetchone()[0] == 1
    assert sum(chunk.count(b"\n") for chunk in stream) == 205 - 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors")
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize("query, field", [
    ({"since": "2026-13-01"}, "since"),
    ({"until": "yesterday"}, "until"),
])
def test_bad_ranges_are_400(shop, query, field):
    response = staff("view_order").get(ORDERS, query)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_exports_need_the_view_permission(shop):
    assert Client().get(PRODUCTS).status_code == 401
    assert staff().get(PRODUCTS).status_code == 403
    assert staff("view_order").get(PRODUCTS).status_code == 403
    assert staff("view_product").get(ORDERS).status_code == 403
    customer = get_user_model().objects.create_user("customer", password="x")
    token = Token.objects.create(user=customer).key
    customer.user_permissions.add(Permission.objects.get(codename="view_product"))
    assert Client(HTTP_AUTHORIZATION=f"Token {token}").get(PRODUCTS).status_code == 403  # not staff


def test_exports_are_rate_limited(shop, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "export": 2}
    client = staff("view_product")
    assert [client.get(PRODUCTS).status_code for _ in range(3)] == [200, 200, 429]


def test_admin_action_exports_the_selection_for_those_who_may_view(shop, orders, settings):
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_product", "view_order"]))
    client = Client()
    client.force_login(user)
    selected = [shop["HAM-1"].pk, shop["SAW-1"].pk]
    response = client.post(
        "/admin/catalog/product/", {"action": "export_products_csv", "_selected_action": selected}
    )
    assert response.status_code == 200
    assert sorted(row[0] for row in rows(response)[1:]) == ["HAM-1", "SAW-1"]
    response = client.post("/admin/orders/order/", {"action": "export_orders_csv", "_selected_action": [orders[0].pk]})
    assert [row[5] for row in rows(response)[1:]] == ["HAM-1"]

    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "export": 2}
    response = client.post("/admin/catalog/product/", {"action": "export_products_csv", "_selected_action": selected})
    assert not response.streaming and response.status_code == 302  # the changelist again, with the message

    user.user_permissions.remove(*Permission.objects.filter(codename="view_order"))
    response = client.post("/admin/orders/order/", {"action": "export_orders_csv", "_selected_action": [orders[0].pk]})
    assert response.status_code == 403
