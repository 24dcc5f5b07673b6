"""What the read path's parts share: the breakers around Redis and DynamoDB, the one-round-trip
counted read, the client's rate limit, results, and the errors the API layer turns into HTTP.

The reader and the listing reader return a ``Result`` (a document, or a known absence) or raise;
they build no HTTP bodies or statuses.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions
from django.conf import settings
from pynamodb.exceptions import PynamoDBException
from redis.exceptions import RedisError

from hybridsite import cache_keys, redis_client
from hybridsite.ratelimit import window

from . import cache
from .breaker import Breaker, CircuitOpen

DYNAMODB_ERRORS = (PynamoDBException, botocore.exceptions.BotoCoreError)
redis_breaker = Breaker("redis", settings.BREAKER_FAILURES, settings.BREAKER_COOLDOWN_SECONDS, (RedisError,))
# Errors a request causes (a key DynamoDB refuses) say nothing about DynamoDB's health.
DYNAMODB_CALLER_FAULTS = frozenset({"ValidationException"})
dynamodb_breaker = Breaker(
    "dynamodb", settings.BREAKER_FAILURES, settings.BREAKER_COOLDOWN_SECONDS, DYNAMODB_ERRORS,
    caller_fault=lambda exc: isinstance(exc, PynamoDBException) and exc.cause_response_code in DYNAMODB_CALLER_FAULTS,
)


@dataclass(frozen=True)
class Result:
    """An answer: ``found`` with its rendered JSON ``body``, or a known absence (``body`` empty)."""

    found: bool
    body: bytes
    version: int
    source: str  # cache | dynamodb | postgres

    @classmethod
    def of(cls, entry: cache.Entry, source: str) -> Result:
        return cls(entry.status == 200, entry.body if entry.status == 200 else b"", entry.version, source)


class ReadError(Exception):
    """A read that cannot be answered; ``source`` is the layer that decided (X-Served-From)."""

    source = "none"


class Throttled(ReadError):
    source = "cache"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit reached; retry after {retry_after} s")
        self.retry_after = retry_after


class Unavailable(ReadError):
    """No layer that holds the answer can be reached right now."""


class VersionUnavailable(ReadError):
    """No version of the document at or above the one the client asked for exists."""

    def __init__(self, version: int, source: str) -> None:
        super().__init__(f"the newest version is {version}")
        self.source = source


# KEYS: value, rate-limit counter ('' for none), metrics hash ('' for none), version floor ('' for
# none); ARGV: window ms. Returns {count, value, floor}: the client's requests in this window, the
# value read and, on a miss only, the key's version floor.
COUNT_REQUEST_LUA = """
local count = 0
if KEYS[2] ~= '' then
  count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
end
"""
"""Lua that counts a client's request in its rate-limit window (KEYS[2], '' for none; ARGV[1] the
window in ms) into ``count``: the start of every script that reads and counts in one round trip."""
_HOT_READ = COUNT_REQUEST_LUA + """local value = redis.call('GET', KEYS[1])
if KEYS[3] ~= '' then redis.call('HINCRBY', KEYS[3], value and 'reader.hit' or 'reader.miss', 1) end
local floor = false
if not value and KEYS[4] ~= '' then floor = redis.call('GET', KEYS[4]) end
return {count, value, floor}
"""


@dataclass(frozen=True)
class Throttle:
    """A fixed-window rate limit for one client, counted in the same round trip as the read.

    ``ident`` is the client's bucket (see ``hybridsite.clients``). A request that makes the cache
    hold a new entry for the client (a listing page, an absent key) counts ``fill_cost`` more.
    """

    scope: str
    ident: str
    limit: int
    window_seconds: int = 60
    fill_cost: int = 0

    def key(self) -> str:
        return cache_keys.rate_limit(self.scope, self.ident, window(self.window_seconds)[0])

    def retry_after(self) -> int:
        return window(self.window_seconds)[1]


def counted_get(
    key: str, throttle: Throttle | None, metered: bool, floor: str = ""
) -> tuple[int, bytes | None, int | None]:
    """GET ``key`` and count the client's request, in one round trip; on a miss, the floor of the
    document ``floor`` names (None: Redis has none)."""
    keys = [key, throttle.key() if throttle else "", cache_keys.metrics() if metered else ""]
    keys.append(cache_keys.floor(floor) if floor else "")
    window_ms = (throttle.window_seconds if throttle else 60) * 1000
    count, raw, floor_version = redis_client.script(redis_client.client(), _HOT_READ)(keys=keys, args=[window_ms])
    return int(count), raw, None if floor_version is None else int(floor_version)


def check_rate(throttle: Throttle | None, count: int) -> None:
    if throttle and count > throttle.limit:
        raise Throttled(throttle.retry_after())


def charge_fill(throttle: Throttle) -> None:
    """Charge a client for an entry its request added to the cache (say an absent SKU), so that
    no client can fill Redis faster than its share; best effort like every rate-limit count."""
    if not throttle.fill_cost:
        return
    try:
        redis_breaker.call(lambda: redis_client.client().incrby(throttle.key(), throttle.fill_cost))
    except (RedisError, CircuitOpen):
        pass


