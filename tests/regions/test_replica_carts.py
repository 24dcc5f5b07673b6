"""A replica region's cart writes (docs/architecture/regions.md): the product a line names is looked
up as a replica reads it, its own layers, then the home region's DynamoDB, and Postgres only when
that cannot be reached; a product not replicated yet is not taken for an unknown one, and the replica
projects nothing into its own tables."""

from __future__ import annotations

import json

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from catalog import services
from catalog.models import Product
from devtools.net import free_port
from hybridsite.dynamodb import get_item
from projections.projector import project
from projections.registry import product_key
from projections.tables import ProductDocument
from tests.regions.conftest import Regions

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.aws_engine(reason="two DynamoDB Local processes (a replica region and its home region)"),
]


def customer(name: str) -> Client:
    user = get_user_model().objects.create_user(name, password="x")
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def put_line(client: Client, sku: str, quantity: int) -> tuple[int, dict]:
    response = client.put(
        f"/api/cart/items/{sku}/", data=json.dumps({"quantity": quantity}), content_type="application/json"
    )
    return response.status_code, orjson.loads(response.content)


def lines(body: dict) -> list[tuple[str, int, str | None, bool, dict[str, str]]]:
    return [
        (line["sku"], line["quantity"], line["name"], line["available"], line["unit_prices"]) for line in body["lines"]
    ]


def test_a_product_not_replicated_yet_is_put_in_a_replica_cart_from_the_home_regions_dynamodb(
    product: Product, regions: Regions
) -> None:
    """No stand-in runs: the home region's DynamoDB holds the product, the replica's does not."""
    project("product", product.pk)
    alice = customer("alice")
    with regions.replica():
        status, body = put_line(alice, "SKU-1", 2)
        assert status == 200, body
        assert lines(body) == [("SKU-1", 2, "Hammer", True, {"EUR": "9.99"})]
        read = orjson.loads(alice.get("/api/cart/").content)
        assert lines(read) == [("SKU-1", 2, "Hammer", True, {"EUR": "9.99"})]
        assert get_item(ProductDocument, product_key("SKU-1")) is None  # the replica projected nothing

        status, body = put_line(alice, "NO-SUCH-SKU", 1)  # neither region's DynamoDB holds it: unknown
        assert status == 404 and body["error"]["code"] == "not_found", body


def test_a_product_the_home_region_holds_as_absent_is_not_on_sale_in_a_replica(
    product: Product, regions: Regions
) -> None:
    product.is_active = False
    product.save()
    project("product", product.pk)  # the home region's DynamoDB: absent
    with regions.replica():
        status, body = put_line(customer("alice"), "SKU-1", 1)
    assert status == 404 and body["error"]["code"] == "not_found", body


def test_with_the_home_regions_dynamodb_unreachable_a_replica_cart_asks_postgres_and_projects_nothing(
    product: Product, regions: Regions
) -> None:
    """The product is in Postgres only (projected nowhere) and the home region's DynamoDB cannot be
    reached: Postgres answers for it; the replica writes no projection anywhere."""
    saw = services.product_create(sku="SKU-2", name="Saw", category=product.category)
    saw.is_active = False
    saw.save()
    alice = customer("alice")
    with regions.replica(home_dynamodb=f"http://127.0.0.1:{free_port()}"):
        status, body = put_line(alice, "SKU-1", 3)
        assert status == 200, body
        assert lines(body) == [("SKU-1", 3, "Hammer", True, {"EUR": "9.99"})]
        assert get_item(ProductDocument, product_key("SKU-1")) is None

        for sku in ("SKU-2", "NO-SUCH-SKU"):  # inactive in Postgres, absent from it
            status, body = put_line(alice, sku, 1)
            assert status == 404 and body["error"]["code"] == "not_found", (sku, body)
    assert get_item(ProductDocument, product_key("SKU-1")) is None  # nor in the home region
