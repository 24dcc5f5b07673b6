"""Redis entries of rendered documents, never replaced by an older version.

An entry is ``b"<version> <status>\\n" + body``: status 200 with the JSON bytes, or 404 with an
empty body (a cached absence). Writers go through one compare-and-set script, so a reader that
fetched version v, or a slow projector, cannot overwrite an entry holding a newer version.

Each key also has a version floor: the highest version stored for it, kept much longer than the
entry (``CACHE_FLOOR_TTL_SECONDS``). A reader never returns or caches a version below it, so
reads do not go backwards when an entry expires while DynamoDB is behind what was served.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.db import DatabaseError
from redis.client import Pipeline
from redis.exceptions import RedisError

from hybridsite import cache_keys
from hybridsite.redis_client import client, script

from . import metrics
from .models import ReadFloor

logger = logging.getLogger(__name__)

# KEYS: entry, version floor, fill lease. ARGV: lease token ('' for a projector), version, payload,
# entry ttl ms, floor ttl ms, the floor a projector starts from where Redis holds none ('': none
# known yet). A key without a floor is one Redis has no record of (restarted empty, evicted, not
# read for a day) while Postgres may keep a durable floor for it (a version it served while
# DynamoDB was behind): a projector's store then answers -1 and writes nothing, and is sent again
# with the durable floor (readers consult it themselves). The floor rises to the version whatever
# happens next (it was served).
# A projector revokes a running fill's lease (the lock stays until it expires, so that late readers
# still wait for the entry); a reader's fill is refused when its lease is gone (revoked, expired,
# or Redis restarted). The entry is replaced only by a newer version and never written below the
# floor (a slow projection may finish after a newer version was served from Postgres); an entry
# left below the floor is removed: a hit never returns less than was served. Returns 1 when written.
_STORE = """
local version = tonumber(ARGV[2])
local held = redis.call('GET', KEYS[2])
if not held and ARGV[1] == '' then
  if ARGV[6] == '' then return -1 end
  held = ARGV[6]
end
local floor = tonumber(held or '0')
local below = version < floor
if floor < version then floor = version end
redis.call('SET', KEYS[2], string.format('%d', floor), 'PX', ARGV[5])
local leased = true
if ARGV[1] == '' then
  redis.call('SET', KEYS[3], 'revoked', 'XX', 'KEEPTTL')
elseif redis.call('GET', KEYS[3]) == ARGV[1] then
  redis.call('DEL', KEYS[3])
else
  leased = false
end
local current = redis.call('GET', KEYS[1])
local v = current and tonumber(string.match(current, '^(%d+)'))
if not leased or below or (v and v >= version) then
  if v and v < floor then redis.call('DEL', KEYS[1]) end
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
"""


# KEYS: entry, fill lease. A key DynamoDB never held: its entry goes and a running fill's lease is
# revoked, in one step (the floor stays).
_FORGET = """
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], 'revoked', 'XX', 'KEEPTTL')
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


def read(key: str) -> bytes | None:
    """The bytes stored at ``key`` (this client never decodes responses to ``str``), or None."""
    return cast("bytes | None", client().get(key))


# KEYS: a single-flight lock; ARGV: its holder's token. Only the holder lets go of it.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def lock(key: str, ms: int) -> str | None:
    """Take a single-flight lock for ``ms`` milliseconds: its token when taken, None when another
    holds it. The token is the holder's lease: only that token releases it."""
    token = secrets.token_hex(8)
    return token if client().set(key, token, nx=True, px=ms) else None


def unlock(key: str, token: str) -> None:
    script(client(), _RELEASE)(keys=[key], args=[token])


def wait_for(key: str, wait_ms: int, accept: Callable[[bytes], bool] = lambda raw: True) -> bytes | None:
    """Poll ``key`` until it holds a value ``accept`` takes (a single-flight follower waiting for the
    leader's entry), at most ``wait_ms``; None when it did not come."""
    deadline = time.monotonic() + wait_ms / 1000
    while time.monotonic() < deadline:
        time.sleep(0.005)
        raw = read(key)
        if raw is not None and accept(raw):
            return raw
    return None


UNFLOORED = -1
"""A projector's store refused because Redis holds no floor for the key (see ``_STORE``)."""


def durable_floors(names: list[str]) -> dict[str, int]:
    """The floors Postgres keeps for versions it served while DynamoDB was behind, by cache name:
    consulted, in one query, only for keys Redis holds no floor for. Without Postgres: none."""
    if not names:
        return {}
    try:
        return dict(ReadFloor.objects.filter(name__in=names).values_list("name", "version"))
    except DatabaseError:
        return {}


def _store_args(
    name: str, version: int, body: bytes | None, lease: str, start: int | None
) -> tuple[list[str], list[str | int | bytes]]:
    """The keys and arguments of one ``_STORE``; ``start``: the durable floor, None when not read."""
    payload = encode(version, 404 if body is None else 200, body or b"")
    return (
        [cache_keys.document(name), cache_keys.floor(name), cache_keys.fill_lock(name)],
        [lease, version, payload, ttl_ms(negative=body is None), settings.CACHE_FLOOR_TTL_SECONDS * 1000,
         "" if start is None else start],
    )


