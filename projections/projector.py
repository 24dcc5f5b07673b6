"""Apply an aggregate's current state to DynamoDB: conditional, idempotent, in version order.

Projections of one aggregate are serialized by a Postgres advisory lock, and each reads the
aggregate in a REPEATABLE READ snapshot taken after the lock is held, so a later projection never
sees an older state than an earlier one. Every write is still conditioned on the version
(``attribute_not_exists(pk) OR version < :v``): a duplicate or out-of-order delivery is skipped
and counted, never an error, and never moves a document backwards.

Each aggregate's written keys are kept in an ``OwnerManifest`` row in Postgres (a consistent read
under the lock), so items it no longer wants are found and tombstoned. The manifest first grows to cover the keys about to be
written, then shrinks to them once they are: a crash between the two leaves keys that the next
projection tombstones, never a live item nobody tracks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from pynamodb.exceptions import PutError

from . import cache, metrics
from .models import OwnerManifest, ProjectedItem
from .registry import AGGREGATES, Aggregate, Item, Projection, Snapshot

logger = logging.getLogger(__name__)

MAX_ITEM_BYTES = 400 * 1024
ENVELOPE_BYTES = 1024  # key, owner, version and timestamps, generously


class PermanentProjectionError(Exception):
    """Retrying cannot fix this projection (e.g. a document over DynamoDB's item size limit)."""


@dataclass
class Outcome:
    version: int
    written: int = 0
    skipped: int = 0
    tombstoned: int = 0
    documents: dict[str, bytes | None] = field(default_factory=dict)
    """Rendered bodies by cache name (None: absent), for the reader's fill on miss."""
    lag_ms: list[float] = field(default_factory=list)


@contextmanager
def aggregate_lock(owner: str) -> Iterator[None]:
    """Session-level advisory lock: released at the end, or by Postgres if the process dies."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [owner])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [owner])


def read_snapshot(aggregate: Aggregate, aggregate_id: int) -> Snapshot:
    if connection.in_atomic_block:
        # Inside a caller's transaction (a test, a management shell): its snapshot is the one we get.
        return aggregate.load(aggregate_id)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return aggregate.load(aggregate_id)


def render(item: Item, owner: str) -> bytes:
    body = orjson.dumps(item.body)
    size = len(body) + ENVELOPE_BYTES
    if size > MAX_ITEM_BYTES:
        raise PermanentProjectionError(
            f"{owner}: document {item.key} is {size:,} bytes; DynamoDB items are limited to 400 KB"
        )
    return body


def key_names(model: type[ProjectedItem]) -> list[str]:
    return [model._hash_keyname] + ([model._range_keyname] if model._range_keyname else [])


def key_of(item: ProjectedItem | Item, model: type[ProjectedItem]) -> tuple[str, ...]:
    """The item's key as a tuple, the same for a wanted ``Item`` and a stored item."""
    source = item.key if isinstance(item, Item) else {name: getattr(item, name) for name in key_names(model)}
    return tuple(source[name] for name in key_names(model))


def _put(item: ProjectedItem, condition: Any) -> bool:
    try:
        item.save(condition=condition)
        return True
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise


class _Plan:
    """Everything to write for one projection, rendered before any write (no half-written state)."""

    def __init__(self, projection: Projection, snapshot: Snapshot, owner: str, projected_at: datetime) -> None:
        self.projection = projection
        self.table = projection.model.Meta.table_name
        self.rendered = [(item, render(item, owner)) for item in projection.build(snapshot, projected_at)]
        self.keys = {key_of(item, projection.model) for item, _ in self.rendered}


@dataclass
class Manifest:
    version: int
    keys: dict[str, set[tuple[str, ...]]]

    @classmethod
    def read(cls, owner: str) -> Manifest:
        stored = OwnerManifest.objects.filter(owner=owner).values_list("version", "keys").first()
        if stored is None:
            return cls(version=0, keys={})
        version, keys = stored
        return cls(version=version, keys={table: {tuple(k) for k in ks} for table, ks in keys.items()})

    def write(self, owner: str) -> None:
        """Store unless a newer projection already stored its manifest."""
        encoded = orjson.dumps({table: sorted(keys) for table, keys in sorted(self.keys.items())}).decode()
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {OwnerManifest._meta.db_table} (owner, version, keys) VALUES (%s, %s, %s)
                ON CONFLICT (owner) DO UPDATE SET version = EXCLUDED.version, keys = EXCLUDED.keys
                WHERE {OwnerManifest._meta.db_table}.version <= EXCLUDED.version
                """,
                [owner, self.version, encoded],
            )


def project(
    aggregate_type: str, aggregate_id: int, *, deleted_version: int | None = None, repair: bool = False
) -> Outcome:
    """Project one aggregate as it is now in Postgres. ``deleted_version`` comes from the outbox
    row of a delete: the version its tombstones must carry. ``repair`` (drift repair) also
    replaces documents of the same version, whose content is wrong (newer ones stay protected),
    and tombstones items of this owner that its manifest does not know, found through the index."""
    aggregate = AGGREGATES[aggregate_type]
    owner = aggregate.owner(aggregate_id)
    with aggregate_lock(owner):
        snapshot = read_snapshot(aggregate, aggregate_id)
        projected_at = timezone.now()
        plans = [_Plan(projection, snapshot, owner, projected_at) for projection in aggregate.projections]
        manifest = Manifest.read(owner)
        indexed = _indexed_items(plans, owner) if repair else {}
        newest_known = max([manifest.version, *(i.version for items in indexed.values() for i in items)])
        version = snapshot.version if snapshot.state is not None else deleted_version or newest_known + 1
        outcome = Outcome(version=version)
        wanted = _nonempty({plan.table: plan.keys for plan in plans})
        grown = _nonempty({plan.table: manifest.keys.get(plan.table, set()) | plan.keys for plan in plans})
        if grown != manifest.keys:
            Manifest(version=manifest.version, keys=grown).write(owner)
        for plan in plans:
            previous = manifest.keys.get(plan.table, set())
            previous |= {key_of(i, plan.projection.model) for i in indexed.get(plan.table, [])}
            _apply(plan, owner, snapshot, version, projected_at, outcome, previous, repair)
        if wanted != manifest.keys:  # the same keys: nothing to record
            Manifest(version=version, keys=wanted).write(owner)
    if outcome.written and snapshot.committed_at:
        lag = projected_at - datetime.fromisoformat(snapshot.committed_at)
        outcome.lag_ms.append(lag.total_seconds() * 1000)
    metrics.incr_many({
        "projector.written": outcome.written,
        "projector.skipped": outcome.skipped,
        "projector.tombstoned": outcome.tombstoned,
    })
    return outcome


def _nonempty(keys: dict[str, set[tuple[str, ...]]]) -> dict[str, set[tuple[str, ...]]]:
    return {table: table_keys for table, table_keys in keys.items() if table_keys}


def _indexed_items(plans: list[_Plan], owner: str) -> dict[str, list[ProjectedItem]]:
    """Live items of this owner found through the owner index (drift repair only: it lags)."""
    return {
        plan.table: [i for i in plan.projection.model.owner_index.query(owner) if not i.deleted] for plan in plans
    }


def put_document(
    model: type[ProjectedItem], key: dict[str, str], *, owner: str, version: int, body: bytes,
    committed_at: str | None, projected_at: datetime, repair: bool = False,
) -> bool:
    """Write one document unless DynamoDB holds this (with ``repair``: only a newer) version.
    True when written."""
    hash_key = getattr(model, model._hash_keyname)
    document = model(
        **key, owner=owner, version=version, deleted=False, body=body.decode(),
        source_committed_at=committed_at, projected_at=projected_at.isoformat(),
    )
    # A tombstone left by another aggregate (a deleted product's SKU reused) may be replaced.
    not_newer = (model.version <= version) if repair else (model.version < version)
    condition = hash_key.does_not_exist() | not_newer | (
        (model.deleted == True) & (model.owner != owner)  # noqa: E712 (a DynamoDB condition)
    )
    return _put(document, condition)


def put_tombstone(
    model: type[ProjectedItem], key: dict[str, str], *, owner: str, version: int, projected_at: datetime
) -> bool:
    """Mark an item this owner wrote as gone, unless a newer version (or another owner) holds it."""
    tombstone = model(
        **key, owner=owner, version=version, deleted=True, body=None, projected_at=projected_at.isoformat(),
        expires_at=projected_at + timedelta(seconds=settings.TOMBSTONE_TTL_SECONDS),
    )
    return _put(tombstone, (model.owner == owner) & (model.version < version))


def _apply(
    plan: _Plan, owner: str, snapshot: Snapshot, version: int, projected_at: datetime, outcome: Outcome,
    previous_keys: set[tuple[str, ...]], repair: bool,
) -> None:
    projection, model = plan.projection, plan.projection.model
    listings: set[str] = set()
    for item, body in plan.rendered:
        written = put_document(
            model, item.key, owner=owner, version=version, body=body,
            committed_at=snapshot.committed_at, projected_at=projected_at, repair=repair,
        )
        if written:
            outcome.written += 1
            _after_write(projection, item.key, version, body, outcome, listings)
        else:
            outcome.skipped += 1
            if projection.cache_key:
                outcome.documents[projection.cache_key(item.key)] = body
    for old_key in sorted(previous_keys - plan.keys):
        key = dict(zip(key_names(model), old_key))
        if put_tombstone(model, key, owner=owner, version=version, projected_at=projected_at):
            outcome.tombstoned += 1
            _after_write(projection, key, version, None, outcome, listings)
        else:
            outcome.skipped += 1
    cache.bump_listings(listings)


def _after_write(
    projection: Projection, key: dict[str, str], version: int, body: bytes | None, outcome: Outcome, listings: set[str]
) -> None:
    if projection.cache_key:
        name = projection.cache_key(key)
        outcome.documents[name] = body
        cache.refresh_after_projection(name, version, body)
    if projection.listing:
        listings.add(projection.listing(key))


def render_documents(aggregate_type: str, aggregate_id: int) -> tuple[int, dict[str, bytes]]:
    """The documents an aggregate's state renders to, without writing them anywhere.

    The read path's last resort when DynamoDB cannot be reached: Postgres answers directly.
    """
    aggregate = AGGREGATES[aggregate_type]
    snapshot = read_snapshot(aggregate, aggregate_id)
    bodies = {
        projection.cache_key(item.key): orjson.dumps(item.body)
        for projection in aggregate.projections
        if projection.cache_key
        for item in projection.build(snapshot, timezone.now())
    }
    return snapshot.version, bodies
