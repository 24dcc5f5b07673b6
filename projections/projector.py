"""Apply an aggregate's current state to DynamoDB: conditional, idempotent, in version order.

Projections of one aggregate are serialized by a Postgres advisory lock, and each reads the
aggregate in a REPEATABLE READ snapshot taken after the lock is held, so a later projection never
sees an older state than an earlier one. Every write is still conditioned on the version
(``attribute_not_exists(pk) OR version < :v``): a duplicate or out-of-order delivery is skipped
and counted, never an error, and never moves a document backwards.

Each aggregate's written keys are kept in an ``OwnerManifest`` row in Postgres (a consistent read
under the lock), so items it no longer wants are found and tombstoned. The manifest first grows to
cover the keys about to be written, then shrinks to them once they are, and a key leaves it only
when its item is no longer live: a crash between the two leaves keys that the next projection
tombstones, never a live item nobody tracks. A gone aggregate's tombstones win over every live
version of it.

An append-only view (a product's history) is written once per key (``attribute_not_exists``): a
retried or duplicate projection finds its item there, counts it and succeeds, and nothing ever
replaces or tombstones it. Its writes go out beside the aggregate's first view, not in a round of
their own.

A document stored as content-keyed pieces (the category tree: a piece's key names its content) is
written piece by piece: the pieces its stored head already names are live and hold what their keys
say, so they are not written again, and a change costs the pieces that changed and the head.

A duplicate delivery still refreshes the cache (the projection before it may have died between
DynamoDB and Redis); a failed cache refresh is reported in the outcome, and the relay retries it.
Before each table's writes the projector checks that its session still holds the lock (fencing).

Aggregates are projected in batches (:func:`project_many`): their locks are taken in one query in
a stable order (so two batches that share aggregates wait for each other, never deadlock), their
snapshots and manifests are read with a few queries for the whole batch, their DynamoDB writes go
out concurrently (each still conditioned on its own version) and their cache refreshes in one
pipelined round trip. Each aggregate keeps its own outcome: one that fails does not fail the others.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from hybridsite import dynamodb, regions, tracing
from hybridsite.dynamodb import get_item, hash_key_attribute, key_names

from . import cache, metrics
from .models import OwnerManifest
from .registry import AGGREGATES, Aggregate, Item, Projection, Snapshot
from .tables import ProjectedItem

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_ITEM_BYTES = 400 * 1024
ENVELOPE_BYTES = 1024  # key, owner, version and timestamps, generously


class PermanentProjectionError(Exception):
    """Retrying cannot fix this projection (e.g. an aggregate type nothing projects)."""


class ReplicaRegionWrite(PermanentProjectionError):
    """A projection write in a replica region (see :mod:`hybridsite.regions`): a reader's miss
    there answers from Postgres instead."""


@dataclass
class Outcome:
    version: int
    written: int = 0
    skipped: int = 0
    unchanged: int = 0
    """Content-keyed items (the tree's pieces) that the stored head already names: not written."""
    tombstoned: int = 0
    appended: int = 0
    already_appended: int = 0
    """Append-only items this projection found written (a retry, a duplicate delivery)."""
    documents: dict[str, bytes | None] = field(default_factory=dict)
    """Rendered bodies by cache name (None: absent), for the reader's fill on miss."""
    lag_ms: list[float] = field(default_factory=list)
    cache_failed: bool = False
    """A cache refresh failed: the relay retries the projection so that Redis catches up."""
    refreshes: cache.Refreshes = field(default_factory=cache.Refreshes)
    """What Redis must learn of this projection's writes, sent once all of the batch's are done."""
    unstorable: int = 0
    """Documents too large for DynamoDB, stored as placeholders at this version."""
    uncached: set[str] = field(default_factory=set)
    """Cache names among ``documents`` that DynamoDB does not hold (too large): served, never cached."""


@dataclass(frozen=True)
class Request:
    """One aggregate to project; ``deleted_version`` as in :func:`project`."""

    aggregate_type: str
    aggregate_id: int
    deleted_version: int | None = None


class LockBusy(Exception):
    """Another projector holds the aggregate's lock longer than the caller may wait (a reader)."""


@contextmanager
def aggregate_lock(owner: str, wait_ms: int | None = None) -> Iterator[None]:
    """Session-level advisory lock: released at the end, or by Postgres if the process dies.
    With ``wait_ms``, :class:`LockBusy` when it is not free within that time."""
    with connection.cursor() as cursor:
        if wait_ms is None:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [owner])
        else:
            deadline = time.monotonic() + wait_ms / 1000
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [owner])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    raise LockBusy(f"{owner} is being projected")
                time.sleep(0.005)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [owner])