def store(name: str, version: int, body: bytes | None, lease: str = "") -> bool:
    """Raise the key's version floor to ``version``, and write the entry unless Redis already holds
    this or a newer version. ``body=None`` is an absence. With ``lease`` (a reader's fill token) the
    entry is not written once the lease is gone. True when the entry was written."""
    store_script = script(client(), _STORE)
    keys, args = _store_args(name, version, body, lease, None)
    written = store_script(keys=keys, args=args)
    if written == UNFLOORED:
        keys, args = _store_args(name, version, body, lease, durable_floors([name]).get(name, 0))
        written = store_script(keys=keys, args=args)
    return written == 1


NO_LEASE = "-"
"""A lease token no fill lock ever holds: a store with it raises the floor and writes no entry."""


def catch_up(floors: dict[str, int], listings: list[str]) -> None:
    """Tell Redis what was served without it (``readpath.Unlearned``), in one pipelined round
    trip: each floor raised to its version, the entry left below it dropped and none written; each
    listing moved to a new generation."""
    redis = client()
    store_script = script(redis, _STORE)
    pipe = redis.pipeline(transaction=False)
    for name, version in floors.items():
        keys, args = _store_args(name, version, None, NO_LEASE, None)
        store_script(keys=keys, args=args, client=pipe)
    for listing in listings:
        pipe.incr(cache_keys.listing_generation(listing))
    pipe.execute()


def refresh_after_projection(name: str, version: int, body: bytes | None) -> bool:
    """Store what a projection wrote to DynamoDB; False when Redis could not be reached.

    The new document is stored, not just busted: the next read is a hit, a reader still holding
    an older version cannot put it back (the entry's version is compared, its lease is revoked),
    and a failure is reported so that the projection is retried: Redis must never keep serving an
    older version than DynamoDB's.
    """
    try:
        store(name, version, body)
        return True
    except RedisError as exc:
        metrics.incr("cache.refresh_failed")
        logger.warning("cache refresh of %s failed: %s", name, exc)
        return False


@dataclass
class Refreshes:
    """What one projection changes in Redis: documents stored (body None: absent), entries of keys
    DynamoDB never held dropped, listings moved to a new generation."""

    stored: list[tuple[str, int, bytes | None]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    listings: set[str] = field(default_factory=set)


def refresh_after_projections(batch: list[Refreshes], populate: bool = True) -> list[bool]:
    """Every projection's refreshes in one pipelined round trip (a second, after one query, for keys
    Redis holds no floor for: see ``_STORE``); for each, whether all of its own
    reached Redis (when one did not, that projection is retried, as after
    :func:`refresh_after_projection`).

    With ``populate`` False (a backfill) only keys Redis already holds a floor for, the keys read
    lately, are refreshed: a million documents projected at once do not evict the hot set.

    A stored entry goes through the compare-and-set script (never an older version; a reader's
    fill lease revoked); a forgotten one is dropped and its fill lease revoked in one script, so
    that no fill lands in between; a listing's generation is counted up.
    """
    if not any(r.stored or r.forgotten or r.listings for r in batch):
        return [True] * len(batch)
    redis = client()
    store_script, forget_script = script(redis, _STORE), script(redis, _FORGET)
    pipe = redis.pipeline(transaction=False)
    senders: list[tuple[int, tuple[str, int, bytes | None] | None]] = []
    for index, refreshes in enumerate(batch):
        for stored in refreshes.stored:
            keys, args = _store_args(*stored, lease="", start=None)
            store_script(keys=keys, args=args, client=pipe)
            senders.append((index, stored))
        for name in refreshes.forgotten:
            forget_script(keys=[cache_keys.document(name), cache_keys.fill_lock(name)], client=pipe)
            senders.append((index, None))
        for listing in sorted(refreshes.listings):
            pipe.incr(cache_keys.listing_generation(listing))
            senders.append((index, None))
    answers = _execute(pipe, len(senders))
    # Keys Redis held no floor for: sent again, each starting from its durable floor; or, without
    # ``populate``, only their leases revoked and stray entries dropped (nothing added).
    unfloored = [(index, stored) for (index, stored), answer in zip(senders, answers)
                 if stored is not None and answer == UNFLOORED]
    if unfloored:
        starts = durable_floors([name for _, (name, _, _) in unfloored]) if populate else {}
        pipe = redis.pipeline(transaction=False)
        for _, stored in unfloored:
            if populate:
                keys, args = _store_args(*stored, lease="", start=starts.get(stored[0], 0))
                store_script(keys=keys, args=args, client=pipe)
            else:
                forget_script(keys=[cache_keys.document(stored[0]), cache_keys.fill_lock(stored[0])], client=pipe)
        senders += unfloored
        answers += _execute(pipe, len(unfloored))
    refreshed = [True] * len(batch)
    for (index, _), answer in zip(senders, answers):
        if isinstance(answer, Exception):
            refreshed[index] = False
    if not all(refreshed):
        failed = refreshed.count(False)
        metrics.incr("cache.refresh_failed", failed)
        logger.warning("cache refresh failed for %d of %d projections: %s", failed, len(batch),
                       next(a for a in answers if isinstance(a, Exception)))
    return refreshed


def _execute(pipe: Pipeline, sent: int) -> list[Any]:
    """A pipeline's answers, each error in its place (all of them errors when Redis could not be
    reached)."""
    try:
        return list(pipe.execute(raise_on_error=False))
    except RedisError as exc:
        return [exc] * sent
