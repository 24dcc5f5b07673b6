"""The checkout guarantees under concurrency, each request on its own thread and its own Postgres
connection, all released at once by a barrier: one order per Idempotency-Key, and no oversell."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connections

from catalog.models import StockLevel
from orders.models import Order, OrderAllocation, OrderLine

from .conftest import Customer, make_customer, on_sale

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_limits(settings) -> None:
    settings.THROTTLE_RATES = {scope: 10**9 for scope in settings.THROTTLE_RATES}


def at_once(calls: list[Callable[[], tuple]]) -> list[tuple]:
    """Run every call on its own thread, released together; their results in call order."""
    start = threading.Barrier(len(calls))
    results: list[tuple] = [()] * len(calls)

    def run(n: int) -> None:
        try:
            start.wait()
            results[n] = calls[n]()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def error(body: dict) -> str:
    return body["error"]["code"]


def test_fifty_concurrent_checkouts_with_one_key_place_exactly_one_order(hammer, alice: Customer):
    alice.fill(SKU_1=2)

    results = at_once([lambda: alice.checkout("the-key") for _ in range(50)])

    order = Order.objects.get()  # exactly one
    assert OrderLine.objects.get().quantity == 2
    assert sum(StockLevel.objects.filter(product=hammer).values_list("quantity", flat=True)) == 3
    outcomes = Counter(
        (response.status_code, response.get("Idempotent-Replayed", "") if response.status_code == 201 else error(body))
        for response, body in results
    )
    # One request placed it; the others were told to retry or, once it committed, were answered
    # with its order.
    assert outcomes[(201, "")] == 1
    assert set(outcomes) <= {(201, ""), (201, "true"), (409, "request_in_progress")}, outcomes
    assert {body["id"] for response, body in results if response.status_code == 201} == {order.pk}
    # Once it has finished, every retry is answered with its order.
    again, body = alice.checkout("the-key")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true" and body["id"] == order.pk


def test_a_hundred_concurrent_orders_for_ten_units_sell_exactly_ten(tools, warehouses):
    ams, ber = warehouses
    lamp = on_sale("LAMP-1", "Lamp", "15.00", tools, {ams: 4, ber: 6})
    customers = [make_customer(f"customer{n}") for n in range(100)]
    for customer in customers:
        customer.fill(LAMP_1=1)

    results = at_once([lambda customer=customer: customer.checkout("buy-lamp") for customer in customers])

    statuses = Counter(
        (response.status_code, "" if response.status_code == 201 else error(body)) for response, body in results
    )
    assert statuses == {(201, ""): 10, (409, "out_of_stock"): 90}
    left = StockLevel.objects.filter(product=lamp).values_list("warehouse__code", "quantity")
    assert dict(left) == {"AMS1": 0, "BER1": 0}
    assert Order.objects.count() == 10
    assert sum(OrderAllocation.objects.values_list("quantity", flat=True)) == 10