@contextmanager
def aggregate_locks(owners: Sequence[str]) -> Iterator[None]:
    """Session-level advisory locks on several aggregates, taken in one query one after another in
    the order of their lock keys: batches that share aggregates wait for each other, and since each
    takes its locks in the same order, none holds one the other waits for while waiting itself."""
    try:
        with connection.cursor() as cursor:
            # The aggregate consumes the sorted subquery's rows in order: each lock is taken in turn.
            cursor.execute(
                "SELECT count(pg_advisory_lock(k)) FROM"
                " (SELECT DISTINCT hashtextextended(o, 0) AS k FROM unnest(%s::text[]) AS o ORDER BY k) AS ordered",
                [list(owners)],
            )
        yield
    finally:  # also after a failed wait (a statement timeout): the locks it took before are released
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_unlock(k)) FROM"
                " (SELECT DISTINCT hashtextextended(o, 0) AS k FROM unnest(%s::text[]) AS o) AS held",
                [list(owners)],
            )


def _in_snapshot(load: Callable[[], T]) -> T:
    """``load()`` in one REPEATABLE READ, read-only transaction: every query sees the same state."""
    if connection.in_atomic_block:
        # Inside a caller's transaction (a test, a management shell): its snapshot is the one we get.
        return load()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return load()


def read_snapshot(aggregate: Aggregate, aggregate_id: int) -> Snapshot:
    return _in_snapshot(lambda: aggregate.load(aggregate_id))


def read_snapshots(requests: Sequence[Request]) -> dict[tuple[str, int], Snapshot]:
    """The aggregates' snapshots, all from one consistent read, a few queries per aggregate type."""
    by_type: dict[str, list[int]] = {}
    for request in requests:
        by_type.setdefault(request.aggregate_type, []).append(request.aggregate_id)

    def load() -> dict[tuple[str, int], Snapshot]:
        return {
            (name, aggregate_id): snapshot
            for name, ids in by_type.items()
            for aggregate_id, snapshot in AGGREGATES[name].load_many(ids).items()
        }

    return _in_snapshot(load)


def fits(body: bytes) -> bool:
    """Whether a rendered document fits in a DynamoDB item (400 KB, with its envelope)."""
    return len(body) + ENVELOPE_BYTES <= MAX_ITEM_BYTES


def key_of(item: ProjectedItem | Item, model: type[ProjectedItem]) -> tuple[str, ...]:
    """The item's key as a tuple, the same for a wanted ``Item`` and a stored item."""
    source = item.key if isinstance(item, Item) else {name: getattr(item, name) for name in key_names(model)}
    return tuple(source[name] for name in key_names(model))


def _put(item: ProjectedItem, condition: Any) -> bool:
    refusal = regions.replica_write_refusal(table=item.Meta.table_name)
    if refusal:
        raise ReplicaRegionWrite(refusal)
    return dynamodb.put(item, condition)


class _Plan:
    """Everything to write for one projection, rendered before any write (no half-written state)."""

    def __init__(self, projection: Projection, snapshot: Snapshot, projected_at: datetime) -> None:
        self.projection = projection
        self.table = projection.model.Meta.table_name
        self.rendered = [(item, orjson.dumps(item.body)) for item in projection.build(snapshot, projected_at)]
        self.keys = {key_of(item, projection.model) for item, _ in self.rendered}


