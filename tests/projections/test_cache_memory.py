"""Redis holding the cache runs with a memory bound and `volatile-lru` in production
(docs/deploy/index.md): only keys with a TTL may be evicted, so the broker's queues (no TTL) never
are. That is safe only if every cache entry carries a TTL; the few keys without one are bounded in
number and must survive."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from catalog import services
from catalog.models import Category
from hybridsite import cache_keys
from projections import metrics
from projections.relay import drain

pytestmark = pytest.mark.django_db(transaction=True)

# Keys that live without a TTL: one generation per category, one metrics hash, one capped list.
BOUNDED_WITHOUT_TTL = (
    f"{cache_keys.NAMESPACE}:listing-gen:",
    cache_keys.metrics(),
    cache_keys.lag_samples(),
)


def test_every_cache_entry_carries_a_ttl(dynamodb, redis_clean, settings):
    settings.HEALTH_CACHE_SECONDS = 0
    tools = Category.objects.create(slug="tools", name="Tools")
    product = services.product_create(sku="SKU-1", name="Hammer", category=tools)
    services.price_set(product=product, currency="EUR", amount=Decimal("9.99"))
    drain(5)
    client = Client()
    client.get("/api/products/SKU-1/")
    client.get("/api/products/NOPE-1/")
    client.get("/api/categories/")
    page = client.get("/api/categories/tools/products/", {"limit": 1}).json()
    client.get("/api/categories/tools/products/", {"limit": 1, "cursor": page["next_cursor"] or ""})
    client.get("/api/categories/nope/products/")
    client.get("/api/health/")
    services.price_set(product=product, currency="EUR", amount=Decimal("8.99"))
    drain(5)
    metrics.incr("test.touch")

    keys = {key.decode(): redis_clean.pttl(key) for key in redis_clean.scan_iter(match=f"{cache_keys.NAMESPACE}:*")}
    assert any(":doc:" in key for key in keys) and any(":listing:" in key for key in keys)
    without_ttl = sorted(key for key, ttl in keys.items() if ttl < 0 and not key.startswith(BOUNDED_WITHOUT_TTL))
    assert without_ttl == []
