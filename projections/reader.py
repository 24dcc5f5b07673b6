"""Read-through: Redis -> DynamoDB -> Postgres, for every document type.

The hit path is one Redis round trip (a script that counts the client's rate-limit window, reads
the entry and counts the hit) and no serializer work: entries hold the rendered JSON bytes. A miss
is filled once per key (single flight, bounded wait); a DynamoDB miss projects the aggregate from
Postgres through the projector. Each dependency sits behind a circuit breaker: with Redis down
reads go to DynamoDB, with DynamoDB down to Postgres.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import botocore.exceptions
import orjson
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from pynamodb.exceptions import DoesNotExist, PynamoDBException
from redis.exceptions import RedisError

from catalog import selectors
from catalog.models import Category, Product
from hybridsite.errors import error_body

from . import cache, cache_keys, documents, metrics
from .breaker import Breaker, CircuitOpen
from .models import CategoryListingItem, CategoryTreeDocument, ProductDocument, ProjectedItem
from .projector import project, render_documents
from .registry import TREE_KEY

logger = logging.getLogger(__name__)

DYNAMODB_ERRORS = (PynamoDBException, botocore.exceptions.BotoCoreError)
redis_breaker = Breaker("redis", settings.BREAKER_FAILURES, settings.BREAKER_COOLDOWN_SECONDS, (RedisError,))
dynamodb_breaker = Breaker("dynamodb", settings.BREAKER_FAILURES, settings.BREAKER_COOLDOWN_SECONDS, DYNAMODB_ERRORS)

# KEYS: value, rate-limit counter ('' for none), metrics hash ('' for none); ARGV: window ms.
# Returns {count, value}: the client's requests in this window and the value read.
_HOT_READ = """
local count = 0
if KEYS[2] ~= '' then
  count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
end
local value = redis.call('GET', KEYS[1])
if KEYS[3] ~= '' then redis.call('HINCRBY', KEYS[3], value and 'reader.hit' or 'reader.miss', 1) end
return {count, value}
"""


@dataclass(frozen=True)
class Result:
    status: int
    body: bytes
    version: int
    source: str  # cache | dynamodb | postgres
    retry_after: int = 0


@dataclass(frozen=True)
class Throttle:
    """A fixed-window rate limit for one client, counted in the same round trip as the read."""

    scope: str
    ident: str
    limit: int
    window_seconds: int = 60

    def key(self) -> str:
        return cache_keys.rate_limit(self.scope, self.ident, int(time.time() // self.window_seconds))

    def retry_after(self) -> int:
        return self.window_seconds - int(time.time() % self.window_seconds)


@dataclass(frozen=True)
class DocumentRef:
    """Where one document lives in each layer."""

    name: str
    model: type[ProjectedItem]
    hash_key: str
    locate: Callable[[], tuple[str, int] | None]
    """The aggregate holding the document in Postgres, or None when there is none."""
    not_found: bytes


def product_ref(sku: str) -> DocumentRef:
    def locate() -> tuple[str, int] | None:
        product_id = Product.objects.filter(sku=sku).values_list("pk", flat=True).first()
        return None if product_id is None else ("product", product_id)

    return DocumentRef(
        name=f"product:{sku}", model=ProductDocument, hash_key=sku, locate=locate,
        not_found=orjson.dumps(error_body("not_found", "No product with this SKU.")),
    )


def category_tree_ref() -> DocumentRef:
    return DocumentRef(
        name="category-tree", model=CategoryTreeDocument, hash_key=TREE_KEY, locate=lambda: ("category", 0),
        not_found=orjson.dumps(error_body("not_found", "No categories.")),
    )


THROTTLED = orjson.dumps(error_body("throttled", "Too many requests."))
LISTING_NOT_FOUND = orjson.dumps(error_body("not_found", "No category with this slug."))


def read_document(ref: DocumentRef, throttle: Throttle | None = None) -> Result:
    try:
        count, raw = redis_breaker.call(lambda: _counted_get(cache_keys.document(ref.name), throttle, metered=True))
    except (RedisError, CircuitOpen):
        count, raw = 0, None  # without Redis the rate limit fails open: reads matter more
    if throttle and count > throttle.limit:
        return Result(429, THROTTLED, 0, "cache", retry_after=throttle.retry_after())
    if raw is not None:
        return _result(cache.decode(raw), ref.not_found, "cache")
    return _fill(ref)


def _counted_get(key: str, throttle: Throttle | None, metered: bool) -> tuple[int, bytes | None]:
    """GET ``key`` and count the client's request, in one round trip."""
    keys = [key, throttle.key() if throttle else "", cache_keys.metrics() if metered else ""]
    window_ms = (throttle.window_seconds if throttle else 60) * 1000
    count, raw = cache.script(cache.client(), _HOT_READ)(keys=keys, args=[window_ms])
    return int(count), raw


