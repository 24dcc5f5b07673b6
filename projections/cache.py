"""Redis entries of rendered documents, never replaced by an older version.

An entry is ``b"<version> <status>\\n" + body``: status 200 with the JSON bytes, or 404 with an
empty body (a cached absence). Writers go through compare-and-set scripts, so a reader that
fetched version v, or a slow projector, cannot overwrite an entry holding a newer version.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django_redis import get_redis_connection
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError

from . import cache_keys, metrics

logger = logging.getLogger(__name__)

# KEYS[1] entry; ARGV: version, payload, ttl ms. Returns 1 when written.
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local v = tonumber(string.match(current, '^(%d+)'))
  if v and v >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Entry:
    version: int
    status: int
    body: bytes


def encode(version: int, status: int, body: bytes) -> bytes:
    return f"{version} {status}\n".encode() + body


def decode(raw: bytes) -> Entry:
    header, _, body = raw.partition(b"\n")
    version, status = header.split(b" ", 1)
    return Entry(version=int(version), status=int(status), body=body)


def ttl_ms(negative: bool = False) -> int:
    """TTL with jitter, so that entries filled together do not expire together."""
    base = settings.CACHE_NEGATIVE_TTL_SECONDS if negative else settings.CACHE_TTL_SECONDS
    return int(base * 1000 * random.uniform(0.9, 1.1))


def client() -> Redis:
    """The cache's Redis connection (django-redis keeps one pool per process)."""
    return get_redis_connection("default")


@lru_cache(maxsize=32)
def script(client: Redis, source: str) -> Script:
    """A Lua script bound to a client, made once (it hashes its source) and reused."""
    return client.register_script(source)


def store(name: str, version: int, body: bytes | None) -> bool:
    """Write the entry unless Redis already holds this or a newer version. ``body=None`` is absent."""
    status = 404 if body is None else 200
    payload = encode(version, status, body or b"")
    written = script(client(), _SET_IF_NEWER)(
        keys=[cache_keys.document(name)],
        args=[version, payload, ttl_ms(negative=body is None)],
    )
    return bool(written)


def refresh_after_projection(name: str, version: int, body: bytes | None) -> None:
    """Best effort: Redis holds nothing authoritative, so an error only costs freshness (TTL).

    The new document is stored, not just busted: the next read is a hit, and a reader still
    holding an older version cannot put it back (the entry's version is compared).
    """
    try:
        store(name, version, body)
    except RedisError as exc:
        metrics.incr("cache.refresh_failed")
        logger.warning("cache refresh of %s failed: %s", name, exc)


def bump_listings(listings: set[str]) -> None:
    if not listings:
        return
    try:
        pipe = client().pipeline(transaction=False)
        for listing in sorted(listings):
            pipe.incr(cache_keys.listing_generation(listing))
        pipe.execute()
    except RedisError as exc:
        metrics.incr("cache.refresh_failed")
        logger.warning("listing generation bump failed for %s: %s", sorted(listings), exc)
