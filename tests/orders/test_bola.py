"""Object-level authorization: a customer reaches their own orders only. Another customer's order
is a 404 with the same body as an order that does not exist (never a 403 that confirms it), and an
Idempotency-Key belongs to the customer who sent it."""

from __future__ import annotations

import pytest

from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


def test_another_customers_order_is_not_found_and_not_listed(hammer, alice, bob):
    alice.fill(SKU_1=1)
    order_id = alice.checkout("key-1")[1]["id"]

    response, body = bob.call("get", f"/api/orders/{order_id}/")
    missing, missing_body = bob.call("get", f"/api/orders/{order_id + 1000}/")

    assert (response.status_code, body) == (missing.status_code, missing_body) == (404, missing_body)
    assert body["error"]["code"] == "not_found"
    assert bob.call("get", "/api/orders/")[1] == {"results": [], "next_cursor": None}
    assert alice.call("get", f"/api/orders/{order_id}/")[0].status_code == 200


def test_another_customers_key_replays_nothing_of_theirs(hammer, alice, bob):
    """Bob sending Alice's key (and body) places Bob's own order from Bob's cart; Alice's answer is
    never replayed to him, and her order is untouched."""
    alice.fill(SKU_1=1)
    alices = alice.checkout("shared-key")[1]

    response, bobs = bob.checkout("shared-key")
    assert response.status_code == 409 and bobs["error"] == {"code": "cart_empty", "message": "The cart is empty."}

    bob.fill(SKU_1=2)
    response, bobs = bob.checkout("shared-key")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert bobs["id"] != alices["id"] and bobs["lines"][0]["quantity"] == 2
    assert dict(Order.objects.values_list("user__username", "idempotency_key")) == {
        "alice": "shared-key", "bob": "shared-key",
    }


@pytest.mark.parametrize("path", ["0", "99999999999999999999", "-1", "abc"])
def test_ids_that_cannot_exist_are_404_from_the_resolver(client, path, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(f"/api/orders/{path}/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
