"""The hot read (projections.middleware): a product hit answered before most of the middleware,
exactly as the view answers it, counted once, and without Postgres."""

from __future__ import annotations

import orjson
import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from waffle.models import Switch

from devtools.net import wait_for
from hybridsite import cache_keys
from hybridsite.ratelimit import window
from ops.instruments import process_registry
from ops.readonly import read_only_set
from projections import metrics, shapes
from projections.documents import product_shape

pytestmark = pytest.mark.django_db(transaction=True)

HOT = "projections.middleware.HotReadMiddleware"
URL = "/api/products/SKU-1/"


def switch(name: str, on: bool) -> None:
    Switch.objects.update_or_create(name=name, defaults={"active": on})  # clears waffle's cached value


def rate_count(redis, ident: str = "127.0.0.1") -> int:
    return int(redis.get(cache_keys.rate_limit("anon", ident, window(60)[0])) or 0)


def reads(served_from: str, outcome: str = "ok") -> float:
    labels = {"route": "product-detail", "served_from": served_from, "outcome": outcome}
    return process_registry().get_sample_value("hybridsite_read_seconds_count", labels) or 0.0


@pytest.fixture
def cached(product, flags, redis_clean, client) -> Client:
    """SKU-1 projected and its entry in Redis."""
    assert client.get(URL)["X-Served-From"] == "postgres"
    return client


def test_a_hit_needs_no_postgres_with_every_guard_on(cached, redis_clean, settings):
    """Read-only mode on, rate limits counted, metrics observed, the shape switch due to be read
    again and waffle's cached switches gone: still not one query on the request's connection."""
    settings.THROTTLE_ANON_PER_MINUTE = 100
    settings.SHAPE_SWITCH_LOCAL_SECONDS = 0
    read_only_set(on=True)
    shapes.forget()
    assert cached.get(URL)["X-Served-From"] == "cache"  # the switch read again, and due at once
    caches["flags"].delete_pattern("*")
    counted, observed = rate_count(redis_clean), reads("cache")
    with CaptureQueriesContext(connection) as queries:
        responses = [cached.get(URL) for _ in range(3)]
    assert [q["sql"] for q in queries.captured_queries] == []
    assert [(r.status_code, r["X-Served-From"]) for r in responses] == [(200, "cache")] * 3
    assert rate_count(redis_clean) == counted + 3
    assert reads("cache") == observed + 3


def test_the_hit_answers_as_the_view_does(cached, settings):
    """Every header and the body, the same with the middleware as without it."""
    hit = cached.get(URL)
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != HOT]
    viewed = Client().get(URL)  # a new client's handler loads the middleware again
    assert hit["X-Served-From"] == viewed["X-Served-From"] == "cache"
    assert hit.content == viewed.content
    assert dict(hit.headers) == dict(viewed.headers)
    assert {"ETag", "Cache-Control", "Content-Length", "X-Frame-Options", "X-Content-Type-Options"} <= set(hit.headers)


def test_a_304_answers_as_the_view_does(cached, settings):
    etag = cached.get(URL)["ETag"]
    hit = cached.get(URL, HTTP_IF_NONE_MATCH=f'"0", {etag}')
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != HOT]
    viewed = Client().get(URL, HTTP_IF_NONE_MATCH=f'"0", {etag}')
    assert hit.status_code == viewed.status_code == 304
    assert hit.content == viewed.content == b""
    assert dict(hit.headers) == dict(viewed.headers)


def test_what_the_hit_cannot_answer_goes_to_the_view_counted_once(cached, redis_clean, settings):
    """A miss, a version above the entry's, an over-limit client: one count and one Redis read
    each, the view answering from the middleware's round trip."""
    settings.THROTTLE_ANON_PER_MINUTE = 5
    version = orjson.loads(cached.get(URL).content)["version"]
    counted = rate_count(redis_clean)
    hits_and_misses = metrics.snapshot()

    # The entry gone (and the first read's fill lock, which its projection revoked, with it).
    redis_clean.delete(cache_keys.document("product:SKU-1"), cache_keys.fill_lock("product:SKU-1"))
    response = cached.get(URL)
    assert response.status_code == 200 and response["X-Served-From"] == "dynamodb"
    above = cached.get(URL, {"min_version": version + 1})
    assert above.status_code == 409 and orjson.loads(above.content)["error"]["code"] == "version_unavailable"
    assert rate_count(redis_clean) == counted + 2
    now = metrics.snapshot()
    assert now.get("reader.miss", 0) == hits_and_misses.get("reader.miss", 0) + 1
    assert now.get("reader.hit", 0) == hits_and_misses.get("reader.hit", 0) + 1

    assert [cached.get(URL).status_code for _ in range(3)] == [200, 429, 429]
    assert rate_count(redis_clean) == counted + 5


def test_refused_input_and_other_methods_go_to_the_view(cached):
    assert cached.get(URL, {"min_version": "x"}).status_code == 400
    head = cached.head(URL)
    assert head.status_code == 200 and head["X-Served-From"] == "cache"
    assert cached.get("/api/products/SKU-1").status_code in (301, 404)  # not the route: never a hit
    assert cached.get("/api/products/NOPE/").status_code == 404


def test_a_disallowed_host_is_refused_before_the_hit(cached, settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    assert cached.get(URL, HTTP_HOST="evil.example").status_code == 400
    assert cached.get(URL, HTTP_HOST="shop.example").status_code == 200


def test_the_read_switch_is_read_again_without_the_read_waiting_for_it(cached, settings):
    """Flipped without telling the process (no forget): served once a background read of the
    switch has seen it."""
    settings.SHAPE_SWITCH_LOCAL_SECONDS = 0.05
    assert product_shape(cached.get(URL).content) == 1
    switch(shapes.READ_V2, True)
    wait_for(lambda: product_shape(cached.get(URL).content) == 2, 30, 0.05, "shape 2 served")
