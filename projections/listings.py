"""Pages of listings (a category's products, and through ``read_page`` a customer's orders,
orders/reads.py): one strongly consistent DynamoDB Query per page, cached per listing generation
and keyed by the position the cursor decodes to. A projection that changes an item of a listing
counts its generation up, so a page cached under the old generation is never read again."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from functools import partial

import orjson
from django.db import DatabaseError
from django.db.models import Q
from redis.exceptions import RedisError

from catalog import selectors
from catalog.models import Category
from hybridsite import cache_keys, redis_client
from hybridsite.dynamodb import regional_table
from hybridsite.regions import is_home_region

from . import cache, documents
from .breaker import CircuitOpen
from .cursors import decode_cursor, encode_cursor
from .projector import concurrently
from .readpath import (
    DYNAMODB_ERRORS,
    Result,
    Throttle,
    Unavailable,
    check_rate,
    counted_get,
    dynamodb_layers,
    redis_breaker,
    unlearned,
)
from .registry import listing_partitions
from .tables import CategoryListingItem

Fetch = Callable[[], tuple[cache.Entry, str, bool]]
"""A page from its sources: its entry, the layer that answered, and whether the cache may keep it."""

Accept = Callable[[cache.Entry], bool]
"""Whether a cached page answers this read (a reader asking to read its writes)."""

logger = logging.getLogger(__name__)


def read_listing(slug: str, limit: int, cursor: str, throttle: Throttle | None = None) -> Result:
    """One page of a category listing."""
    after = decode_cursor(cursor)
    return read_page(slug, limit, after, lambda: _listing_page(slug, limit, after), throttle)


def read_page(
    listing: str, limit: int, after: str, fetch: Fetch, throttle: Throttle | None = None, accept: Accept | None = None
) -> Result:
    """One page of ``listing`` after position ``after``: from the cache when it holds the page at
    the listing's generation (and the page passes ``accept``), else ``fetch``-ed and cached.

    Pages are keyed by the position the cursor decodes to, never by its text, and each page a
    client makes the cache hold is charged to its rate limit (``Throttle.fill_cost``).
    """
    page_key: str | None = None
    count = 0
    raw = None
    learned = True  # whether Redis knows what this read serves, or will at its next round trip
    try:
        count, generation, _ = redis_breaker.call(
            lambda: counted_get(cache_keys.listing_generation(listing), throttle, metered=False)
        )
        page_key = cache_keys.listing_page(listing, int(generation or 0), limit, after)
    except (RedisError, CircuitOpen):
        learned = False  # without Redis the rate limit fails open: reads matter more
    else:
        if unlearned:
            moved = unlearned.holds_listing(listing)
            unlearned.send()
            if moved:  # a page of it was served without Redis: this generation's may be older
                page_key = None
    check_rate(throttle, count)
    if page_key is not None:
        try:
            raw = redis_breaker.call(lambda: cache.read(page_key))
        except (RedisError, CircuitOpen):
            pass  # a failed page read costs a fetch, never the client's count
    if raw is not None:
        cached = cache.decode(raw)
        if accept is None or accept(cached):
            return Result.of(cached, "cache")
    entry, source, cacheable = fetch()
    if page_key is not None and cacheable:
        payload = cache.encode(entry.version, entry.status, entry.body)
        try:
            redis_breaker.call(lambda: _store_page(page_key, payload, entry.status != 200, throttle))
        except (RedisError, CircuitOpen):
            learned = False
    if not learned:
        unlearned.paged(listing)
    return Result.of(entry, source)


def _store_page(page_key: str, payload: bytes, negative: bool, throttle: Throttle | None) -> None:
    """Cache a page and charge its client for it, in one round trip."""
    pipe = redis_client.client().pipeline(transaction=False)
    pipe.set(page_key, payload, px=cache.ttl_ms(negative=negative))
    if throttle and throttle.fill_cost:
        pipe.incrby(throttle.key(), throttle.fill_cost)
    pipe.execute()


def _listing_page(slug: str, limit: int, after: str) -> tuple[cache.Entry, str, bool]:
    """A page from the first DynamoDB layer that answers (this region's; in a replica region, then
    the home region's), else from Postgres. Cached where this region's DynamoDB answered, and in the
    home region where Postgres did (as the projector's generation bump moves it aside); a replica
    region caches no page its own DynamoDB did not give."""
    for layer in dynamodb_layers():
        try:
            bodies, more = layer.read(partial(_query_listing, slug, limit, after))
        except (CircuitOpen, *DYNAMODB_ERRORS) as exc:
            logger.warning("reader: %s unavailable for listing %s (%s)", layer.source, slug, exc)
            continue
        source, cacheable = layer.source, layer.own
        break
    else:
        try:
            bodies, more = _listing_from_postgres(slug, limit, after)
        except DatabaseError as exc:
            raise Unavailable(f"neither DynamoDB nor Postgres could answer for listing {slug}") from exc
        source, cacheable = "postgres", is_home_region()
    if not bodies and not after and not _category_exists(slug):
        return cache.Entry(0, 404, b""), "postgres", cacheable
    last_sku = orjson.loads(bodies[-1])["sku"] if bodies and more else None
    body = b"".join([
        b'{"category":', orjson.dumps(slug), b',"items":[', b",".join(bodies), b'],"next_cursor":',
        orjson.dumps(encode_cursor(last_sku) if last_sku else None), b"}",
    ])
    return cache.Entry(0, 200, body), source, cacheable


def _category_exists(slug: str) -> bool:
    """An empty first page: an empty category, or none (only Postgres knows which)."""
    try:
        return Category.objects.filter(slug=slug).exists()
    except DatabaseError as exc:
        raise Unavailable(f"Postgres cannot say whether category {slug} exists") from exc


def _query_listing(slug: str, limit: int, after: str, region: str | None) -> tuple[list[bytes], bool]:
    """A page as the merge of one Query per shard in ``region``'s DynamoDB (None: this region's),
    concurrent: each shard is sorted by SKU, so the SKU the cursor holds is every shard's position,
    and the page is the same as unsharded."""
    partitions = listing_partitions(slug)
    shards: list[list[tuple[str, bytes]]] = []
    query = partial(_query_shard, limit=limit, after=after, table=regional_table(CategoryListingItem, region))
    for answer in concurrently(query, partitions):
        if isinstance(answer, Exception):
            raise answer
        shards.append(answer)
    bodies = [body for _, body in heapq.merge(*shards)]  # (SKU, body): a SKU is in one shard only
    return bodies[:limit], len(bodies) > limit


def _query_shard(
    partition: str, limit: int, after: str, table: type[CategoryListingItem]
) -> list[tuple[str, bytes]]:
    condition = table.sk > after if after else None
    items = table.query(
        partition, condition, filter_condition=table.deleted == False,  # noqa: E712
        limit=limit + 1, page_size=limit + 1,
        # Pages are read after a generation bump: an eventually consistent Query could return the
        # listing as it was before the write and cache it under the new generation.
        consistent_read=True,
    )
    return [(item.sk, item.body.encode()) for item in items]


def _listing_from_postgres(slug: str, limit: int, after: str) -> tuple[list[bytes], bool]:
    products = list(
        selectors.product_aggregate_queryset()
        .filter(Q(category__slug=slug) & Q(is_active=True) & Q(sku__gt=after))
        .order_by("sku")[: limit + 1]
    )
    bodies = [orjson.dumps(documents.listing_item(product)) for product in products]
    return bodies[:limit], len(bodies) > limit
