"""A customer's orders are read like the catalog: Redis -> DynamoDB -> Postgres, nothing asked of
Postgres on a hit (the token's owner included), private to the customer in every layer, and never
without the order the customer just placed when they ask with its version."""

from __future__ import annotations

import pytest
from django.db import connection

from catalog.models import OutboxEvent
from hybridsite import cache_keys
from orders.models import Order
from projections import cache
from projections.cursors import encode_order_cursor
from projections.registry import order_cache_name, order_key, orders_listing
from projections.relay import drain
from projections.tables import CustomerOrder
from tests.orders.conftest import Customer

pytestmark = pytest.mark.django_db(transaction=True)


def place(customer: Customer, key: str, **quantities: int) -> dict:
    customer.fill(**quantities)
    response, body = customer.checkout(key)
    assert response.status_code == 201, body
    return body


def test_checkout_writes_an_outbox_row_and_the_relay_projects_the_order_under_its_customer(hammer, alice):
    order = place(alice, "key-1", SKU_1=2)
    assert OutboxEvent.objects.filter(aggregate_type="order", aggregate_id=order["id"]).exists()

    drain()

    key = order_key(alice.user_id, order["id"])
    item = CustomerOrder.get(key["pk"], key["sk"], consistent_read=True)
    assert (item.version, item.deleted, item.owner) == (order["version"], False, f"order#{order['id']}")
    assert not OutboxEvent.objects.exists()


def test_a_hit_asks_postgres_nothing_not_even_for_the_token(hammer, alice, django_assert_num_queries):
    order = place(alice, "key-1", SKU_1=1)
    drain()
    detail_url, list_url = f"/api/orders/{order['id']}/", "/api/orders/"
    alice.call("get", detail_url), alice.call("get", list_url)  # fills the cache (and the token's owner)

    with django_assert_num_queries(0):
        detail, detail_body = alice.call("get", detail_url)
        listed, page = alice.call("get", list_url)

    assert (detail.status_code, detail["X-Served-From"], detail_body) == (200, "cache", order)
    assert detail["ETag"] == f'"{order["version"]}"' and detail["Cache-Control"] == "private, no-store"
    assert (listed.status_code, listed["X-Served-From"]) == (200, "cache")
    assert page == {"results": [order], "next_cursor": None}
    assert listed["Cache-Control"] == "private, no-store"
    assert alice.call("get", detail_url, HTTP_IF_NONE_MATCH=detail["ETag"])[0].status_code == 304


def test_another_customer_gets_neither_the_order_nor_the_page_nor_the_cursor(hammer, alice, bob):
    for n in range(3):
        place(alice, f"key-{n}", SKU_1=1)
    drain()
    alices_page = alice.call("get", "/api/orders/?limit=2")[1]
    first = alices_page["results"][0]
    assert alice.call("get", f"/api/orders/{first['id']}/")[0].status_code == 200  # now in the cache

    detail, body = bob.call("get", f"/api/orders/{first['id']}/")
    assert detail.status_code == 404 and body["error"]["code"] == "not_found"
    with_alices_cursor, body = bob.call("get", f"/api/orders/?limit=2&cursor={alices_page['next_cursor']}")
    assert with_alices_cursor.status_code == 400 and body["error"]["fields"].keys() == {"cursor"}
    # A cursor signed for Bob at Alice's position pages Bob's partition: nothing of Alice's.
    forged = encode_order_cursor(bob.user_id, order_key(alice.user_id, first["id"])["sk"])
    assert bob.call("get", f"/api/orders/?limit=2&cursor={forged}")[1] == {"results": [], "next_cursor": None}
    assert bob.call("get", "/api/orders/?limit=2")[1] == {"results": [], "next_cursor": None}
    # Every key names its customer: Bob's absence is cached apart from Alice's order.
    raw = cache.read(cache_keys.document(order_cache_name(bob.user_id, first["id"])))
    assert raw is not None and cache.decode(raw).status == 404
    assert alice.call("get", f"/api/orders/{first['id']}/")[1] == first


