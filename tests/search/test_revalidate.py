"""Stale-while-revalidate with a real Celery worker: a stale search is answered at once from the
cache, and one background task (the worker's) recomputes it."""

from __future__ import annotations

import orjson
import pytest
from django.conf import settings

from catalog import services
from devtools.net import wait_for
from hybridsite import cache_keys
from projections import metrics, search

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_stale_search_is_served_and_refreshed_once_in_the_background(client, shop, start_worker, redis_clean):
    start_worker(beat=False)
    metrics.reset()
    text = search.canonical(search.normalize(q="hammer"))
    key = cache_keys.search_results(text)
    first = client.get("/api/products/?q=hammer")
    assert first["X-Served-From"] == "postgres"
    stale_ms = settings.SEARCH_STALE_SECONDS * 1000
    assert stale_ms < redis_clean.pttl(key) <= stale_ms + settings.SEARCH_CACHE_SECONDS * 1000

    services.product_create(sku="HAM-3", name="Ball-peen hammer", category=shop["HAM-1"].category)
    redis_clean.pexpire(key, stale_ms)  # its fresh time is over
    stale = client.get("/api/products/?q=hammer")
    assert stale["X-Served-From"] == "cache"
    assert stale.content == first.content  # at once, as it was
    assert redis_clean.exists(cache_keys.search_fill_lock(text))  # one refresh under way ...
    client.get("/api/products/?q=hammer")  # ... and no second one queued while it is

    wait_for(lambda: b"HAM-3" in (redis_clean.get(key) or b""), what="the background refresh")
    assert redis_clean.pttl(key) > stale_ms  # fresh again
    assert not redis_clean.exists(cache_keys.search_fill_lock(text))
    assert metrics.snapshot().get("search.refresh_queued") == 1
    wait_for(lambda: b"HAM-3" in client.get("/api/products/HAM-3/").content, what="HAM-3's projection")
    served = orjson.loads(client.get("/api/products/?q=hammer").content)["items"]
    assert sorted(item["sku"] for item in served) == ["HAM-1", "HAM-2", "HAM-3", "TOOL-1"]
