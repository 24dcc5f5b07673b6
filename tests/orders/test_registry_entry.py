"""The registry's promise, "one entry adds a view end to end", kept by the orders: besides the order
triggers and the ``"order"`` entry, nothing of the relay, projector, backfill or drift check knows
of orders, and each takes them up: trigger → outbox → relay → projector, drift check, repair,
backfill."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from django.db import connection

import projections
from catalog.models import OutboxEvent
from orders import services
from orders.models import Order
from projections.backfill import backfill
from projections.drift import check
from projections.projector import project
from projections.registry import AGGREGATES, order_key
from projections.relay import drain
from projections.tables import CustomerOrder
from tests.orders.conftest import Customer

pytestmark = pytest.mark.django_db(transaction=True)

GENERIC = ("relay.py", "projector.py", "backfill.py", "drift.py", "tasks.py", "cache.py", "pool.py")
MENTIONS_ORDERS = re.compile(r'"order"|\bOrder\b|CustomerOrder|\borders\b')


def stored(user_id: int, order_id: int) -> CustomerOrder | None:
    key = order_key(user_id, order_id)
    try:
        item = CustomerOrder.get(key["pk"], key["sk"], consistent_read=True)
    except CustomerOrder.DoesNotExist:
        return None
    return None if item.deleted else item


def repair(report) -> None:
    for aggregate_type, aggregate_id in sorted(report.drifted):
        project(aggregate_type, aggregate_id, repair=True)


def test_the_machinery_names_no_aggregate():
    source = Path(projections.__file__).parent
    assert {name: MENTIONS_ORDERS.findall((source / name).read_text()) for name in GENERIC} == dict.fromkeys(
        GENERIC, []
    )
    assert "order" in AGGREGATES


def test_one_registry_entry_takes_orders_through_every_part(hammer, saw, alice: Customer):
    orders = [
        services.order_create(user_id=alice.user_id, idempotency_key=f"k{n}", quantities={"SKU-2": 1}, cart_version=0)
        for n in range(3)
    ]
    # triggers → outbox: one row per change, in the order's own transaction
    assert set(OutboxEvent.objects.filter(aggregate_type="order").values_list("aggregate_id", flat=True)) == {
        order.pk for order in orders
    }
    # relay → projector
    drain()
    assert all(stored(alice.user_id, order.pk) is not None for order in orders)
    assert check(aggregates=["order"]).clean

    # drift check finds a missing, a stale and a wrong document, and an order gone from Postgres
    first, second, third = orders
    key = order_key(alice.user_id, first.pk)
    CustomerOrder.get(key["pk"], key["sk"]).delete()
    damaged = stored(alice.user_id, second.pk)
    assert damaged is not None
    damaged.body = orjson.dumps({**orjson.loads(damaged.body), "total": "0.01"}).decode()
    damaged.save()
    with connection.cursor() as cursor:  # a change that the relay never sees (its rows go)
        cursor.execute("UPDATE orders_order SET note = 'changed' WHERE id = %s", [third.pk])
        cursor.execute("DELETE FROM catalog_outboxevent")
    report = check(aggregates=["order"])
    assert (report.missing, report.differ, report.stale) == (1, 1, 1)
    assert report.drifted == {("order", order.pk) for order in orders}
    # repair
    repair(report)
    assert check(aggregates=["order"]).clean
    assert orjson.loads(stored(alice.user_id, third.pk).body)["note"] == "changed"

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM orders_orderallocation WHERE line_id IN"
                       " (SELECT id FROM orders_orderline WHERE order_id = %s)", [third.pk])
        cursor.execute("DELETE FROM orders_orderline WHERE order_id = %s", [third.pk])
        cursor.execute("DELETE FROM orders_order WHERE id = %s", [third.pk])
        cursor.execute("DELETE FROM catalog_outboxevent")
    report = check()  # a full check: items whose order no longer exists are extra
    assert report.extra == 1 and ("order", third.pk) in report.drifted
    repair(report)
    assert check().clean and stored(alice.user_id, third.pk) is None

    # backfill: every order again, from an empty table
    for item in CustomerOrder.scan():
        item.delete()
    assert backfill("order") == Order.objects.count() == 2
    assert all(stored(alice.user_id, order.pk) is not None for order in (first, second))
    assert check(aggregates=["order"]).clean