@dataclass
class Manifest:
    version: int
    keys: dict[str, set[tuple[str, ...]]]
    unstorable: int = 0

    @classmethod
    def read_many(cls, owners: Sequence[str]) -> dict[str, Manifest]:
        """The owners' manifests in one query (an owner without one gets an empty manifest)."""
        stored = OwnerManifest.objects.filter(owner__in=owners).values_list("owner", "version", "keys", "unstorable")
        found = {
            owner: cls(version, {table: {tuple(k) for k in ks} for table, ks in keys.items()}, unstorable)
            for owner, version, keys, unstorable in stored
        }
        return {owner: found.get(owner) or cls(version=0, keys={}) for owner in owners}

    def grown(self, planned: dict[str, set[tuple[str, ...]]]) -> dict[str, set[tuple[str, ...]]]:
        """The keys to track before writing: those known and those about to be written, per table
        of the plan (a table no projection writes any more is dropped, and so is an empty one)."""
        return _nonempty({table: self.keys.get(table, set()) | keys for table, keys in planned.items()})

    def encoded(self) -> str:
        return orjson.dumps({table: sorted(keys) for table, keys in sorted(self.keys.items())}).decode()

    @staticmethod
    def write_many(manifests: dict[str, Manifest]) -> None:
        """Store each in one statement, unless a newer projection already stored its manifest."""
        if not manifests:
            return
        table = OwnerManifest._meta.db_table
        owners = sorted(manifests)  # rows in one order: concurrent statements never deadlock on them
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (owner, version, keys, unstorable)
                VALUES {", ".join(["(%s, %s, %s, %s)"] * len(owners))}
                ON CONFLICT (owner) DO UPDATE
                SET version = EXCLUDED.version, keys = EXCLUDED.keys, unstorable = EXCLUDED.unstorable
                WHERE {table}.version <= EXCLUDED.version
                """,
                [
                    value for owner in owners for manifest in [manifests[owner]]
                    for value in (owner, manifest.version, manifest.encoded(), manifest.unstorable)
                ],
            )


NEVER_STORED = -1
"""What ``_tombstone`` says of a key under which DynamoDB holds nothing of this owner."""


class Fenced(Exception):
    """The projector's session no longer holds the aggregate's lock (say a pooler handed it another
    backend): another projector may hold it now, so this one stops before writing anything more.
    A session that died fails the check with a connection error instead (transient as well)."""


def _unfenced(owners: Sequence[str]) -> set[str]:
    """Those of the owners whose lock the session that took it no longer holds (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o FROM unnest(%s::text[]) AS o WHERE hashtextextended(o, 0) NOT IN"
            " (SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND pid = pg_backend_pid() AND objsubid = 1)",
            [list(owners)],
        )
        return {row[0] for row in cursor.fetchall()}


def _fence(owner: str) -> None:
    """Check, on the session that took it, that the aggregate's lock is still held."""
    if _unfenced([owner]):
        raise Fenced(f"{owner}: the projection lock is no longer held")


def project(
    aggregate_type: str,
    aggregate_id: int,
    *,
    deleted_version: int | None = None,
    repair: bool = False,
    lock_wait_ms: int | None = None,
) -> Outcome:
    """Project one aggregate as it is now in Postgres. ``deleted_version`` comes from the outbox
    rows: the version a gone aggregate's tombstones carry at least. ``repair`` (drift repair) also
    replaces documents of the same version, whose content is wrong (newer ones stay protected),
    and tombstones items of this owner that its manifest does not know, found through the index.
    ``lock_wait_ms`` bounds the wait for another projector of the same aggregate (a reader)."""
    result = project_many(
        [Request(aggregate_type, aggregate_id, deleted_version)], repair=repair, lock_wait_ms=lock_wait_ms
    )[0]
    if isinstance(result, Exception):
        raise result
    return result


