"""Read-through of documents served one at a time: Redis -> DynamoDB -> Postgres.

The hit path is one Redis round trip (a script that counts the client's rate-limit window, reads
the entry and counts the hit) and no serializer work: entries hold the rendered JSON bytes. A miss
is filled once per key (single flight, bounded wait); a DynamoDB miss projects the aggregate from
Postgres through the projector. Each dependency sits behind a circuit breaker: with Redis down
reads go to DynamoDB, with DynamoDB down to Postgres.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import cast

from django.conf import settings
from django.db import DatabaseError, connection
from redis.exceptions import RedisError

from hybridsite import cache_keys
from hybridsite.dynamodb import batch_get_items, key_of, regional_table
from hybridsite.regions import is_home_region

from . import cache, metrics
from .breaker import CircuitOpen
from .cache import NO_LEASE
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
    dynamodb_layers,
    redis_breaker,
    unlearned,
)
from .registry import DocumentAddress
from .tables import ProjectedItem

logger = logging.getLogger(__name__)

Counted = tuple[int, bytes | None, int | None]
"""The hot read's one round trip: the client's requests in this window, the entry (None: a miss)
and, on a miss, the key's version floor (None: Redis has none)."""


def counted_read(ref: DocumentAddress, throttle: Throttle | None) -> Counted:
    """Count the client's request, read the entry (and on a miss its floor): one Redis round trip.
    Without Redis the rate limit fails open (reads matter more) and every read is a miss. An entry
    below a version this process served while Redis could not learn it is a miss at that version
    (``readpath.Unlearned``)."""
    try:
        count, raw, floor = redis_breaker.call(
            lambda: counted_get(cache_keys.document(ref.name), throttle, metered=True, floor=ref.name)
        )
    except (RedisError, CircuitOpen):
        return 0, None, None
    if unlearned:
        held = unlearned.floor(ref.name)
        unlearned.send()
        if held and (raw is None or cache.decode(raw).version < held):
            raw, floor = None, max(floor or 0, held)
    return count, raw, floor


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
    ref: DocumentAddress,
    throttle: Throttle | None = None,
    min_version: int = 0,
    counted: Counted | None = None,
    seen: int = 0,
) -> Result:
    """The document, never older than the key's version floor nor than ``min_version`` (a client
    that wrote version N asks to read at least N). ``seen`` is the highest version the client says
    it holds (its If-None-Match): answered at or above it by the first layer that can, so that a
    client sent to another region never reads less; when Postgres itself is below it (no such
    version exists), Postgres's answer. ``counted`` is this request's ``counted_read`` when it was
    already made (the hot-read middleware makes it)."""
    count, raw, floor = counted_read(ref, throttle) if counted is None else counted
    check_rate(throttle, count)
    wanted = max(min_version, seen)
    if raw is not None:
        entry = cache.decode(raw)
        if entry.version >= wanted:
            return Result.of(entry, "cache")
        metrics.incr("reader.below_min_version")
    if floor is None:
        floor = _durable_floor(ref.name)
    result = _fill(ref, max(floor, wanted))
    if result.found and result.version < min_version:
        raise VersionUnavailable(result.version, result.source)
    return result


