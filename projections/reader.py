"""Read-through of documents served one at a time: Redis -> DynamoDB -> Postgres.

The hit path is one Redis round trip (a script that counts the client's rate-limit window, reads
the entry and counts the hit) and no serializer work: entries hold the rendered JSON bytes. A miss
is filled once per key (single flight, bounded wait); a DynamoDB miss projects the aggregate from
Postgres through the projector. Each dependency sits behind a circuit breaker: with Redis down
reads go to DynamoDB, with DynamoDB down to Postgres.
"""

from __future__ import annotations

import logging
from typing import cast

from django.conf import settings
from django.db import DatabaseError, connection
from redis.exceptions import RedisError

from hybridsite import cache_keys
from hybridsite.dynamodb import batch_get_items, key_of

from . import cache, metrics
from .breaker import CircuitOpen
from .models import ReadFloor
from .projector import Fenced, LockBusy, PermanentProjectionError, project, render_documents
from .readpath import (
    DYNAMODB_ERRORS,
    Result,
    Throttle,
    Unavailable,
    VersionUnavailable,
    check_rate,
    counted_get,
    dynamodb_breaker,
    redis_breaker,
)
from .registry import DocumentAddress
from .tables import ProjectedItem

logger = logging.getLogger(__name__)

Counted = tuple[int, bytes | None, int | None]
"""The hot read's one round trip: the client's requests in this window, the entry (None: a miss)
and, on a miss, the key's version floor (None: Redis has none)."""


def counted_read(ref: DocumentAddress, throttle: Throttle | None) -> Counted:
    """Count the client's request, read the entry (and on a miss its floor): one Redis round trip.
    Without Redis the rate limit fails open (reads matter more) and every read is a miss."""
    try:
        return redis_breaker.call(
            lambda: counted_get(cache_keys.document(ref.name), throttle, metered=True, floor=ref.name)
        )
    except (RedisError, CircuitOpen):
        return 0, None, None


def cached_result(counted: Counted, throttle: Throttle | None, min_version: int = 0) -> Result | None:
    """The hit as it is: a found entry at or above ``min_version`` for a client within its limit;
    None for everything ``read_document`` has to decide."""
    count, raw, _ = counted
    if raw is None or (throttle is not None and count > throttle.limit):
        return None
    entry = cache.decode(raw)
    if entry.status != 200 or entry.version < min_version:
        return None
    return Result.of(entry, "cache")


def read_document(
    ref: DocumentAddress, throttle: Throttle | None = None, min_version: int = 0, counted: Counted | None = None
) -> Result:
    """The document, never older than the key's version floor nor than ``min_version`` (a client
    that wrote version N asks to read at least N). ``counted`` is this request's ``counted_read``
    when it was already made (the hot-read middleware makes it)."""
    count, raw, floor = counted_read(ref, throttle) if counted is None else counted
    check_rate(throttle, count)
    if raw is not None:
        entry = cache.decode(raw)
        if entry.version >= min_version:
            return Result.of(entry, "cache")
        metrics.incr("reader.below_min_version")
    if floor is None:
        floor = _durable_floor(ref.name)
    result = _fill(ref, max(floor, min_version))
    if result.found and result.version < min_version:
        raise VersionUnavailable(result.version, result.source)
    return result


def _durable_floor(name: str) -> int:
    """The floor Postgres keeps for a version it served while DynamoDB was behind: consulted only
    when Redis has no floor (restarted, evicted, unreachable). Without Postgres: none."""
    try:
        return ReadFloor.objects.filter(name=name).values_list("version", flat=True).first() or 0
    except DatabaseError:
        return 0


def _record_durable_floor(name: str, version: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ReadFloor._meta.db_table} (name, version, updated_at) VALUES (%s, %s, now())"
            f" ON CONFLICT (name) DO UPDATE SET version = GREATEST({ReadFloor._meta.db_table}.version,"
            " EXCLUDED.version), updated_at = now()",
            [name, version],
        )


