"""The projection's guarantees, held for orders: Redis never keeps an older order than DynamoDB (a
failed refresh is retried), a duplicate delivery refreshes the cache, reads never go backwards
after a Postgres fallback, and the reads go on with DynamoDB or Redis away."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from catalog.models import OutboxEvent
from devtools.net import wait_for
from hybridsite import cache_keys
from orders.models import Order
from projections import cache, readpath
from projections.projector import project, put_document
from projections.registry import order_cache_name, order_key
from projections.relay import drain
from projections.tables import CustomerOrder
from tests.orders.conftest import Customer

pytestmark = pytest.mark.django_db(transaction=True)


def place(customer: Customer, key: str) -> dict:
    customer.fill(SKU_1=1)
    return customer.checkout(key)[1]


def change_note(order_id: int, note: str) -> int:
    """Another program changes the order in Postgres; returns its new version."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE orders_order SET note = %s WHERE id = %s", [note, order_id])
    return Order.objects.values_list("version", flat=True).get(pk=order_id)


def cached_version(user_id: int, order_id: int) -> int | None:
    raw = cache.client().get(cache_keys.document(order_cache_name(user_id, order_id)))
    return cache.decode(raw).version if raw is not None else None


def test_a_failed_cache_refresh_is_retried_until_redis_has_the_new_order(hammer, alice, redis_proxy):
    order = place(alice, "key-1")
    drain()
    v2 = change_note(order["id"], "v2")
    redis_proxy.down()
    assert drain().failed == 1  # DynamoDB has v2, Redis missed it: the row stays
    assert OutboxEvent.objects.filter(aggregate_type="order").exists()
    redis_proxy.up()
    wait_for(lambda: drain().projected == 1, 10, 0.2, "the retried projection")
    assert cached_version(alice.user_id, order["id"]) == v2
    assert alice.call("get", f"/api/orders/{order['id']}/")[1]["note"] == "v2"


def test_a_duplicate_delivery_refreshes_the_cache(hammer, alice):
    """A projector wrote v2 to DynamoDB and died before refreshing Redis (still v1)."""
    order = place(alice, "key-1")
    v1 = project("order", order["id"]).version
    v2 = change_note(order["id"], "v2")
    assert put_document(
        CustomerOrder, order_key(alice.user_id, order["id"]), owner=f"order#{order['id']}", version=v2,
        body=b'{"note":"v2"}', committed_at=None, projected_at=timezone.now(),
    )
    assert cached_version(alice.user_id, order["id"]) == v1
    outcome = project("order", order["id"])  # the retry: DynamoDB already holds v2
    assert (outcome.written, outcome.skipped) == (0, 1)
    assert cached_version(alice.user_id, order["id"]) == v2


def test_reads_do_not_go_backwards_after_a_postgres_fallback(hammer, alice, dynamodb_proxy):
    order = place(alice, "key-1")
    drain()
    url = f"/api/orders/{order['id']}/"
    v2 = change_note(order["id"], "v2")  # the relay is behind
    cache.client().delete(cache_keys.document(order_cache_name(alice.user_id, order["id"])))
    dynamodb_proxy.down()
    response, body = alice.call("get", url)
    assert (response.status_code, body["version"], response["X-Served-From"]) == (200, v2, "postgres")
    listed = alice.call("get", "/api/orders/")
    assert listed[0]["X-Served-From"] == "postgres" and listed[1]["results"][0]["version"] == v2

    dynamodb_proxy.up()
    readpath.dynamodb_breaker.reset()
    cache.client().delete(cache_keys.document(order_cache_name(alice.user_id, order["id"])))  # expired
    response, body = alice.call("get", url)
    assert response.status_code == 200 and body["version"] >= v2


def test_without_redis_the_orders_are_read_from_dynamodb(hammer, alice, redis_proxy):
    order = place(alice, "key-1")
    drain()
    redis_proxy.down()
    response, body = alice.call("get", f"/api/orders/{order['id']}/")
    assert (response.status_code, response["X-Served-From"], body) == (200, "dynamodb", order)
    listed, page = alice.call("get", "/api/orders/")
    assert (listed.status_code, listed["X-Served-From"], page["results"]) == (200, "dynamodb", [order])
