"""Autosaved drafts: saved in DynamoDB only, published through the catalog services on condition of
the product version they started from, consolidated into Postgres by the streams consumer."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from catalog import services as catalog_services
from catalog.models import Category, Product
from drafts.models import DraftCopy
from writeback.consumer import Consumer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def product(fresh_streams, redis_clean) -> Product:
    category = Category.objects.create(slug="tools", name="Tools")
    return catalog_services.product_create(sku="SKU-1", name="Hammer", category=category)


def editor(name: str, *codenames: str, staff: bool = True) -> tuple[Client, int]:
    user = get_user_model().objects.create_user(name, password="x", is_staff=staff)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="catalog", codename=codename))
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}"), user.pk


def call(client: Client, method: str, url: str, body: object = None, **headers):
    response = getattr(client, method)(
        url, data=json.dumps(body) if body is not None else None, content_type="application/json", **headers
    )
    return response, (json.loads(response.content) if response.content else None)


DRAFT = "/api/internal/products/SKU-1/draft/"
PUBLISH = "/api/internal/products/SKU-1/draft/publish/"


def test_autosave_writes_nothing_to_postgres_and_publish_applies_the_draft(product):
    client, _ = editor("ed", "change_product")
    response, first = call(client, "put", DRAFT, {"name": "Claw hammer"})
    assert response.status_code == 200, first
    product.refresh_from_db()
    assert first["base_version"] == product.version and first["changes"] == {"name": "Claw hammer"}
    with CaptureQueriesContext(connection) as queries:
        response, second = call(client, "put", DRAFT, {"attributes": {"weight_g": 450}}, HTTP_IF_MATCH=response["ETag"])
    assert response.status_code == 200 and second["version"] == first["version"] + 1
    assert second["changes"] == {"name": "Claw hammer", "attributes": {"weight_g": 450}}
    assert [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")] == []
    assert Product.objects.get().name == "Hammer"

    response, published = call(client, "post", PUBLISH)
    assert response.status_code == 200, published
    product.refresh_from_db()
    assert (product.name, product.attributes) == ("Claw hammer", {"weight_g": 450})
    assert published["version"] == product.version
    assert call(client, "get", DRAFT)[0].status_code == 404


def test_publish_conflicts_when_the_product_changed_since_the_draft_started(product):
    client, _ = editor("ed", "change_product")
    call(client, "put", DRAFT, {"name": "Claw hammer"})
    catalog_services.product_update(product=product, description="Changed by someone else")
    response, body = call(client, "post", PUBLISH)
    assert response.status_code == 409 and body["error"]["code"] == "conflict"
    assert Product.objects.get().name == "Hammer"
    assert call(client, "get", DRAFT)[0].status_code == 200  # the draft is kept


def test_a_stale_if_match_is_412(product):
    client, _ = editor("ed", "change_product")
    first, _ = call(client, "put", DRAFT, {"name": "A"})
    call(client, "put", DRAFT, {"name": "B"})
    response, body = call(client, "put", DRAFT, {"name": "C"}, HTTP_IF_MATCH=first["ETag"])
    assert response.status_code == 412 and body["error"]["code"] == "precondition_failed"
    assert call(client, "get", DRAFT)[1]["changes"] == {"name": "B"}


@pytest.mark.parametrize("payload", [
    {"name": ""}, {"name": "x" * 201}, {"attributes": [1]}, {"attributes": {"k": "v" * 20000}},
    {"attributes": {"k": "\x00"}},
    {"price": "1.00"}, [1], {"name": None},
])
def test_bad_drafts_are_400_and_nothing_is_saved(product, payload):
    client, _ = editor("ed", "change_product")
    response, body = call(client, "put", DRAFT, payload)
    assert response.status_code == 400 and body["error"]["code"] == "invalid"
    assert call(client, "get", DRAFT)[0].status_code == 404


def test_permissions_and_each_editor_reaches_only_their_own_draft(product):
    writer, _ = editor("ed", "change_product")
    other, _ = editor("other", "change_product")
    clerk, _ = editor("clerk", "view_product")
    customer, _ = editor("customer", staff=False)
    call(writer, "put", DRAFT, {"name": "Mine"})
    assert call(Client(), "put", DRAFT, {"name": "x"})[0].status_code == 401
    assert call(clerk, "put", DRAFT, {"name": "x"})[0].status_code == 403
    assert call(customer, "post", PUBLISH)[0].status_code == 403
    assert call(other, "get", DRAFT)[0].status_code == 404
    assert call(other, "post", PUBLISH)[0].status_code == 404
    assert call(writer, "put", "/api/internal/products/NOPE/draft/", {"name": "x"})[0].status_code == 404
    assert Product.objects.get().name == "Hammer"


@pytest.mark.aws_engine(reason="DynamoDB Streams as AWS serves them (moto's iterators break)")
def test_the_consumer_lists_who_edits_what_and_drops_published_drafts(product):
    ann_client, ann = editor("ann", "change_product")
    bob_client, bob = editor("bob", "change_product")
    call(ann_client, "put", DRAFT, {"name": "Ann's"})
    call(bob_client, "put", DRAFT, {"description": "Bob's"})
    consumer = Consumer()

    def editing() -> dict[int, dict]:
        return {row.user_id: row.changes for row in DraftCopy.objects.filter(status=DraftCopy.Status.EDITING)}

    deadline = time.monotonic() + 30
    while editing() != {ann: {"name": "Ann's"}, bob: {"description": "Bob's"}}:
        assert time.monotonic() < deadline
        consumer.step()
    assert call(ann_client, "post", PUBLISH)[0].status_code == 200
    while editing() != {bob: {"description": "Bob's"}}:
        assert time.monotonic() < deadline
        consumer.step()
    assert DraftCopy.objects.get(user_id=ann).status == DraftCopy.Status.GONE