def _fill(ref: DocumentAddress, floor: int) -> Result:
    """Fill a cold key once: the first reader fetches, the others wait briefly for its entry.

    The first reader's lock token is its lease: a projection that stores the key meanwhile
    revokes it (as does a Redis restart), and a fill whose lease is gone stores nothing, so a
    reader holding an older version cannot put it in front of a newer one.
    """
    lock_key = cache_keys.fill_lock(ref.name)
    try:
        lease = redis_breaker.call(lambda: cache.lock(lock_key, settings.READ_FILL_LOCK_MS)) or ""
        leader = bool(lease)
    except (RedisError, CircuitOpen):
        leader, lease = True, ""  # no Redis: no coalescing and nothing to store, but reads go on
    if not leader:
        waited = _wait_for_entry(ref, floor)
        if waited is not None:
            return waited
    try:
        entry, source, cacheable = _fetch(ref, floor)
        try:
            body = entry.body if entry.status == 200 else None
            # Without a lease, or for an answer DynamoDB does not hold, the entry is not stored;
            # the floor still learns what was served.
            store_lease = lease if lease and cacheable else NO_LEASE
            redis_breaker.call(lambda: cache.store(ref.name, entry.version, body, lease=store_lease))
        except (RedisError, CircuitOpen):
            pass
        return Result.of(entry, source)
    finally:
        if lease:
            try:
                redis_breaker.call(lambda: cache.unlock(lock_key, lease))
            except (RedisError, CircuitOpen):
                pass


NO_LEASE = "-"  # a token no fill lock ever holds: the store raises the floor and writes no entry


def _wait_for_entry(ref: DocumentAddress, floor: int) -> Result | None:
    try:
        raw = redis_breaker.call(lambda: cache.wait_for(
            cache_keys.document(ref.name), settings.READ_FILL_WAIT_MS,
            accept=lambda raw: cache.decode(raw).version >= floor,
        ))
    except (RedisError, CircuitOpen):
        return None
    if raw is None:
        metrics.incr("reader.fill_wait_timeout")
        return None
    metrics.incr("reader.coalesced")
    return Result.of(cache.decode(raw), "cache")


def _fetch(ref: DocumentAddress, floor: int) -> tuple[cache.Entry, str, bool]:
    """DynamoDB first; Postgres when DynamoDB has no document, holds one below the floor (it is
    behind what was already served), holds one too large to store, or cannot be reached."""
    unstorable = False
    try:
        item = dynamodb_breaker.call(ref.stored)
    except (CircuitOpen, *DYNAMODB_ERRORS) as exc:
        logger.warning("reader: DynamoDB unavailable for %s (%s); reading Postgres", ref.name, exc)
    else:
        if item is not None and item.version >= floor:
            if item.deleted or item.body is not None:
                metrics.incr("reader.fill.dynamodb")
                return _entry(item.version, item.body), "dynamodb", True
            unstorable = True  # a placeholder: the document at this version is too large for DynamoDB
        elif item is not None:
            metrics.incr("reader.below_floor")
    metrics.incr("reader.fill.unstorable" if unstorable else "reader.fill.postgres")
    try:
        entry, cacheable = (_rendered(ref), False) if unstorable else _from_postgres(ref)
        return entry, "postgres", cacheable
    except DatabaseError as exc:
        raise Unavailable(f"neither DynamoDB nor Postgres could answer for {ref.name}") from exc


