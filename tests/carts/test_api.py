"""The cart API over HTTP (Django's test client): the customer's own cart, ETag/If-Match, limits,
the one error shape, and no Postgres query per request once the token is known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from carts.selectors import cart_get, state_of
from carts.tables import Cart
from projections.projector import project

pytestmark = pytest.mark.django_db(transaction=True)


def customer(name: str) -> tuple[Client, int]:
    user = get_user_model().objects.create_user(name, password="x")
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}"), user.pk


def call(client: Client, method: str, url: str, body: object = None, **headers):
    response = getattr(client, method)(
        url, data=json.dumps(body) if body is not None else None, content_type="application/json", **headers
    )
    return response, (orjson.loads(response.content) if response.content else None)


@pytest.fixture
def on_sale(product):
    project("product", product.pk)
    return product


@pytest.fixture
def alice():
    return customer("alice")


def test_put_get_and_clear_a_cart_with_indicative_prices(on_sale, alice):
    client, user_id = alice
    response, body = call(client, "get", "/api/cart/")
    assert response.status_code == 200 and body["version"] == 0 and body["lines"] == []
    assert response["ETag"] == '"0"'

    response, body = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 3})
    assert response.status_code == 200, body
    assert body["lines"] == [
        {"sku": "SKU-1", "quantity": 3, "name": "Hammer", "available": True, "unit_prices": {"EUR": "9.99"}}
    ]
    assert body["totals"] == {"EUR": "29.97"} and body["prices_indicative"] is True
    assert response["ETag"] == f'"{body["version"]}"'
    assert cart_get(user_id=user_id).lines == {"SKU-1": 3}

    response, body = call(client, "delete", "/api/cart/items/SKU-1/")
    assert response.status_code == 200 and body["lines"] == []
    response, body = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 1})
    response, cleared = call(client, "delete", "/api/cart/", HTTP_IF_MATCH=response["ETag"])
    assert response.status_code == 200 and cleared["lines"] == [] and cleared["version"] == body["version"] + 1


def test_a_write_on_a_stale_etag_is_412_and_writes_nothing(on_sale, alice):
    client, user_id = alice
    first, _ = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 1})
    second, body = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 2}, HTTP_IF_MATCH=first["ETag"])
    assert second.status_code == 200
    for method, url, payload in (
        ("put", "/api/cart/items/SKU-1/", {"quantity": 7}),
        ("delete", "/api/cart/items/SKU-1/", None),
        ("delete", "/api/cart/", None),
    ):
        response, error = call(client, method, url, payload, HTTP_IF_MATCH=first["ETag"])
        assert response.status_code == 412 and error["error"]["code"] == "precondition_failed"
        assert response["ETag"] == second["ETag"]
    assert cart_get(user_id=user_id).lines == {"SKU-1": 2}
    assert cart_get(user_id=user_id).version == body["version"]


@pytest.mark.parametrize("if_match", ["1", '"abc"', '"-1"', '"' + "9" * 20 + '"', '""'])
def test_a_malformed_if_match_is_400(on_sale, alice, if_match):
    client, _ = alice
    response, body = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 1}, HTTP_IF_MATCH=if_match)
    assert response.status_code == 400 and "If-Match" in body["error"]["fields"]


@pytest.mark.parametrize("payload", [
    {"quantity": 0}, {"quantity": -1}, {"quantity": 100}, {"quantity": "many"}, {"quantity": None},
    {}, {"quantity": 1, "price": "0.01"}, [1], {"quantity": 10**30},
])
def test_bad_quantities_are_400_in_the_error_shape(on_sale, alice, payload):
    client, user_id = alice
    response, body = call(client, "put", "/api/cart/items/SKU-1/", payload)
    assert response.status_code == 400, body
    assert body["error"]["code"] == "invalid" and body["error"]["fields"]
    assert cart_get(user_id=user_id).version == 0


def test_unknown_and_inactive_skus_are_404_and_a_full_cart_is_409(on_sale, alice, settings):
    client, user_id = alice
    response, body = call(client, "put", "/api/cart/items/NO-SUCH-SKU/", {"quantity": 1})
    assert response.status_code == 404
    assert body["error"] == {"code": "not_found", "message": "No product with this SKU is on sale."}

    on_sale.is_active = False
    on_sale.save()
    project("product", on_sale.pk)
    response, body = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 1})
    assert response.status_code == 404 and body["error"]["code"] == "not_found"

    on_sale.is_active = True
    on_sale.save()
    project("product", on_sale.pk)
    settings.CART_MAX_LINES = 1
    assert call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 1})[0].status_code == 200
    second = on_sale.__class__.objects.create(sku="SKU-2", name="Saw", category=on_sale.category)
    project("product", second.pk)
    response, body = call(client, "put", "/api/cart/items/SKU-2/", {"quantity": 1})
    assert response.status_code == 409
    assert body["error"] == {"code": "cart_full", "message": "A cart holds at most 1 lines."}
    assert cart_get(user_id=user_id).lines == {"SKU-1": 1}


def test_cart_requests_make_no_postgres_query(on_sale, alice, monkeypatch):
    """The token's owner is cached in Redis by the first request. So is the read-only switch that
    every API write asks (ops), for FLAG_CACHE_SECONDS: one query per process per that period, kept
    out of this test by a long cache time, so that what is measured is the cart's own path."""
    client, user_id = alice
    monkeypatch.setattr(caches["flags"], "default_timeout", 3600)
    caches["flags"].delete_pattern("*")
    call(client, "delete", "/api/cart/")
    with CaptureQueriesContext(connection) as queries:
        put, _ = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 2})
        changed, _ = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 4}, HTTP_IF_MATCH=put["ETag"])
        read, _ = call(client, "get", "/api/cart/")
        removed, _ = call(client, "delete", "/api/cart/items/SKU-1/")
        cleared, _ = call(client, "delete", "/api/cart/")
    assert [r.status_code for r in (put, changed, read, removed, cleared)] == [200] * 5
    assert [q["sql"] for q in queries.captured_queries] == []
    assert cart_get(user_id=user_id).lines == {}