def _durable_floor(name: str) -> int:
    """The floor Postgres keeps for ``name``: consulted when Redis has none."""
    return cache.durable_floors([name]).get(name, 0)


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
            unlearned.served(ref.name, entry.version)
        return Result.of(entry, source)
    finally:
        if lease:
            try:
                redis_breaker.call(lambda: cache.unlock(lock_key, lease))
            except (RedisError, CircuitOpen):
                pass


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
    """The region's DynamoDB, then (in a replica region) the home region's; Postgres when none has
    the document, holds it below the floor (behind what was already served), holds one too large
    to store, or cannot be reached. Whether the cache may keep the answer: only what this region's
    DynamoDB holds (``DynamoDBLayer``)."""
    unstorable = False
    own_absent = False  # this region's DynamoDB answered, and holds no such item
    for layer in dynamodb_layers():
        try:
            item = layer.read(ref.stored)
        except (CircuitOpen, *DYNAMODB_ERRORS) as exc:
            logger.warning("reader: %s unavailable for %s (%s)", layer.source, ref.name, exc)
            continue
        if item is not None and item.version >= floor:
            if item.deleted or item.body is not None:
                metrics.incr(f"reader.fill.{layer.source}")
                return _entry(item.version, item.body), layer.source, layer.own
            unstorable = True  # a placeholder: the document at this version is too large for DynamoDB
            break
        if item is not None:
            metrics.incr("reader.below_floor")
        elif layer.own:
            own_absent = True
    metrics.incr("reader.fill.unstorable" if unstorable else "reader.fill.postgres")
    try:
        if unstorable:
            return _rendered(ref), "postgres", False
        if is_home_region():
            entry, cacheable = _from_postgres(ref)
            return entry, "postgres", cacheable
        # A replica region never projects (its tables receive the home region's writes): Postgres
        # answers, kept only as an absence this region's DynamoDB shares.
        entry = _rendered(ref)
        return entry, "postgres", own_absent and entry.version == 0
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
    read for the keys Redis did not hold (at or above their floors: Redis's, else the durable ones,
    in one query), and the whole read path (``read_document``) for those
    neither holds at or above their floor. What DynamoDB answers here is not stored in Redis: a
    batch read takes no fill leases (a document's own read fills its entry)."""
    found: dict[str, bytes] = {}
    held = {ref.name: unlearned.floor(ref.name) for ref in refs} if unlearned else {}
    try:
        names = [ref.name for ref in refs]
        keys = [cache_keys.document(name) for name in names] + [cache_keys.floor(name) for name in names]
        # This client never decodes responses to str.
        raws = cast("list[bytes | None]", redis_breaker.call(lambda: cache.client().mget(keys)) if refs else [])
    except (RedisError, CircuitOpen):
        raws = [None] * (2 * len(refs))
    else:
        if held:
            unlearned.send()
            raws[: len(refs)] = [  # an entry below a version this process served is a miss at it
                None if raw is not None and cache.decode(raw).version < held[ref.name] else raw
                for ref, raw in zip(refs, raws[: len(refs)], strict=True)
            ]
    floors: dict[str, int] = {}
    unfloored: list[str] = []
    for ref, raw, floor in zip(refs, raws[: len(refs)], raws[len(refs):], strict=True):
        if raw is None:
            floors[ref.name] = max(int(floor or 0), held.get(ref.name, 0))
            if floor is None:
                unfloored.append(ref.name)
        elif (entry := cache.decode(raw)).status == 200:
            found[ref.name] = entry.body
    for name, durable in cache.durable_floors(unfloored).items():
        floors[name] = max(floors[name], durable)
    missing = [ref for ref in refs if ref.name in floors]
    for layer in dynamodb_layers():  # this region's, then (a replica region) the home region's
        if not missing:
            break
        try:
            items = layer.read(partial(_batch_get, missing))
        except (CircuitOpen, *DYNAMODB_ERRORS):
            continue  # what no layer answers goes the whole read path, which falls back to Postgres
        behind = []
        for ref in missing:
            item = items.get(ref.name)
            if item is None or item.version < floors[ref.name]:
                behind.append(ref)
            elif not item.deleted and item.body is not None:
                found[ref.name] = item.body.encode()
        missing = behind
    for ref in missing:
        result = read_document(ref)
        if result.found:
            found[ref.name] = result.body
    return found


def _batch_get(refs: list[DocumentAddress], region: str | None) -> dict[str, ProjectedItem]:
    """The items ``region``'s DynamoDB (None: this region's) holds for ``refs``, by cache name: one
    batch read per table."""
    by_model: dict[type[ProjectedItem], list[DocumentAddress]] = {}
    for ref in refs:
        by_model.setdefault(ref.model, []).append(ref)
    items: dict[str, ProjectedItem] = {}
    for model, model_refs in by_model.items():
        held = batch_get_items(regional_table(model, region), [ref.key for ref in model_refs])
        for ref in model_refs:
            if (item := held.get(key_of(model, ref.key))) is not None:
                items[ref.name] = item
    return items