def project_many(
    requests: Sequence[Request], *, repair: bool = False, lock_wait_ms: int | None = None, populate: bool = True
) -> list[Outcome | Exception]:
    """Project several distinct aggregates as one batch (see :func:`project` for the arguments;
    ``lock_wait_ms`` only for a batch of one; ``populate`` False: refresh only the documents Redis
    holds, see ``cache.refresh_after_projections``). Returns each one's outcome, or the error that stopped
    it, in order: an aggregate that fails does not stop the others, and a failure of a step the
    batch shares (its locks, its snapshot) is every aggregate's."""
    results: dict[int, Outcome | Exception] = {}
    jobs: list[_Job] = []
    for index, request in enumerate(requests):
        aggregate = AGGREGATES.get(request.aggregate_type)
        if aggregate is None:
            results[index] = PermanentProjectionError(f"no projection is registered for {request.aggregate_type!r}")
        else:
            jobs.append(_Job(index, request, aggregate, aggregate.owner(request.aggregate_id)))
    owners = [job.owner for job in jobs]
    if len(set(owners)) != len(owners):
        raise ValueError("a batch projects each aggregate once")
    if jobs:
        locks: AbstractContextManager[None]
        if lock_wait_ms is not None:
            if len(jobs) > 1:
                raise ValueError("lock_wait_ms bounds the wait of a batch of one")
            locks = aggregate_lock(owners[0], lock_wait_ms)
        else:
            locks = aggregate_locks(owners)
        try:
            with tracing.span("projection.project", aggregates=len(jobs)), locks:
                _project_jobs(jobs, results, repair, populate)
        except Exception as exc:
            for job in jobs:
                results.setdefault(job.index, exc)
    outcomes = [result for result in results.values() if isinstance(result, Outcome)]
    metrics.incr_many({
        "projector.written": sum(outcome.written for outcome in outcomes),
        "projector.skipped": sum(outcome.skipped for outcome in outcomes),
        "projector.unchanged": sum(outcome.unchanged for outcome in outcomes),
        "projector.tombstoned": sum(outcome.tombstoned for outcome in outcomes),
        "projector.unstorable": sum(outcome.unstorable for outcome in outcomes),
        "projector.appended": sum(outcome.appended for outcome in outcomes),
        "projector.already_appended": sum(outcome.already_appended for outcome in outcomes),
    })
    return [results[index] for index in range(len(requests))]