def _result(entry: cache.Entry, not_found: bytes, source: str) -> Result:
    return Result(entry.status, entry.body if entry.status == 200 else not_found, entry.version, source)


def _fill(ref: DocumentRef) -> Result:
    """Fill a cold key once: the first reader fetches, the others wait briefly for its entry."""
    token = secrets.token_hex(8)
    lock_key = cache_keys.fill_lock(ref.name)
    try:
        leader = bool(redis_breaker.call(lambda: cache.client().set(lock_key, token, nx=True, px=settings.READ_FILL_LOCK_MS)))
    except (RedisError, CircuitOpen):
        leader = True  # no Redis: no coalescing, but reads go on
    if not leader:
        waited = _wait_for_entry(ref)
        if waited is not None:
            return waited
    try:
        entry, source = _fetch(ref)
        try:
            redis_breaker.call(lambda: cache.store(ref.name, entry.version, entry.body if entry.status == 200 else None))
        except (RedisError, CircuitOpen):
            pass
        return _result(entry, ref.not_found, source)
    finally:
        if leader:
            try:
                _release(lock_key, token)
            except (RedisError, CircuitOpen):
                pass


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _release(lock_key: str, token: str) -> None:
    redis_breaker.call(lambda: cache.script(cache.client(), _RELEASE)(keys=[lock_key], args=[token]))


def _wait_for_entry(ref: DocumentRef) -> Result | None:
    deadline = time.monotonic() + settings.READ_FILL_WAIT_MS / 1000
    while time.monotonic() < deadline:
        time.sleep(0.005)
        try:
            raw = redis_breaker.call(lambda: cache.client().get(cache_keys.document(ref.name)))
        except (RedisError, CircuitOpen):
            return None
        if raw is not None:
            metrics.incr("reader.coalesced")
            return _result(cache.decode(raw), ref.not_found, "cache")
    metrics.incr("reader.fill_wait_timeout")
    return None


def _fetch(ref: DocumentRef) -> tuple[cache.Entry, str]:
    """DynamoDB first; Postgres when DynamoDB has no document or cannot be reached."""
    try:
        item = dynamodb_breaker.call(lambda: _get_item(ref))
    except (CircuitOpen, *DYNAMODB_ERRORS) as exc:
        logger.warning("reader: DynamoDB unavailable for %s (%s); reading Postgres", ref.name, exc)
        item = None
    else:
        if item is not None:
            metrics.incr("reader.fill.dynamodb")
            if item.deleted:
                return cache.Entry(item.version, 404, b""), "dynamodb"
            return cache.Entry(item.version, 200, item.body.encode()), "dynamodb"
    metrics.incr("reader.fill.postgres")
    try:
        return _from_postgres(ref), "postgres"
    except DatabaseError as exc:
        raise Unavailable(f"neither DynamoDB nor Postgres could answer for {ref.name}") from exc


def _get_item(ref: DocumentRef) -> ProjectedItem | None:
    try:
        return ref.model.get(ref.hash_key, consistent_read=True)
    except DoesNotExist:
        return None


