"""A new document type is one registry entry and its builder: the projector, the relay, the drift
check and the backfill take it up with nothing else changed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime

import orjson
import pytest
from pynamodb.attributes import UnicodeAttribute

from catalog import services
from catalog.models import Category
from hybridsite.dynamodb import table_ensure, table_meta
from projections.backfill import backfill
from projections.drift import check
from projections.registry import AGGREGATES, Item, Projection, Snapshot
from projections.relay import drain
from projections.tables import ProjectedItem

pytestmark = pytest.mark.django_db(transaction=True)


class ProductName(ProjectedItem):
    """A throwaway view: each product's name, keyed by SKU."""

    Meta = table_meta("test-throwaway-names")
    pk = UnicodeAttribute(hash_key=True)


def build_product_name(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    if snapshot.state is None or not snapshot.state.product.is_active:
        return []
    product = snapshot.state.product
    return [Item(key={"pk": product.sku}, body={"sku": product.sku, "name": product.name})]


@pytest.fixture
def registered(monkeypatch, dynamodb) -> Iterator[None]:
    """The one registry entry; the table is made as ``projections_setup`` makes every table."""
    table_ensure(ProductName)
    for item in ProductName.scan():
        item.delete()
    product = AGGREGATES["product"]
    entry = Projection(ProductName, build_product_name)
    monkeypatch.setitem(AGGREGATES, "product", dataclasses.replace(product, projections=(*product.projections, entry)))
    yield


def name_of(sku: str) -> str | None:
    try:
        item = ProductName.get(sku, consistent_read=True)
    except ProductName.DoesNotExist:
        return None
    return None if item.deleted else orjson.loads(item.body)["name"]


def test_a_registered_projection_is_projected_checked_and_backfilled(registered, redis_clean):
    tools = Category.objects.create(slug="tools", name="Tools")
    hammer = services.product_create(sku="HAM-1", name="Hammer", category=tools)
    drain()
    assert name_of("HAM-1") == "Hammer"

    services.product_update(product=hammer, name="Claw hammer")
    drain()
    assert name_of("HAM-1") == "Claw hammer"
    assert check().clean

    ProductName.get("HAM-1").delete()  # drift: the drift check sees it, a backfill repairs it
    assert check().missing == 1
    backfill("product")
    assert name_of("HAM-1") == "Claw hammer" and check().clean

    hammer.delete()
    drain()
    assert name_of("HAM-1") is None and ProductName.get("HAM-1").deleted