def test_anonymous_and_revoked_tokens_are_refused(on_sale, alice):
    client, user_id = alice
    assert call(Client(), "get", "/api/cart/")[0].status_code == 401
    stranger = Client(HTTP_AUTHORIZATION="Token nope")
    assert call(stranger, "put", "/api/cart/items/SKU-1/", {"quantity": 1})[0].status_code == 401
    assert call(client, "get", "/api/cart/")[0].status_code == 200  # cached now
    Token.objects.filter(user_id=user_id).delete()
    response, body = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 1})
    assert response.status_code == 401 and body["error"]["code"] == "authentication_failed"
    assert cart_get(user_id=user_id).version == 0


def test_a_deactivated_customer_is_refused_at_once(on_sale, alice):
    client, user_id = alice
    assert call(client, "get", "/api/cart/")[0].status_code == 200
    user = get_user_model().objects.get(pk=user_id)
    user.is_active = False
    user.save()
    assert call(client, "get", "/api/cart/")[0].status_code == 401


def test_bola_another_customer_sees_and_changes_only_their_own_cart(on_sale, alice):
    client, alice_id = alice
    put, alice_cart = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 5})
    mallory, mallory_id = customer("mallory")
    response, body = call(mallory, "get", "/api/cart/")
    assert response.status_code == 200 and body["lines"] == [] and body["version"] == 0
    # Her own cart, whatever she names: Alice's ETag, Alice's SKU.
    assert call(mallory, "delete", "/api/cart/", HTTP_IF_MATCH=put["ETag"])[0].status_code == 412
    assert call(mallory, "delete", "/api/cart/items/SKU-1/")[0].status_code == 200
    assert call(mallory, "delete", "/api/cart/")[0].status_code == 200
    assert cart_get(user_id=alice_id).lines == {"SKU-1": 5}
    assert cart_get(user_id=alice_id).version == alice_cart["version"]
    assert cart_get(user_id=mallory_id).version == 0


def test_an_idle_cart_reads_empty_and_a_new_one_never_reuses_its_versions(on_sale, alice, settings):
    """Whether DynamoDB's TTL has deleted the expired item yet or not (it may, at any moment): the
    cart reads empty, and the next write's version is above every version the old cart had."""
    client, _ = alice
    settings.CART_IDLE_SECONDS = 0  # expired as soon as written
    response, old = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 5})
    response, again = call(client, "get", "/api/cart/")
    assert again["lines"] == []
    settings.CART_IDLE_SECONDS = 3600
    response, renewed = call(client, "put", "/api/cart/items/SKU-2/", {"quantity": 1})
    assert response.status_code == 404  # SKU-2 is not on sale: nothing written
    response, renewed = call(client, "put", "/api/cart/items/SKU-1/", {"quantity": 1})
    assert response.status_code == 200 and [line["quantity"] for line in renewed["lines"]] == [1]
    assert renewed["version"] > old["version"]


def test_an_expired_item_is_an_empty_cart_that_keeps_its_version():
    item = Cart("7", version=41, lines={"SKU-1": 2}, updated_at=datetime.now(UTC),
                expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert (state_of(item).lines, state_of(item).version) == ({}, 41)
    item.expires_at = datetime.now(UTC) + timedelta(hours=1)
    assert state_of(item).lines == {"SKU-1": 2}