def _from_postgres(ref: DocumentRef) -> cache.Entry:
    located = ref.locate()
    if located is None:
        return cache.Entry(0, 404, b"")
    aggregate_type, aggregate_id = located
    try:
        outcome = dynamodb_breaker.call(lambda: project(aggregate_type, aggregate_id))
        version, bodies = outcome.version, outcome.documents
    except (CircuitOpen, *DYNAMODB_ERRORS):
        version, bodies = render_documents(aggregate_type, aggregate_id)
    body = bodies.get(ref.name)
    return cache.Entry(version, 404, b"") if body is None else cache.Entry(version, 200, body)


# --- category listing pages -------------------------------------------------------------------


class BadCursor(ValueError):
    pass


class Unavailable(Exception):
    """No layer that holds the answer can be reached right now."""


def encode_cursor(sku: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": sku})).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    if not cursor:
        return ""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise BadCursor("cursor is not one this API returned") from None
    if not isinstance(after, str) or not after:
        raise BadCursor("cursor is not one this API returned")
    return after


def read_listing(slug: str, limit: int, cursor: str, throttle: Throttle | None = None) -> Result:
    """One page of a category listing: a DynamoDB Query, cached per listing generation."""
    after = decode_cursor(cursor)
    page_key: str | None = None
    raw = None
    try:
        count, generation = redis_breaker.call(
            lambda: _counted_get(cache_keys.listing_generation(slug), throttle, metered=False)
        )
        page_key = cache_keys.listing_page(slug, int(generation or 0), limit, cursor)
        raw = redis_breaker.call(lambda: cache.client().get(page_key))
    except (RedisError, CircuitOpen):
        count = 0
    if throttle and count > throttle.limit:
        return Result(429, THROTTLED, 0, "cache", retry_after=throttle.retry_after())
    if raw is not None:
        return _result(cache.decode(raw), LISTING_NOT_FOUND, "cache")
    entry, source = _listing_page(slug, limit, after)
    if page_key is not None:
        payload = cache.encode(entry.version, entry.status, entry.body)
        try:
            redis_breaker.call(
                lambda: cache.client().set(page_key, payload, px=cache.ttl_ms(negative=entry.status != 200))
            )
        except (RedisError, CircuitOpen):
            pass
    return _result(entry, LISTING_NOT_FOUND, source)


def _listing_page(slug: str, limit: int, after: str) -> tuple[cache.Entry, str]:
    try:
        bodies, more = dynamodb_breaker.call(lambda: _query_listing(slug, limit, after))
        source = "dynamodb"
    except (CircuitOpen, *DYNAMODB_ERRORS) as exc:
        logger.warning("reader: DynamoDB unavailable for listing %s (%s); reading Postgres", slug, exc)
        try:
            bodies, more = _listing_from_postgres(slug, limit, after)
        except DatabaseError as exc:
            raise Unavailable(f"neither DynamoDB nor Postgres could answer for listing {slug}") from exc
        source = "postgres"
    if not bodies and not after and not Category.objects.filter(slug=slug).exists():
        return cache.Entry(0, 404, b""), "postgres"
    last_sku = orjson.loads(bodies[-1])["sku"] if bodies and more else None
    body = b"".join([
        b'{"category":', orjson.dumps(slug), b',"items":[', b",".join(bodies), b'],"next_cursor":',
        orjson.dumps(encode_cursor(last_sku) if last_sku else None), b"}",
    ])
    return cache.Entry(0, 200, body), source


def _query_listing(slug: str, limit: int, after: str) -> tuple[list[bytes], bool]:
    condition = CategoryListingItem.sk > after if after else None
    items = CategoryListingItem.query(
        f"CATEGORY#{slug}", condition, filter_condition=CategoryListingItem.deleted == False,  # noqa: E712
        limit=limit + 1, page_size=limit + 1,
    )
    bodies = [item.body.encode() for item in items]
    return bodies[:limit], len(bodies) > limit


def _listing_from_postgres(slug: str, limit: int, after: str) -> tuple[list[bytes], bool]:
    products = list(
        selectors.product_aggregate_queryset()
        .filter(Q(category__slug=slug) & Q(is_active=True) & Q(sku__gt=after))
        .order_by("sku")[: limit + 1]
    )
    bodies = [orjson.dumps(documents.listing_item(product)) for product in products]
    return bodies[:limit], len(bodies) > limit
