"""Product search: which SKUs match is asked of Postgres (authoritative full-text search) and cached
per normalized parameters; what each result shows is read from the hot path, per product.

- The matching SKUs of a search are kept in Redis under its normalized parameters
  (``cache_keys.search_results``): fresh for ``SEARCH_CACHE_SECONDS``, then served stale for up to
  ``SEARCH_STALE_SECONDS`` more while one background task recomputes them (stale-while-revalidate),
  then gone. So the membership of an answer is never older than the sum of the two, whether or not
  a worker ran the refresh.
- A search no one holds is computed once however many ask at once (single flight: the lock of
  ``cache_keys.search_fill_lock``; the others wait for the leader's entry).
- Each page is rendered from the product documents (``reader.read_documents``): prices and stock are
  as fresh as a product read, and a product deleted (or deactivated) since is left out.

The refresh runs as a Celery task rather than a thread of the web process: a web worker's threads
die with it (timeouts, restarts) and would take database connections from the requests, whereas a
task runs where the relay runs, is retried by nothing (a lost refresh only lets the entry age to its
hard expiry, after which a reader recomputes it) and needs no ``on_commit``: a read has no
transaction to wait for.
"""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal

import orjson
from django.conf import settings
from django.db import DatabaseError, OperationalError
from redis.exceptions import RedisError

from catalog import selectors
from catalog.selectors import ProductSearch
from hybridsite import cache_keys

from . import cache, documents, metrics, reader, shapes
from .breaker import CircuitOpen
from .cursors import encode_offset
from .readpath import COUNT_REQUEST_LUA, Throttle, Unavailable, charge_fill, check_rate, redis_breaker
from .registry import product_document

logger = logging.getLogger(__name__)

QUERY_CANCELED = "57014"  # Postgres: the statement timeout cancelled the query

# KEYS: entry, rate-limit counter ('' for none). ARGV: window ms. Returns {count, entry, its ms to
# live}: the client's searches in this window and the entry, counted and read in one round trip.
_COUNTED_READ = COUNT_REQUEST_LUA + """return {count, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
"""


def normalize(
    *, q: str = "", category: str | None = None, min_price: Decimal | None = None,
    max_price: Decimal | None = None, currency: str | None = None, in_stock: bool | None = None,
    sort: str | None = None,
) -> ProductSearch:
    """The search these parameters ask for, so that equal searches are equal values: the text folded
    to lower case with control characters and runs of whitespace made one space; the order by
    default (relevance with a text, else name); the currency given only where a price uses it (the
    shop's currency by default); prices to the cent."""
    text = " ".join("".join(c if c.isprintable() else " " for c in q).split()).lower()
    if sort is None or (sort == "relevance" and not text):
        sort = "relevance" if text else "name"
    priced = min_price is not None or max_price is not None or sort in ("price_asc", "price_desc")
    cent = Decimal("0.01")
    return ProductSearch(
        text=text, category=category,
        min_price=None if min_price is None else min_price.quantize(cent),
        max_price=None if max_price is None else max_price.quantize(cent),
        currency=(currency or settings.ORDER_CURRENCY) if priced else None,
        in_stock=in_stock, sort=sort,
    )


def canonical(search: ProductSearch) -> str:
    """The one spelling of a normalized search: the cache key's input and the refresh task's argument."""
    return orjson.dumps(dataclasses.asdict(search), default=str, option=orjson.OPT_SORT_KEYS).decode()


def from_canonical(text: str) -> ProductSearch:
    fields = orjson.loads(text)
    for name in ("min_price", "max_price"):
        if fields[name] is not None:
            fields[name] = Decimal(fields[name])
    return ProductSearch(**fields)


def compute(search: ProductSearch) -> list[str]:
    """The SKUs matching ``search`` in Postgres; Unavailable when Postgres cannot answer in time."""
    metrics.incr("search.computed")
    try:
        return selectors.products_search(
            search=search, limit=settings.SEARCH_MAX_RESULTS, timeout_ms=settings.SEARCH_STATEMENT_TIMEOUT_MS
        )
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) == QUERY_CANCELED:
            metrics.incr("search.timed_out")
            raise Unavailable("the search took longer than its statement timeout") from exc
        raise Unavailable("Postgres cannot answer the search") from exc
    except DatabaseError as exc:
        raise Unavailable("Postgres cannot answer the search") from exc


