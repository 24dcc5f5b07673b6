"""What the read path's parts share: the breakers around Redis and DynamoDB, the one-round-trip
counted read, the client's rate limit, results, and the errors the API layer turns into HTTP.

The reader and the listing reader return a ``Result`` (a document, or a known absence) or raise;
they build no HTTP bodies or statuses.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import botocore.exceptions
from django.conf import settings
from pynamodb.exceptions import PynamoDBException
from redis.exceptions import RedisError

from hybridsite import cache_keys, redis_client
from hybridsite.ratelimit import window
from hybridsite.regions import is_home_region

from . import cache, metrics
from .breaker import Breaker, CircuitOpen

DYNAMODB_ERRORS = (PynamoDBException, botocore.exceptions.BotoCoreError)
redis_breaker = Breaker("redis", settings.BREAKER_FAILURES, settings.BREAKER_COOLDOWN_SECONDS, (RedisError,))
# Errors a request causes (a key DynamoDB refuses) say nothing about DynamoDB's health.
DYNAMODB_CALLER_FAULTS = frozenset({"ValidationException"})


def _dynamodb_caller_fault(exc: BaseException) -> bool:
    return isinstance(exc, PynamoDBException) and exc.cause_response_code in DYNAMODB_CALLER_FAULTS


dynamodb_breaker = Breaker(
    "dynamodb", settings.BREAKER_FAILURES, settings.BREAKER_COOLDOWN_SECONDS, DYNAMODB_ERRORS,
    caller_fault=_dynamodb_caller_fault,
)
# A replica region's reads of the home region's DynamoDB: a breaker of their own, so that either
# DynamoDB being down leaves the other trusted.
home_dynamodb_breaker = Breaker(
    "dynamodb-home", settings.BREAKER_FAILURES, settings.BREAKER_COOLDOWN_SECONDS, DYNAMODB_ERRORS,
    caller_fault=_dynamodb_caller_fault,
)

T = TypeVar("T")


@dataclass(frozen=True)
class DynamoDBLayer:
    """A region's DynamoDB as the read path asks it (docs/architecture/regions.md).

    This region's own (``own``): what it answers may be stored in this region's Redis. The home
    region's, asked by a replica region where its own cannot answer at the version wanted (it has
    none, an older one, or cannot be reached): what it answers is served and raises the key's
    version floor, but is never stored as an entry here: no region's Redis holds a version its own
    DynamoDB has not had (the region's stream brings that version to its Redis once replicated).
    """

    region: str | None  # None: this region's
    source: str  # X-Served-From
    breaker: Breaker

    @property
    def own(self) -> bool:
        return self.region is None

    def read(self, read: Callable[[str | None], T]) -> T:
        """``read(region)`` behind this layer's breaker."""
        return self.breaker.call(lambda: read(self.region))


OWN_DYNAMODB = DynamoDBLayer(None, "dynamodb", dynamodb_breaker)


def dynamodb_layers() -> tuple[DynamoDBLayer, ...]:
    """The DynamoDB layers a read asks in turn before Postgres: this region's; in a replica
    region, then the home region's."""
    if is_home_region():
        return (OWN_DYNAMODB,)
    return OWN_DYNAMODB, DynamoDBLayer(settings.HOME_REGION, "home-dynamodb", home_dynamodb_breaker)


class Unlearned:
    """What this process served that Redis could not learn, because its store failed (Redis
    unreachable, or too slow to answer): a document's version (the key's floor was not raised)
    and a listing's page (not cached). Redis may then still hold the older entry or page: a
    projection whose refresh failed the same way (its entry not replaced, its listing not moved to
    a new generation) is retried later. Until Redis learns them, an entry below a version here is
    a miss at it, and a page of a listing here is fetched again. The next round trip that reaches
    Redis sends them all (``cache.catch_up``): each floor raised and the entries below it dropped,
    each listing moved to a new generation, so that other processes stop serving the older ones
    too. Bounded: past ``limit`` of either kind the oldest is forgotten."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._floors: OrderedDict[str, int] = OrderedDict()  # by key: the highest version served
        self._listings: OrderedDict[str, int] = OrderedDict()  # by listing: when a page was last served
        self._served = itertools.count(1)
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._floors or self._listings)

    def floor(self, name: str) -> int:
        return self._floors.get(name, 0)

    def holds_listing(self, listing: str) -> bool:
        return listing in self._listings

    def served(self, name: str, version: int) -> None:
        with self._lock:
            self._floors[name] = max(version, self._floors.pop(name, 0))
            self._bound(self._floors)

    def paged(self, listing: str) -> None:
        with self._lock:
            self._listings.pop(listing, None)
            self._listings[listing] = next(self._served)
            self._bound(self._listings)

    def reset(self) -> None:
        with self._lock:
            self._floors.clear()
            self._listings.clear()

    def _bound(self, held: OrderedDict) -> None:
        while len(held) > self.limit:
            held.popitem(last=False)

    def send(self) -> None:
        """Tell Redis all of it (one pipelined round trip); what was sent is forgotten here, unless
        it was served again meanwhile. A failure keeps it for the next round trip."""
        with self._lock:
            floors, listings = dict(self._floors), dict(self._listings)
        try:
            redis_breaker.call(lambda: cache.catch_up(floors, list(listings)))
        except (RedisError, CircuitOpen):
            return
        with self._lock:
            for held, sent in ((self._floors, floors), (self._listings, listings)):
                for key, mark in sent.items():
                    if held.get(key) == mark:
                        del held[key]
        metrics.incr("reader.unlearned_sent", len(floors) + len(listings))


unlearned = Unlearned(limit=10_000)


@dataclass(frozen=True)
class Result:
    """An answer: ``found`` with its rendered JSON ``body``, or a known absence (``body`` empty)."""

    found: bool
    body: bytes
    version: int
    source: str  # cache | dynamodb | home-dynamodb (a replica region's read of the home region's) | postgres

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


