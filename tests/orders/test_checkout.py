"""Checkout over HTTP (Django's test client, real Postgres, Redis and DynamoDB): the order from the
cart at Postgres prices, stock taken across warehouses, the cart cleared, and every answer an
Idempotency-Key can get — replay, 422, 409, recovery after a crash, a lease taken over."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from carts.selectors import cart_get
from catalog import services as catalog_services
from catalog.models import StockLevel
from orders import idempotency, services
from orders.models import Order, OrderAllocation
from orders.tables import IdempotencyRecord
from projections.relay import drain

pytestmark = pytest.mark.django_db(transaction=True)


def stock(sku: str) -> dict[str, int]:
    levels = StockLevel.objects.filter(product__sku=sku).order_by("warehouse__code")
    return dict(levels.values_list("warehouse__code", "quantity"))


def test_an_order_is_placed_from_the_cart_at_postgres_prices_and_the_cart_is_cleared(hammer, saw, alice):
    alice.fill(SKU_1=4, SKU_2=1)
    # The price changes in Postgres only: the cart's product documents still say 9.99.
    catalog_services.price_set(product=hammer, currency="EUR", amount=Decimal("8.00"))

    response, body = alice.checkout("key-1", {"note": "leave at the door"})

    assert response.status_code == 201, body
    assert "Idempotent-Replayed" not in response
    assert body["currency"] == "EUR" and body["total"] == "56.50" and body["note"] == "leave at the door"
    assert body["lines"] == [
        {"sku": "SKU-1", "name": "Hammer", "quantity": 4, "unit_price": "8.00"},
        {"sku": "SKU-2", "name": "Saw", "quantity": 1, "unit_price": "24.50"},
    ]
    # Berlin (3) is the fuller warehouse: it ships first, Amsterdam the last one.
    assert stock("SKU-1") == {"AMS1": 1, "BER1": 0} and stock("SKU-2") == {"AMS1": 9}
    allocated = OrderAllocation.objects.filter(line__order_id=body["id"], line__sku="SKU-1")
    assert dict(allocated.values_list("warehouse__code", "quantity")) == {"BER1": 3, "AMS1": 1}
    assert cart_get(user_id=alice.user_id).lines == {}
    order = Order.objects.get()
    assert (order.user_id, order.idempotency_key, order.version) == (alice.user_id, "key-1", body["version"])

    detail, detail_body = alice.call("get", f"/api/orders/{body['id']}/")
    assert detail.status_code == 200 and detail_body == body
    listed = alice.call("get", f"/api/orders/?min_version={body['version']}")[1]
    assert listed == {"results": [body], "next_cursor": None}


def test_the_same_key_and_body_replay_the_first_answer_without_a_second_order(hammer, alice):
    alice.fill(SKU_1=2)
    first, _ = alice.checkout("key-1", {"note": "hi"})
    alice.fill(SKU_1=1)  # a new cart: a second order would take it

    again, _ = alice.checkout("key-1", {"note": "hi"})

    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert Order.objects.count() == 1 and sum(stock("SKU-1").values()) == 3
    assert cart_get(user_id=alice.user_id).lines == {"SKU-1": 1}


def test_the_same_key_with_another_body_is_refused_and_writes_nothing(hammer, alice):
    alice.fill(SKU_1=1)
    alice.checkout("key-1", {"note": "first"})
    alice.fill(SKU_1=2)

    response, body = alice.checkout("key-1", {"note": "second"})

    assert response.status_code == 422
    assert body["error"]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1 and cart_get(user_id=alice.user_id).lines == {"SKU-1": 2}


def test_a_body_that_means_the_same_is_the_same_request(hammer, alice):
    """``{}`` and an empty note validate to the same request: a retry may spell it either way."""
    alice.fill(SKU_1=1)
    first, _ = alice.checkout("key-1", {})
    again, _ = alice.checkout("key-1", {"note": ""})
    assert again.status_code == 201 and again.content == first.content and again["Idempotent-Replayed"] == "true"


def in_progress(user_id: int, key: str, lease_until: float) -> IdempotencyRecord:
    """The record a request holding ``key`` leaves while it works (or after it died)."""
    record = IdempotencyRecord(
        f"{user_id}#{key}", request_hash=idempotency.request_hash(data={"note": ""}), state=idempotency.IN_PROGRESS,
        token="another-request", lease_until=lease_until, expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    record.save()
    return record


def test_a_duplicate_while_the_first_is_in_progress_is_told_to_retry_later(hammer, alice):
    alice.fill(SKU_1=1)
    in_progress(alice.user_id, "key-1", lease_until=time.time() + 3600)

    response, body = alice.checkout("key-1")

    assert response.status_code == 409 and body["error"]["code"] == "request_in_progress"
    assert int(response["Retry-After"]) >= 1
    assert Order.objects.count() == 0 and cart_get(user_id=alice.user_id).lines == {"SKU-1": 1}


def test_a_retry_after_a_crash_between_commit_and_answer_finds_the_committed_order(hammer, alice):
    """The first attempt committed its order and died before storing its answer or clearing the
    cart: its record is still in progress, its lease still running."""
    alice.fill(SKU_1=2)
    cart = cart_get(user_id=alice.user_id)
    in_progress(alice.user_id, "key-1", lease_until=time.time() + 3600)
    committed = services.order_create(
        user_id=alice.user_id, idempotency_key="key-1", quantities=cart.lines, cart_version=cart.version
    )

    response, body = alice.checkout("key-1")

    assert response.status_code == 201 and response["Idempotent-Replayed"] == "true"
    assert body["id"] == committed.pk and body["lines"][0]["quantity"] == 2
    assert Order.objects.count() == 1 and sum(stock("SKU-1").values()) == 3
    assert cart_get(user_id=alice.user_id).lines == {}  # finished for the dead attempt
    stored = IdempotencyRecord.get(f"{alice.user_id}#key-1", consistent_read=True)
    assert stored.state == idempotency.DONE and stored.body.encode() == response.content


def test_a_claim_whose_holder_died_before_committing_is_taken_over(hammer, alice):
    alice.fill(SKU_1=1)
    in_progress(alice.user_id, "key-1", lease_until=time.time() - 1)

    response, body = alice.checkout("key-1")

    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Order.objects.get().pk == body["id"]


def test_a_failed_checkout_writes_nothing_and_frees_its_key(hammer, alice):
    response, body = alice.checkout("key-1")
    assert response.status_code == 409
    assert body["error"] == {"code": "cart_empty", "message": "The cart is empty."}

    alice.fill(SKU_1=6)
    response, body = alice.checkout("key-1")
    assert response.status_code == 409 and body["error"]["code"] == "out_of_stock"
    assert "SKU-1 (5 left)" in body["error"]["message"]
    assert Order.objects.count() == 0 and stock("SKU-1") == {"AMS1": 2, "BER1": 3}
    assert cart_get(user_id=alice.user_id).lines == {"SKU-1": 6}

    alice.fill(SKU_1=5)
    response, body = alice.checkout("key-1")
    assert response.status_code == 201, body
    assert stock("SKU-1") == {"AMS1": 0, "BER1": 0}


def test_a_product_no_longer_sold_stops_the_order(hammer, saw, alice):
    alice.fill(SKU_1=1, SKU_2=1)
    catalog_services.product_update(product=saw, is_active=False)

    response, body = alice.checkout("key-1")

    assert response.status_code == 409 and body["error"]["code"] == "unavailable"
    assert "SKU-2" in body["error"]["message"] and "SKU-1" not in body["error"]["message"]
    assert Order.objects.count() == 0 and sum(stock("SKU-1").values()) == 5


@pytest.mark.parametrize(
    ("headers", "body", "field"),
    [
        ({}, {}, "Idempotency-Key"),
        ({"HTTP_IDEMPOTENCY_KEY": ""}, {}, "Idempotency-Key"),
        ({"HTTP_IDEMPOTENCY_KEY": "has space"}, {}, "Idempotency-Key"),
        ({"HTTP_IDEMPOTENCY_KEY": "k" * 256}, {}, "Idempotency-Key"),
        ({"HTTP_IDEMPOTENCY_KEY": "key-1"}, {"note": "x" * 501}, "note"),
        ({"HTTP_IDEMPOTENCY_KEY": "key-1"}, {"price": "0.01"}, "price"),
        ({"HTTP_IDEMPOTENCY_KEY": "key-1"}, [], "non_field_errors"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_claims_no_key(hammer, alice, headers, body, field):
    alice.fill(SKU_1=1)
    response, answer = alice.call("post", "/api/orders/", body, **headers)
    assert response.status_code == 400
    assert answer["error"]["code"] == "invalid" and list(answer["error"]["fields"]) == [field]
    assert Order.objects.count() == 0 and IdempotencyRecord.count() == 0


def test_orders_need_an_authenticated_customer(hammer, client):
    response = client.post("/api/orders/", data={}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
    assert client.get("/api/orders/").status_code == 401
    assert client.get("/api/orders/1/").status_code == 401


def test_checkouts_are_rate_limited_per_customer(hammer, alice, bob, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "checkout": 2}
    statuses = [alice.checkout(f"key-{n}")[0] for n in range(3)]
    assert [response.status_code for response in statuses] == [409, 409, 429]  # empty carts: tries count too
    assert int(statuses[-1]["Retry-After"]) >= 1
    assert alice.call("get", "/api/orders/")[0].status_code == 200  # reads are counted apart
    bob.fill(SKU_1=1)
    assert bob.checkout("key-0")[0].status_code == 201


def test_pages_of_orders_newest_first(hammer, alice):
    ids = []
    for n in range(3):
        alice.fill(SKU_1=1)
        ids.append(alice.checkout(f"key-{n}")[1]["id"])
    drain()  # the relay projects the orders

    response, page = alice.call("get", "/api/orders/?limit=2")
    assert [order["id"] for order in page["results"]] == ids[:0:-1]
    response, rest = alice.call("get", f"/api/orders/?limit=2&cursor={page['next_cursor']}")
    assert [order["id"] for order in rest["results"]] == ids[:1] and rest["next_cursor"] is None
    for bad in ("limit=0", "limit=101", "limit=x", "cursor=x", "min_version=-1", "min_version=99999999999999999999"):
        assert alice.call("get", f"/api/orders/?{bad}")[0].status_code == 400, bad


def test_without_dynamodb_checkout_answers_503_and_writes_nothing(hammer, alice, dynamodb_proxy):
    alice.fill(SKU_1=1)
    dynamodb_proxy.down()

    response, body = alice.checkout("key-1")

    assert response.status_code == 503 and body["error"]["code"] == "unavailable"
    assert int(response["Retry-After"]) >= 1
    assert Order.objects.count() == 0 and sum(stock("SKU-1").values()) == 5


def test_a_cart_changed_after_it_was_ordered_from_is_left_as_the_customer_wrote_it(hammer, saw, alice):
    alice.fill(SKU_1=1)
    cart = cart_get(user_id=alice.user_id)
    order = services.order_create(
        user_id=alice.user_id, idempotency_key="key-1", quantities=cart.lines, cart_version=cart.version
    )
    alice.fill(SKU_2=1)  # after the commit, before the cart was cleared

    response, body = alice.checkout("key-1")  # the retry finishes the first attempt's work

    assert response.status_code == 201 and body["id"] == order.pk
    assert cart_get(user_id=alice.user_id).lines == {"SKU-1": 1, "SKU-2": 1}