@dataclass
class _Job:
    """One aggregate of a batch, from its request to its outcome."""

    index: int
    request: Request
    aggregate: Aggregate
    owner: str
    snapshot: Snapshot = field(init=False)
    plans: list[_Plan] = field(init=False)
    manifest: Manifest = field(init=False)
    indexed: dict[str, list[ProjectedItem]] = field(init=False)
    version: int = field(init=False)
    """The version this projection writes (its tombstones may go above it: ``outcome.version``)."""
    outcome: Outcome = field(init=False)
    rounds: list[list[int]] = field(init=False)
    """The plans written in each round of the batch: append-only ones beside the first view."""
    kept: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)

    def plan(self, snapshot: Snapshot, manifest: Manifest, projected_at: datetime, repair: bool) -> None:
        """Render every document and settle the version, before anything is written."""
        self.snapshot, self.manifest = snapshot, manifest
        self.plans = [_Plan(p, snapshot, projected_at) for p in self.aggregate.projections]
        tracked = [i for i, plan in enumerate(self.plans) if not plan.projection.append_only]
        appended = [i for i, plan in enumerate(self.plans) if plan.projection.append_only]
        self.rounds = [[*tracked[:1], *appended], *([i] for i in tracked[1:])]
        self.indexed = _indexed_items(self.plans, self.owner) if repair else {}
        newest_known = max([manifest.version, *(i.version for items in self.indexed.values() for i in items)])
        gone = snapshot.state is None
        self.version = max(self.request.deleted_version or 0, newest_known + 1) if gone else snapshot.version
        self.outcome = Outcome(version=self.version)

    def grown(self) -> dict[str, set[tuple[str, ...]]]:
        return self.manifest.grown({plan.table: plan.keys for plan in self.plans if not plan.projection.append_only})

    def write(self, table: int, projected_at: datetime, repair: bool) -> None:
        """The ``table``-th view's writes: appended, or applied. The two kinds of one job may run
        at once on two threads: they change different fields of the outcome."""
        if self.plans[table].projection.append_only:
            _append(self.plans[table], self.owner, self.snapshot, self.version, projected_at, self.outcome)
        else:
            self.apply(table, projected_at, repair)

    def apply(self, table: int, projected_at: datetime, repair: bool) -> None:
        """Write the documents of the aggregate's ``table``-th view and tombstone what it left."""
        plan = self.plans[table]
        previous = self.manifest.keys.get(plan.table, set()) | {
            key_of(i, plan.projection.model) for i in self.indexed.get(plan.table, [])
        }
        still_live = _apply(
            plan, self.owner, self.snapshot, self.version, projected_at, self.outcome, previous, repair
        )
        self.kept[plan.table] = plan.keys | still_live

    def shrunk(self) -> Manifest | None:
        """The manifest to store once every write is done, or None when it stays as it is. The same
        keys and as many documents too large to store: nothing to record. A failed cache refresh
        keeps the keys, so that the retried projection still finds what it has to refresh (a
        tombstone it already wrote)."""
        wanted = _nonempty(self.kept)
        same = wanted == self.manifest.keys and self.outcome.unstorable == self.manifest.unstorable
        if same or self.outcome.cache_failed:
            return None
        return Manifest(self.outcome.version, wanted, self.outcome.unstorable)


def _project_jobs(jobs: list[_Job], results: dict[int, Outcome | Exception], repair: bool, populate: bool) -> None:
    """The batch's steps, under its locks; each job that fails gets its error in ``results``."""
    snapshots = read_snapshots([job.request for job in jobs])
    manifests = Manifest.read_many([job.owner for job in jobs])
    projected_at = timezone.now()
    live: list[_Job] = []
    for job in jobs:
        try:
            snapshot = snapshots[job.request.aggregate_type, job.request.aggregate_id]
            job.plan(snapshot, manifests[job.owner], projected_at, repair)
            live.append(job)
        except Exception as exc:  # a document that cannot be built: this aggregate only
            results[job.index] = exc
    Manifest.write_many({
        job.owner: Manifest(job.manifest.version, grown, job.manifest.unstorable)
        for job in live
        if (grown := job.grown()) != job.manifest.keys
    })
    for number in range(max((len(job.rounds) for job in live), default=0)):
        unfenced = _unfenced([job.owner for job in live])
        for job in live:
            if job.owner in unfenced:
                results[job.index] = Fenced(f"{job.owner}: the projection lock is no longer held")
        live = [job for job in live if job.owner not in unfenced]
        writes = [(job, table) for job in live if number < len(job.rounds) for table in job.rounds[number]]
        write = partial(_write, projected_at=projected_at, repair=repair)
        for (job, _), error in zip(writes, concurrently(write, writes)):
            if isinstance(error, Exception):
                results.setdefault(job.index, error)
        live = [job for job in live if job.index not in results]
    for job, refreshed in zip(live, cache.refresh_after_projections([job.outcome.refreshes for job in live], populate)):
        job.outcome.cache_failed |= not refreshed
    Manifest.write_many({job.owner: manifest for job in live if (manifest := job.shrunk()) is not None})
    for job in live:
        outcome = job.outcome
        if outcome.written and job.snapshot.committed_at:
            lag = projected_at - datetime.fromisoformat(job.snapshot.committed_at)
            outcome.lag_ms.append(lag.total_seconds() * 1000)
        results[job.index] = outcome