def test_the_list_read_right_after_checkout_holds_the_order(hammer, alice):
    first = place(alice, "key-1", SKU_1=1)
    drain()
    assert [o["id"] for o in alice.call("get", "/api/orders/")[1]["results"]] == [first["id"]]  # cached

    second = place(alice, "key-2", SKU_1=1)  # not projected yet: no relay has run
    stale, stale_page = alice.call("get", "/api/orders/")
    assert [o["id"] for o in stale_page["results"]] == [first["id"]] and stale["X-Served-From"] == "cache"

    fresh, page = alice.call("get", f"/api/orders/?min_version={second['version']}")
    assert fresh.status_code == 200 and fresh["X-Served-From"] == "postgres"
    assert page["results"] == [second, first]
    detail, body = alice.call("get", f"/api/orders/{second['id']}/?min_version={second['version']}")
    assert (detail.status_code, body) == (200, second)
    # A version none of her orders has: Postgres's page is served (it holds every order placed), as
    # is a later page, whose orders are all older than the one just placed.
    above, above_page = alice.call("get", f"/api/orders/?min_version={second['version'] + 10**12}")
    assert (above.status_code, above["X-Served-From"], above_page) == (200, "postgres", page)
    older, older_page = alice.call("get", f"/api/orders/?limit=1&min_version={second['version']}")
    assert older_page["results"] == [second] and older_page["next_cursor"]
    cursor = older_page["next_cursor"]
    later, later_page = alice.call("get", f"/api/orders/?limit=1&cursor={cursor}&min_version={second['version']}")
    assert (later.status_code, later_page["results"]) == (200, [first])
    detail_above = alice.call("get", f"/api/orders/{second['id']}/?min_version={second['version'] + 1}")[0]
    assert detail_above.status_code == 409  # one order has a version: the client asked for one it does not have

    drain()  # the projection moves the listing to a new generation: the next read is DynamoDB's
    projected, projected_page = alice.call("get", "/api/orders/")
    assert projected["X-Served-From"] == "dynamodb" and projected_page["results"] == [second, first]


def test_the_list_read_after_checkout_holds_the_order_when_an_older_one_was_projected_past_it(hammer, alice):
    """An older order changed after the checkout has a higher version than the new order. Projected
    first (here by a read of it; a retried projection of the new order does the same), it must not
    let a page without the new order pass for the one the client asked for."""
    first = place(alice, "key-1", SKU_1=1)
    drain()
    second = place(alice, "key-2", SKU_1=1)  # not projected yet
    Order.objects.filter(pk=first["id"]).update(note="gift wrap")  # another program, after the checkout
    changed = Order.objects.values_list("version", flat=True).get(pk=first["id"])
    assert changed > second["version"]
    assert alice.call("get", f"/api/orders/{first['id']}/?min_version={changed}")[1]["version"] == changed

    listed, page = alice.call("get", f"/api/orders/?min_version={second['version']}")

    assert listed.status_code == 200 and [o["id"] for o in page["results"]] == [second["id"], first["id"]]
    assert page["results"][0] == second


def test_an_order_changed_or_deleted_by_sql_is_projected_again(hammer, alice):
    order = place(alice, "key-1", SKU_1=1)
    drain()
    assert alice.call("get", f"/api/orders/{order['id']}/")[1]["note"] == ""

    with connection.cursor() as cursor:  # another program, straight to Postgres
        cursor.execute("UPDATE orders_order SET note = 'gift wrap' WHERE id = %s", [order["id"]])
    drain()
    changed = alice.call("get", f"/api/orders/{order['id']}/")[1]
    assert changed["note"] == "gift wrap" and changed["version"] > order["version"]
    assert changed["version"] == Order.objects.get().version

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM orders_orderallocation")
        cursor.execute("DELETE FROM orders_orderline")
        cursor.execute("DELETE FROM orders_order")
    drain()
    assert alice.call("get", f"/api/orders/{order['id']}/")[0].status_code == 404
    assert alice.call("get", "/api/orders/")[1] == {"results": [], "next_cursor": None}
    key = order_key(alice.user_id, order["id"])
    assert CustomerOrder.get(key["pk"], key["sk"], consistent_read=True).deleted


def test_bad_parameters_are_400_and_cache_nothing(hammer, alice):
    for bad in ("limit=0", "limit=101", "cursor=x", "cursor=" + "x" * 300, "min_version=x", "min_version=-1"):
        response, body = alice.call("get", f"/api/orders/?{bad}")
        assert response.status_code == 400 and body["error"]["code"] == "invalid", bad
    assert cache.client().get(cache_keys.listing_generation(orders_listing(alice.user_id))) is None


def test_reads_need_a_customer(hammer, client):
    assert client.get("/api/orders/").status_code == 401
    assert client.get("/api/orders/1/").status_code == 401