def _from_postgres(ref: DocumentAddress) -> tuple[cache.Entry, bool]:
    """The answer from Postgres, and whether the cache may keep it: only what DynamoDB now holds
    (a projection wrote it, or the aggregate is absent), never a render DynamoDB never saw."""
    located = ref.locate()
    if located is None:
        return cache.Entry(0, 404, b""), True
    aggregate_type, aggregate_id = located
    try:
        outcome = dynamodb_breaker.call(
            lambda: project(aggregate_type, aggregate_id, lock_wait_ms=settings.READ_PROJECT_LOCK_WAIT_MS)
        )
    except (CircuitOpen, PermanentProjectionError, Fenced, LockBusy, *DYNAMODB_ERRORS) as exc:
        # DynamoDB unreachable, or a projection of it is under way: Postgres answers, and
        # remembers the version it served, which DynamoDB may not have yet.
        logger.warning("reader: %s not projected (%s); serving it from Postgres", ref.name, exc)
        return _rendered(ref), False
    if ref.name in outcome.uncached:  # projected, but too large for DynamoDB: served, not cached
        _record_durable_floor(ref.name, outcome.version)
        return _entry(outcome.version, outcome.documents.get(ref.name)), False
    return _entry(outcome.version, outcome.documents.get(ref.name)), True


def _rendered(ref: DocumentAddress) -> cache.Entry:
    """The document rendered from Postgres, never cached; the version served is remembered as the
    key's durable floor (DynamoDB may not hold it)."""
    located = ref.locate()
    if located is None:
        return cache.Entry(0, 404, b"")
    version, bodies = render_documents(*located)
    _record_durable_floor(ref.name, version)
    return _entry(version, bodies.get(ref.name))


def _entry(version: int, body: bytes | None) -> cache.Entry:
    return cache.Entry(version, 404, b"") if body is None else cache.Entry(version, 200, body)


def read_documents(refs: list[DocumentAddress]) -> dict[str, bytes]:
    """The found documents of several keys by cache name (absent ones are left out), for pages
    made of many documents: one Redis round trip for their entries and floors, one DynamoDB batch
    read for the keys Redis did not hold, and the whole read path (``read_document``) for those
    neither holds at or above their floor. What DynamoDB answers here is not stored in Redis: a
    batch read takes no fill leases (a document's own read fills its entry)."""
    found: dict[str, bytes] = {}
    try:
        names = [ref.name for ref in refs]
        keys = [cache_keys.document(name) for name in names] + [cache_keys.floor(name) for name in names]
        # This client never decodes responses to str.
        raws = cast("list[bytes | None]", redis_breaker.call(lambda: cache.client().mget(keys)) if refs else [])
    except (RedisError, CircuitOpen):
        raws = [None] * (2 * len(refs))
    floors: dict[str, int] = {}
    for ref, raw, floor in zip(refs, raws[: len(refs)], raws[len(refs):], strict=True):
        if raw is None:
            floors[ref.name] = int(floor or 0)
        elif (entry := cache.decode(raw)).status == 200:
            found[ref.name] = entry.body
    missing = [ref for ref in refs if ref.name in floors]
    try:
        items = dynamodb_breaker.call(lambda: _batch_get(missing)) if missing else {}
    except (CircuitOpen, *DYNAMODB_ERRORS):
        items = {}  # each key goes the whole read path, which falls back to Postgres
    for ref in missing:
        item = items.get(ref.name)
        if item is not None and item.version >= floors[ref.name]:
            if not item.deleted and item.body is not None:
                found[ref.name] = item.body.encode()
            continue
        result = read_document(ref)
        if result.found:
            found[ref.name] = result.body
    return found


def _batch_get(refs: list[DocumentAddress]) -> dict[str, ProjectedItem]:
    """The items DynamoDB holds for ``refs``, by cache name: one batch read per table."""
    by_model: dict[type[ProjectedItem], list[DocumentAddress]] = {}
    for ref in refs:
        by_model.setdefault(ref.model, []).append(ref)
    items: dict[str, ProjectedItem] = {}
    for model, model_refs in by_model.items():
        held = batch_get_items(model, [ref.key for ref in model_refs])
        for ref in model_refs:
            if (item := held.get(key_of(model, ref.key))) is not None:
                items[ref.name] = item
    return items