def store(text: str, skus: list[str]) -> None:
    """Keep the SKUs of the search spelled ``text`` for its fresh and its stale time."""
    ttl = settings.SEARCH_CACHE_SECONDS + settings.SEARCH_STALE_SECONDS
    cache.client().set(cache_keys.search_results(text), orjson.dumps(skus), ex=ttl)


def refresh(text: str, token: str) -> None:
    """Recompute a stale search and store it, then let go of its lock (the background task's body)."""
    try:
        store(text, compute(from_canonical(text)))
    finally:
        cache.unlock(cache_keys.search_fill_lock(text), token)


def matching_skus(search: ProductSearch, throttle: Throttle | None) -> tuple[list[str], str]:
    """The SKUs matching ``search`` and where they came from (``cache`` or ``postgres``), counting
    the client's request; a search computed afresh is charged as a cache fill."""
    text = canonical(search)
    count, raw, ttl_ms = 0, None, -1
    try:
        count, raw, ttl_ms = redis_breaker.call(lambda: _counted_read(text, throttle))
    except (RedisError, CircuitOpen):
        pass  # without Redis: no cache, and the rate limit fails open as everywhere on the read path
    check_rate(throttle, count)
    if raw is not None:
        if ttl_ms <= settings.SEARCH_STALE_SECONDS * 1000:
            _revalidate(text)
        return orjson.loads(raw), "cache"
    if throttle is not None:
        charge_fill(throttle)
    return _fill(search, text)


def _counted_read(text: str, throttle: Throttle | None) -> tuple[int, bytes | None, int]:
    keys = [cache_keys.search_results(text), throttle.key() if throttle else ""]
    window_ms = (throttle.window_seconds if throttle else 60) * 1000
    count, raw, ttl_ms = cache.script(cache.client(), _COUNTED_READ)(keys=keys, args=[window_ms])
    return int(count), raw, int(ttl_ms)


def _revalidate(text: str) -> None:
    """Queue one refresh of a stale search (its lock says whether one is under way already)."""
    from .tasks import search_refresh  # the tasks module imports this one

    lock_ms = settings.SEARCH_STATEMENT_TIMEOUT_MS + settings.SEARCH_CACHE_SECONDS * 1000
    try:
        token = redis_breaker.call(lambda: cache.lock(cache_keys.search_fill_lock(text), lock_ms))
    except (RedisError, CircuitOpen):
        return
    if token is None:
        return
    try:
        search_refresh.delay(text, token)
        metrics.incr("search.refresh_queued")
    except Exception as exc:  # broker down: the entry ages to its expiry, then a reader computes it
        logger.warning("search refresh not queued: %s", exc)


def _fill(search: ProductSearch, text: str) -> tuple[list[str], str]:
    """Compute a search no one holds, once: the first reader computes and stores it, the others wait
    for its entry (and compute it themselves when it does not come in time)."""
    lock_key = cache_keys.search_fill_lock(text)
    # The others wait as long as a search may take; the lock outlives that.
    wait_ms = settings.SEARCH_STATEMENT_TIMEOUT_MS
    try:
        token = redis_breaker.call(lambda: cache.lock(lock_key, 2 * wait_ms))
    except (RedisError, CircuitOpen):
        return compute(search), "postgres"
    if token is None:
        try:
            raw = redis_breaker.call(
                lambda: cache.wait_for(cache_keys.search_results(text), wait_ms)
            )
        except (RedisError, CircuitOpen):
            raw = None
        if raw is not None:
            metrics.incr("search.coalesced")
            return orjson.loads(raw), "cache"
    try:
        skus = compute(search)
        try:
            redis_breaker.call(lambda: store(text, skus))
        except (RedisError, CircuitOpen):
            pass
        return skus, "postgres"
    finally:
        if token is not None:
            try:
                redis_breaker.call(lambda: cache.unlock(lock_key, token))
            except (RedisError, CircuitOpen):
                pass


def page(skus: list[str], offset: int, limit: int) -> bytes:
    """One page of results: the documents of ``skus[offset:offset + limit]`` as the hot path holds
    them, in order, leaving out those that are gone; and the cursor of the next page."""
    wanted = skus[offset: offset + limit]
    refs = [product_document(sku) for sku in wanted]
    bodies = reader.read_documents(refs)
    shape = shapes.read_shape()
    items = [documents.product_in_shape(bodies[ref.name], shape) for ref in refs if ref.name in bodies]
    after = offset + limit
    next_cursor = encode_offset(after) if after < len(skus) else None
    return b"".join([b'{"items":[', b",".join(items), b'],"next_cursor":', orjson.dumps(next_cursor), b"}"])
