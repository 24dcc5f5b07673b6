"""A document too large for a DynamoDB item (400 KB): its older version is never served as current.
Postgres answers for it, the drift check reports it, and /metrics counts it for the alert."""

from __future__ import annotations

import logging

import orjson
import pytest
from django.test import Client

from catalog import services
from catalog.models import OutboxEvent
from hybridsite import cache_keys
from ops.drift_watch import drift_watch_run
from projections.drift import check
from projections.relay import drain
from projections.tables import CategoryListingItem, ProductDocument
from tests.ops.test_metrics import scrape, value

pytestmark = pytest.mark.django_db(transaction=True)

TOO_LARGE = "x" * 500_000
UNSTORABLE = "hybridsite_documents_unstorable"


def read(client: Client, sku: str) -> tuple[dict, str]:
    response = client.get(f"/api/products/{sku}/")
    assert response.status_code == 200
    return orjson.loads(response.content), response["X-Served-From"]


def test_a_document_grown_too_large_is_served_from_postgres_reported_and_counted(
    client, product, redis_clean, admin_client, caplog
):
    drain(5)
    assert read(client, "SKU-1")[1] == "cache"
    services.product_update(product=product, description=TOO_LARGE)
    product.refresh_from_db()

    result = drain(5)

    assert (result.failed, result.dead) == (0, 0)
    assert not OutboxEvent.objects.exists()  # nothing a retry could fix is left to retry
    document, source = read(client, "SKU-1")
    assert (document["version"], document["description"], source) == (product.version, TOO_LARGE, "postgres")
    redis_clean.delete(cache_keys.document("product:SKU-1"), cache_keys.floor("product:SKU-1"))
    document, source = read(client, "SKU-1")
    assert (document["version"], source) == (product.version, "postgres")  # DynamoDB's older one is not served
    listing = CategoryListingItem.get("CATEGORY#tools", "SKU-1")
    assert listing.version == product.version  # what can be stored is

    assert check().unstorable == 1
    with caplog.at_level(logging.ERROR, logger="ops.drift_watch"):
        run = drift_watch_run(sample=10)
    assert run.drifted == [["product", product.pk]]
    assert "unstorable=1" in caplog.text
    assert value(scrape(admin_client), UNSTORABLE) == 1

    services.product_update(product=product, description="Short again.")
    drain(5)
    assert read(client, "SKU-1")[0]["description"] == "Short again."
    assert ProductDocument.get("SKU-1").body is not None
    assert check().clean
    assert value(scrape(admin_client), UNSTORABLE) == 0