def _write(task: tuple[_Job, int], projected_at: datetime, repair: bool) -> None:
    job, table = task
    job.write(table, projected_at, repair)


_writers: ThreadPoolExecutor | None = None
_writers_lock = threading.Lock()


def _forget_writers() -> None:
    """In a forked child: the parent's writer threads are not there to run what it submits."""
    global _writers, _writers_lock
    _writers, _writers_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_writers)


def concurrently(func: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
    """``func`` of each item on the process's DynamoDB threads (a batch's writes, a sharded
    listing's queries; they never touch Postgres), in order; an error is returned in its place,
    not raised."""
    global _writers
    if len(items) <= 1:
        return [_call(func, item) for item in items]
    with _writers_lock:
        if _writers is None:
            _writers = ThreadPoolExecutor(settings.PROJECTION_WRITE_THREADS, thread_name_prefix="projection-writes")
    return list(_writers.map(lambda item: _call(func, item), items))


def _call(func: Callable[[T], R], item: T) -> R | Exception:
    try:
        return func(item)
    except Exception as exc:
        return exc


def _nonempty(keys: dict[str, set[tuple[str, ...]]]) -> dict[str, set[tuple[str, ...]]]:
    return {table: table_keys for table, table_keys in keys.items() if table_keys}


def owned_items(model: type[ProjectedItem], owner: str) -> list[ProjectedItem]:
    """The items of ``model``'s table that ``owner`` wrote, tombstones included: their keys from
    the owner index (keys only, and eventually consistent: it lags), then the items themselves in
    strongly consistent BatchGetItem calls, keeping those still this owner's."""
    keys = [{name: getattr(entry, name) for name in key_names(model)} for entry in model.owner_index.query(owner)]
    return [item for item in dynamodb.batch_get_items(model, keys).values() if item.owner == owner]


def _indexed_items(plans: list[_Plan], owner: str) -> dict[str, list[ProjectedItem]]:
    """Live items of this owner found through the owner index (drift repair only: it lags)."""
    return {
        plan.table: [i for i in owned_items(plan.projection.model, owner) if not i.deleted]
        for plan in plans
        if not plan.projection.append_only
    }


def put_document(
    model: type[ProjectedItem], key: dict[str, str], *, owner: str, version: int, body: bytes,
    committed_at: str | None, projected_at: datetime, repair: bool = False,
) -> bool:
    """Write one document unless DynamoDB holds this (with ``repair``: only a newer) version;
    one too large for an item is written as a placeholder without its body. True when written."""
    hash_key = hash_key_attribute(model)
    stored = fits(body)
    document = model(
        # mypy fears the key fills PynamoDB's own ``_user_instantiated: bool``; it holds key attributes
        **key,  # type: ignore[arg-type]
        owner=owner, version=version, deleted=False, body=body.decode() if stored else None,
        unstorable=None if stored else len(body),
        source_committed_at=committed_at, projected_at=projected_at.isoformat(),
    )
    # A tombstone left by another aggregate (a deleted product's SKU reused) may be replaced.
    not_newer = (model.version <= version) if repair else (model.version < version)
    condition = hash_key.does_not_exist() | not_newer | (
        (model.deleted == True) & (model.owner != owner)  # noqa: E712 (a DynamoDB condition)
    )
    return _put(document, condition)


def put_tombstone(
    model: type[ProjectedItem], key: dict[str, str], *, owner: str, version: int, projected_at: datetime,
    repair: bool = False,
) -> bool:
    """Mark an item this owner wrote as gone, unless a newer version (or another owner) holds it;
    with ``repair``, also one of this very version (written under a key the aggregate no longer
    has at it: say before the listing's shard count changed)."""
    tombstone = model(
        **key,  # type: ignore[arg-type]  # key attributes, as in put_document
        owner=owner, version=version, deleted=True, body=None, projected_at=projected_at.isoformat(),
        expires_at=projected_at + timedelta(seconds=settings.TOMBSTONE_TTL_SECONDS),
    )
    not_newer = (model.version <= version) if repair else (model.version < version)
    return _put(tombstone, (model.owner == owner) & not_newer)


def put_once(
    model: type[ProjectedItem], key: dict[str, str], *, owner: str, version: int, body: bytes,
    committed_at: str | None, projected_at: datetime, expires_at: datetime | None,
) -> bool:
    """Append an item unless its key holds one already (append-only views). True when written."""
    item = model(
        **key,  # type: ignore[arg-type]  # key attributes, as in put_document
        owner=owner, version=version, deleted=False, body=body.decode(), source_committed_at=committed_at,
        projected_at=projected_at.isoformat(), expires_at=expires_at,
    )
    return _put(item, hash_key_attribute(model).does_not_exist())


def _append(
    plan: _Plan, owner: str, snapshot: Snapshot, version: int, projected_at: datetime, outcome: Outcome
) -> None:
    """Append the plan's items: an item already there is this very version, appended before."""
    for item, body in plan.rendered:
        written = put_once(
            plan.projection.model, item.key, owner=owner, version=version, body=body,
            committed_at=snapshot.committed_at, projected_at=projected_at, expires_at=item.expires_at,
        )
        outcome.appended += written
        outcome.already_appended += not written


def _tombstone(
    plan: _Plan, key: dict[str, str], owner: str, version: int, projected_at: datetime, gone: bool, repair: bool
) -> tuple[int | None, bool, bool]:
    """Tombstone an item this owner no longer wants. Returns the version of this owner's tombstone
    now stored (None: there is none), whether this call wrote it, and whether the key must stay in
    the manifest (its item is still live and ours).

    When the aggregate is gone, its tombstone must win over every live version of it, whatever
    version the outbox rows at hand carried: a refused tombstone is retried above the live one.
    """
    model = plan.projection.model
    while True:
        if put_tombstone(model, key, owner=owner, version=version, projected_at=projected_at, repair=repair):
            return version, True, False
        item = get_item(model, key)
        if item is None or item.owner != owner:
            # DynamoDB holds nothing of ours here, but the cache may (a version served from Postgres)
            return NEVER_STORED, False, False
        if item.deleted:
            return item.version, False, False
        if not gone:
            return None, False, True  # a newer live version of ours wants it: keep tracking it
        version = item.version + 1


def _apply(
    plan: _Plan, owner: str, snapshot: Snapshot, version: int, projected_at: datetime, outcome: Outcome,
    previous_keys: set[tuple[str, ...]], repair: bool,
) -> set[tuple[str, ...]]:
    """Write the plan's documents and tombstone the previous keys it no longer has; returns the
    keys no longer wanted whose items are still live (they stay in the manifest)."""
    projection, model = plan.projection, plan.projection.model
    listings: set[str] = set()
    # Repair writes every item: it is the way back for a piece the head names that went missing.
    published = projection.published() if projection.published and not repair else set()
    for item, body in plan.rendered:
        if item.content_keyed and key_of(item, model) in published:
            outcome.unchanged += 1
            continue
        written = put_document(
            model, item.key, owner=owner, version=version, body=body,
            committed_at=snapshot.committed_at, projected_at=projected_at, repair=repair,
        )
        outcome.written += written
        outcome.skipped += not written
        if not fits(body):
            _unstorable(projection, item.key, body, outcome, listings)
        elif written or not projection.cache_name:
            _after_write(projection, item.key, version, body, outcome, listings)
        else:
            _after_refusal(projection, item.key, owner, version, body, outcome, listings)
    if projection.assembled and plan.rendered:
        name, whole = projection.assembled([item for item, _ in plan.rendered])
        outcome.documents[name] = whole
        outcome.refreshes.stored.append((name, version, whole))
    live: set[tuple[str, ...]] = set()
    for old_key in sorted(previous_keys - plan.keys):
        key = dict(zip(key_names(model), old_key))
        tombstone_version, written, keep = _tombstone(
            plan, key, owner, version, projected_at, snapshot.state is None, repair
        )
        outcome.tombstoned += written
        outcome.skipped += not written
        if keep:
            live.add(old_key)
        if tombstone_version == NEVER_STORED:  # a cache entry may exist, at a version unknown here
            _forget(projection, key, outcome, listings)
        elif tombstone_version is not None:  # written now or before: the cache learns it either way
            outcome.version = max(outcome.version, tombstone_version)
            _after_write(projection, key, tombstone_version, None, outcome, listings)
    outcome.refreshes.listings |= listings
    return live


def _unstorable(
    projection: Projection, key: dict[str, str], body: bytes, outcome: Outcome, listings: set[str]
) -> None:
    """A document stored as a placeholder: the cache lets go of the older version it may hold (the
    next read asks DynamoDB, finds the placeholder and answers from Postgres), and the caller of
    this projection gets the body to serve, never to cache."""
    outcome.unstorable += 1
    logger.error("projector: %s is %s bytes, over DynamoDB's 400 KB: Postgres serves it", key, f"{len(body):,}")
    if projection.cache_name:
        outcome.documents[projection.cache_name(key)] = body
        outcome.uncached.add(projection.cache_name(key))
    _forget(projection, key, outcome, listings)


def _forget(projection: Projection, key: dict[str, str], outcome: Outcome, listings: set[str]) -> None:
    """Drop whatever the cache holds for a key DynamoDB never held: the next read fills it from
    DynamoDB or Postgres, never below the key's floor."""
    if projection.cache_name:
        outcome.refreshes.forgotten.append(projection.cache_name(key))
    if projection.listing:
        listings.add(projection.listing(key))


def _after_write(
    projection: Projection, key: dict[str, str], version: int, body: bytes | None, outcome: Outcome, listings: set[str]
) -> None:
    if projection.cache_name:
        name = projection.cache_name(key)
        outcome.documents[name] = body
        outcome.refreshes.stored.append((name, version, body))
    if projection.listing:
        listings.add(projection.listing(key))


def _after_refusal(
    projection: Projection, key: dict[str, str], owner: str, version: int, body: bytes, outcome: Outcome,
    listings: set[str],
) -> None:
    """A document DynamoDB refused: the cache learns what DynamoDB holds. Under the lock that is
    mostly this very version (a duplicate delivery, or a projection that died before its cache
    refresh), refreshed all the same; but another aggregate may hold the key with a newer version
    (a deleted product's SKU reused while this projection was slow), and this projection's older
    document must never reach the cache in front of it (not even after Redis restarted, its floors gone)."""
    held = get_item(projection.model, key)
    if held is not None and (held.owner, held.version, held.deleted) == (owner, version, False):
        _after_write(projection, key, version, body, outcome, listings)
    elif held is not None and (held.deleted or held.body is not None):
        name = projection.cache_name(key)  # type: ignore[misc]  # only called for cached documents
        outcome.refreshes.stored.append((name, held.version, None if held.deleted else held.body.encode()))
    else:
        _forget(projection, key, outcome, listings)


def render_documents(aggregate_type: str, aggregate_id: int) -> tuple[int, dict[str, bytes]]:
    """The documents an aggregate's state renders to, without writing them anywhere.

    The read path's last resort when DynamoDB cannot be written: Postgres answers directly. The
    answer is served, never cached, so the cache holds only what DynamoDB holds or held.
    """
    aggregate = AGGREGATES[aggregate_type]
    snapshot = read_snapshot(aggregate, aggregate_id)
    bodies: dict[str, bytes] = {}
    for projection in aggregate.projections:
        items = projection.build(snapshot, timezone.now())
        if projection.assembled and items:
            name, whole = projection.assembled(items)
            bodies[name] = whole
        elif projection.cache_name:
            bodies.update((projection.cache_name(item.key), orjson.dumps(item.body)) for item in items)
    return snapshot.version, bodies
