"""``cache_follow``: keeps this region's Redis current from this region's projection tables'
streams (docs/architecture/regions.md).

In a replica region nothing projects: the documents arrive by replication, and their writes show in
the replica's own streams. In the home region the projector refreshes Redis itself (the fast
path); a follower there is the backstop for a refresh that failed. Either way a follower only
writes Redis, never DynamoDB or Postgres, so it runs in every region.

For each record of a table the reader caches:

- a document (a product, an order; a tombstone stands for an absence) **refreshes the entry
  that is there** through a compare-and-set on the version, and raises the key's version floor as
  the projector does. An absent entry stays absent: the next read fills it from this region's
  DynamoDB, which holds this version already (the record came from its stream). So the region's
  Redis holds what its own customers read, and a hit stays a hit (invalidating every changed key
  would turn a bulk change into a storm of misses). The entry stored is the record's own item:
  never a version this region's DynamoDB has not had, and never lower than what Redis holds.
- a placeholder of a document too large for DynamoDB drops an older entry, as the projector does;
- a listing's item moves that listing to a new generation (its cached pages are not read again);
- a piece or the head of the category tree stores the whole tree read back from this region's
  DynamoDB when it is whole, else drops an older entry (replication orders each item's writes,
  not the pieces against the head);
- a heartbeat (:mod:`hybridsite.heartbeat`) records how far this region's Redis has followed.

The stand-in for global tables stamps each write with a second ``MODIFY`` that adds only
``_rts``, ``_rtok`` and ``_rorg``: such a record changes nothing the reader sees and is skipped.
A ``REMOVE`` is DynamoDB's TTL removing an expired tombstone: nothing to do.

Shards are shared by leases kept in the region's own Redis, with their checkpoints: a replica must
go on following while the home region (and its Postgres) is down. A lease is a Redis key holding
its follower's id with a TTL, renewed every third of ``CACHE_FOLLOW_LEASE_SECONDS``: a SIGKILLed
follower's shards are free within seconds. Each follower takes its share (ready shards / live
followers, rounded up) and gives back the excess; a child shard waits for its parent to finish.
A checkpoint is written after its batch reached Redis, by the lease's holder only (one script). A
crash in between replays the batch, which is harmless: every store is version-conditioned, a
floor only rises, a listing moved once more costs a page fill, the heartbeat keeps its newest.
Iterators are renewed from the checkpoint when they expire; a shard without a checkpoint (new, or
Redis restarted empty) is read from the oldest record the stream keeps. A checkpoint the stream no
longer holds (``TrimmedDataAccessException``: the records in between are lost) drops every cached
document and moves every listing of the region (floors stay, so reads never go backwards), then
reads on from the oldest record.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from django.conf import settings
from pynamodb.models import Model

from hybridsite import cache_keys, heartbeat
from hybridsite.dynamodb import (
    ShardReadPace,
    from_image,
    key_names,
    shard_iterator,
    stream_arn,
    streams_client,
    table_name,
)
from hybridsite.redis_client import client, script

from . import cache, metrics
from .registry import AGGREGATES, DocumentAddress, Projection, category_tree_document
from .tables import CategoryTreeDocument

logger = logging.getLogger(__name__)

STAMP_ATTRIBUTES = frozenset({"_rts", "_rtok", "_rorg"})
"""What the replication stand-in adds to an item in a write of its own (devtools/replication.py)."""

ASSEMBLED: dict[type[Model], Callable[[], DocumentAddress]] = {CategoryTreeDocument: category_tree_document}
"""Where a document stored as several items is read back whole."""


@dataclass(frozen=True)
class Followed:
    model: type[Model]
    projection: Projection | None
    """None: the heartbeat table."""


def followed_tables() -> dict[str, Followed]:
    """Every table the reader caches from (a document, a listing, an assembled document), and the
    heartbeat's."""
    tables = {
        table_name(projection.model): Followed(projection.model, projection)
        for aggregate in AGGREGATES.values()
        for projection in aggregate.projections
        if projection.cache_name or projection.listing or projection.assembled
    }
    tables[table_name(heartbeat.ReplicationHeartbeat)] = Followed(heartbeat.ReplicationHeartbeat, None)
    return tables


# --- records -> Redis ----------------------------------------------------------------------------


@dataclass
class Changes:
    """What a batch of records changes in Redis."""

    stored: list[tuple[str, int, bytes | None]] = field(default_factory=list)
    """Entries refreshed where present (None: an absence), floors raised."""
    dropped: list[tuple[str, int]] = field(default_factory=list)
    """Entries removed where older than the version."""
    listings: set[str] = field(default_factory=set)
    assembled: dict[type[Model], int] = field(default_factory=dict)
    """Documents to read back whole, with the highest version a record of theirs carried."""
    heartbeat: float | None = None
    skipped: int = 0


def _unstamped(image: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in image.items() if name not in STAMP_ATTRIBUTES}


def changes_of(followed: Followed, records: list[dict[str, Any]]) -> Changes:
    changes = Changes()
    for record in records:
        images = record["dynamodb"]
        new, old = images.get("NewImage"), images.get("OldImage")
        if record["eventName"] == "REMOVE" or new is None or (old is not None and _unstamped(old) == _unstamped(new)):
            changes.skipped += 1  # an expired tombstone, or the stand-in's stamp
            continue
        if followed.projection is None:
            written_at = float(new["written_at"]["N"])
            changes.heartbeat = max(changes.heartbeat or 0.0, written_at)
            continue
        projection, item = followed.projection, from_image(followed.model, new)
        key = {name: getattr(item, name) for name in key_names(followed.model)}
        if projection.listing:
            changes.listings.add(projection.listing(key))
        if projection.assembled:
            changes.assembled[followed.model] = max(changes.assembled.get(followed.model, 0), item.version)
        elif projection.cache_name:
            name = projection.cache_name(key)
            if item.deleted:
                changes.stored.append((name, item.version, None))
            elif item.body is None:  # a placeholder: the document is too large for DynamoDB
                changes.dropped.append((name, item.version))
            else:
                changes.stored.append((name, item.version, item.body.encode()))
    for model, version in changes.assembled.items():
        address = ASSEMBLED[model]()
        whole = address.stored()  # strongly consistent: this region's DynamoDB as it is now
        if whole is not None and not whole.deleted:
            changes.stored.append((address.name, whole.version, whole.body))
        else:
            changes.dropped.append((address.name, version))
    return changes


# KEYS: entry, version floor, fill lease. ARGV: version, payload ('': drop an older entry only),
# entry ttl ms, floor ttl ms. As the projector's store (projections/cache.py), except that an absent
# entry is not created: the floor rises, a running fill's lease is revoked, and an entry is replaced
# only by a newer version (an entry left below the floor is removed). As the projector, a follower
# starts no floor (only a reader does, after consulting the durable floor). Returns 1 when it changed.
_FOLLOW = """
local version = tonumber(ARGV[1])
local held = redis.call('GET', KEYS[2])
if not held then
  redis.call('SET', KEYS[3], 'revoked', 'XX', 'KEEPTTL')
  return redis.call('DEL', KEYS[1])
end
local floor = tonumber(held)
local below = version < floor
if ARGV[2] ~= '' then
  if floor < version then floor = version end
  redis.call('SET', KEYS[2], string.format('%d', floor), 'PX', ARGV[4])
end
redis.call('SET', KEYS[3], 'revoked', 'XX', 'KEEPTTL')
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local v = tonumber(string.match(current, '^(%d+)'))
if ARGV[2] == '' then
  if v and v < version then redis.call('DEL', KEYS[1]) return 1 end
  return 0
end
if below or (v and v >= version) then
  if v and v < floor then redis.call('DEL', KEYS[1]) return 1 end
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: the newest heartbeat followed. ARGV: a heartbeat. It only moves forward.
_HEARTBEAT = """
local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
if seen < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


def apply(changes: Changes) -> int:
    """Send a batch's changes to Redis in one pipelined round trip; raises when any failed (the
    batch is read again from its checkpoint). Returns how many entries changed."""
    redis = client()
    pipe = redis.pipeline(transaction=False)
    follow = script(redis, _FOLLOW)
    floor_ttl = settings.CACHE_FLOOR_TTL_SECONDS * 1000
    for name, version, body in changes.stored:
        payload = cache.encode(version, 404 if body is None else 200, body or b"")
        follow(
            keys=[cache_keys.document(name), cache_keys.floor(name), cache_keys.fill_lock(name)],
            args=[version, payload, cache.ttl_ms(negative=body is None), floor_ttl], client=pipe,
        )
    for name, version in changes.dropped:
        follow(
            keys=[cache_keys.document(name), cache_keys.floor(name), cache_keys.fill_lock(name)],
            args=[version, "", 0, floor_ttl], client=pipe,
        )
    for listing in sorted(changes.listings):
        pipe.incr(cache_keys.listing_generation(listing))
    if changes.heartbeat is not None:
        script(redis, _HEARTBEAT)(keys=[cache_keys.follow_heartbeat()], args=[repr(changes.heartbeat)], client=pipe)
    answers = pipe.execute() if len(pipe) else []
    return sum(int(answer) for answer in answers[: len(changes.stored) + len(changes.dropped)])


def forget_everything() -> int:
    """Drop every cached document of this region and move every listing to a new generation
    (floors stay): after records were lost, no entry is known to be current. Returns the count."""
    redis = client()
    count = 0
    for pattern, act in ((cache_keys.document("*"), "delete"), (cache_keys.listing_generation("*"), "incr")):
        batch: list[bytes] = []
        for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                count += _act(act, batch)
                batch = []
        count += _act(act, batch)
    return count


def _act(act: str, keys: list[bytes]) -> int:
    if not keys:
        return 0
    redis = client()
    if act == "delete":
        return int(redis.delete(*keys))
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.incr(key)
    pipe.execute()
    return len(keys)


# --- shards, leases and checkpoints in the region's Redis ------------------------------------------


@dataclass(frozen=True)
class Shard:
    """A shard of a followed table's stream as its hash field holds it."""

    stream_arn: str
    shard_id: str
    table: str
    parent: str = ""
    checkpoint: str = ""
    finished: bool = False

    @property
    def name(self) -> str:
        return shard_name(self.stream_arn, self.shard_id)

    def encoded(self) -> str:
        return orjson.dumps({
            "table": self.table, "parent": self.parent, "checkpoint": self.checkpoint, "finished": self.finished,
        }).decode()

    @classmethod
    def decoded(cls, name: str, raw: bytes | str) -> Shard:
        stream, _, shard_id = name.rpartition("|")
        state = orjson.loads(raw)
        return cls(stream, shard_id, state["table"], state["parent"], state["checkpoint"], state["finished"])


def shard_name(stream: str, shard_id: str) -> str:
    return f"{stream}|{shard_id}"


def shards() -> dict[str, Shard]:
    raw = cast("dict[bytes, bytes]", client().hgetall(cache_keys.follow_shards()))
    return {name.decode(): Shard.decoded(name.decode(), value) for name, value in raw.items()}


def ready(known: dict[str, Shard], streams: set[str] | None = None) -> list[Shard]:
    """Unfinished shards (of the current streams, when known) whose parent is finished or unknown
    (trimmed from the stream long ago), in a stable order."""
    found = []
    for shard in known.values():
        if shard.finished or (streams is not None and shard.stream_arn not in streams):
            continue
        parent = known.get(shard_name(shard.stream_arn, shard.parent)) if shard.parent else None
        if parent is None or parent.finished:
            found.append(shard)
    return sorted(found, key=lambda shard: shard.name)


# KEYS: the shard's lease, the shards hash. ARGV: the follower, the shard's field, its new state,
# lease ms. Only the lease's holder writes the checkpoint; writing it renews the lease.
_CHECKPOINT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""
# KEYS: a lease. ARGV: the follower, lease ms ('': let go of it).
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


@dataclass(frozen=True)
class FollowState:
    """What /metrics shows of the followers of this region."""

    processes: int
    shards_unowned: int
    heartbeat: float | None


def follow_state(*, now: float | None = None) -> FollowState:
    """Live followers, ready shards no follower holds, and the newest heartbeat followed."""
    redis = client()
    now = time.time() if now is None else now
    waiting = ready(shards())
    pipe = redis.pipeline(transaction=False)
    pipe.zcount(cache_keys.follow_processes(), now, "+inf")
    pipe.get(cache_keys.follow_heartbeat())
    for shard in waiting:
        pipe.exists(cache_keys.follow_lease(shard.name))
    live, seen, *held = pipe.execute()
    return FollowState(
        processes=int(live), shards_unowned=sum(1 for h in held if not h),
        heartbeat=None if seen is None else float(seen),
    )


def follower_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Follower:
    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner or follower_id()
        self.client = streams_client()
        self.tables = followed_tables()
        self.streams: dict[str, str] = {}  # table -> its current stream's ARN
        self.held: set[str] = set()
        self.iterators: dict[str, str | None] = {}
        self.stopping = threading.Event()
        self.pace = ShardReadPace(self.stopping.wait)
        self.next_discovery = self.next_heartbeat = self.next_lag_check = 0.0

    @property
    def lease_ms(self) -> int:
        return int(settings.CACHE_FOLLOW_LEASE_SECONDS * 1000)

    # --- discovery ---------------------------------------------------------------------------

    def discover(self) -> int:
        """Record every shard of every followed table's current stream (HSETNX: a checkpoint is
        never overwritten), and drop the finished shards the stream no longer lists and those of
        a table's former stream. Returns the count of listed shards."""
        redis = client()
        known = shards()
        count = 0
        for name, followed in self.tables.items():
            try:
                arn = stream_arn(followed.model)
            except Exception as exc:  # noqa: BLE001  (a table not created yet: the others are followed)
                logger.warning("cache_follow: table %s not described: %s", name, exc)
                continue
            if arn is None:
                logger.warning("cache_follow: table %s has no stream (run projections_setup)", name)
                continue
            self.streams[name] = arn
            listed: set[str] = set()
            start: dict[str, str] = {}
            while True:
                description = self.client.describe_stream(StreamArn=arn, **start)["StreamDescription"]
                for raw in description["Shards"]:
                    shard = Shard(arn, raw["ShardId"], name, raw.get("ParentShardId", ""))
                    listed.add(shard.name)
                    redis.hsetnx(cache_keys.follow_shards(), shard.name, shard.encoded())
                    count += 1
                last = description.get("LastEvaluatedShardId")
                if not last:
                    break
                start = {"ExclusiveStartShardId": last}
            gone = [
                shard.name for shard in known.values()
                if shard.table == name and (shard.stream_arn != arn or (shard.finished and shard.name not in listed))
            ]
            if gone:
                redis.hdel(cache_keys.follow_shards(), *gone)
        return count

    # --- leases ------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Say this follower is alive, renew its leases, take its share of the free shards and
        give back what is above its share."""
        redis = client()
        now = time.time()
        pipe = redis.pipeline(transaction=False)
        pipe.zadd(cache_keys.follow_processes(), {self.owner: now + settings.CACHE_FOLLOW_LEASE_SECONDS})
        pipe.zremrangebyscore(cache_keys.follow_processes(), "-inf", now)
        pipe.zcard(cache_keys.follow_processes())
        live = pipe.execute()[2] or 1
        renew = script(redis, _RENEW)
        for name in sorted(self.held):
            if not renew(keys=[cache_keys.follow_lease(name)], args=[self.owner, self.lease_ms]):
                self._lost(name)
        waiting = ready(shards(), set(self.streams.values()))
        share = math.ceil(len(waiting) / live)
        mine = [shard.name for shard in waiting if shard.name in self.held]
        for name in mine[share:]:
            self.release(name)
        wanted = share - len(mine)
        for shard in waiting:
            if wanted <= 0:
                break
            if shard.name in self.held:
                continue
            if redis.set(cache_keys.follow_lease(shard.name), self.owner, nx=True, px=self.lease_ms):
                logger.info("cache_follow: %s took shard %s of %s", self.owner, shard.shard_id, shard.table)
                self.held.add(shard.name)
                self.iterators.pop(shard.name, None)
                wanted -= 1

    def _lost(self, name: str) -> None:
        logger.info("cache_follow: %s lost shard %s", self.owner, name)
        self.held.discard(name)
        self.iterators.pop(name, None)

    def release(self, name: str) -> None:
        script(client(), _RENEW)(keys=[cache_keys.follow_lease(name)], args=[self.owner, ""])
        self.held.discard(name)
        self.iterators.pop(name, None)
        logger.info("cache_follow: %s gave back shard %s", self.owner, name)

    def release_all(self) -> None:
        for name in sorted(self.held):
            self.release(name)
        client().zrem(cache_keys.follow_processes(), self.owner)

    def checkpoint(self, shard: Shard, checkpoint: str, finished: bool) -> bool:
        """Store the shard's checkpoint, if this follower still holds it."""
        state = Shard(shard.stream_arn, shard.shard_id, shard.table, shard.parent, checkpoint, finished)
        return bool(script(client(), _CHECKPOINT)(
            keys=[cache_keys.follow_lease(shard.name), cache_keys.follow_shards()],
            args=[self.owner, shard.name, state.encoded(), self.lease_ms],
        ))

    # --- reading -----------------------------------------------------------------------------

    def _iterator(self, shard: Shard) -> str | None:
        if shard.name in self.iterators:
            return self.iterators[shard.name]
        self.iterators[shard.name] = shard_iterator(
            self.client, shard.stream_arn, shard.shard_id, shard.checkpoint, lambda reason: self.trimmed(shard, reason)
        )
        return self.iterators[shard.name]

    def trimmed(self, shard: Shard, reason: str) -> None:
        """The stream no longer holds records after the shard's checkpoint: forget what Redis
        caches, then read on from the oldest record."""
        forgotten = forget_everything()
        metrics.incr("cache_follow.trimmed")
        logger.warning(
            "cache_follow: %s of %s trimmed past its checkpoint (%s): %d cached keys dropped or moved",
            shard.shard_id, shard.table, reason, forgotten,
        )
        self.checkpoint(shard, "", False)

    def read(self, shard: Shard) -> int:
        """One GetRecords on the shard, its changes sent to Redis, then its checkpoint. Returns
        the records read."""
        iterator = self._iterator(shard)
        if iterator is None:
            self.checkpoint(shard, shard.checkpoint, True)
            self.held.discard(shard.name)
            return 0
        try:
            self.pace.before_read(shard.name)
            answer = self.client.get_records(ShardIterator=iterator, Limit=settings.WRITEBACK_BATCH_SIZE)
        except self.client.exceptions.ExpiredIteratorException:
            self.iterators.pop(shard.name, None)  # renewed from the checkpoint on the next read
            return 0
        except self.client.exceptions.TrimmedDataAccessException as exc:
            self.iterators.pop(shard.name, None)
            if shard.checkpoint:  # from the oldest record on (no checkpoint), nothing was skipped
                self.trimmed(shard, str(exc))
            return 0
        records, following = answer["Records"], answer.get("NextShardIterator")
        if not records and following is not None:
            self.iterators[shard.name] = following
            return 0
        changes = changes_of(self.tables[shard.table], records)
        refreshed = apply(changes)
        metrics.incr_many({
            "cache_follow.records": len(records), "cache_follow.refreshed": refreshed,
            "cache_follow.skipped": changes.skipped,
        })
        last = records[-1]["dynamodb"]["SequenceNumber"] if records else shard.checkpoint
        if not self.checkpoint(shard, last, following is None):
            self._lost(shard.name)  # another follower reads on from the last checkpoint: a replay
            return len(records)
        if following is None:
            logger.info("cache_follow: shard %s of %s finished", shard.shard_id, shard.table)
            self.held.discard(shard.name)
            self.iterators.pop(shard.name, None)
        else:
            self.iterators[shard.name] = following
        return len(records)

    def step(self) -> int:
        """Discovery, lease heartbeat and lag check when due, then one read of each held shard."""
        now = time.monotonic()
        if now >= self.next_discovery:
            self.discover()
            self.next_discovery = now + settings.WRITEBACK_DISCOVERY_SECONDS
        if now >= self.next_heartbeat:
            self.heartbeat()
            self.next_heartbeat = now + settings.CACHE_FOLLOW_LEASE_SECONDS / 3
        if now >= self.next_lag_check:
            self.next_lag_check = now + settings.REPLICATION_HEARTBEAT_SECONDS
            try:
                heartbeat.lag_check()
            except Exception as exc:  # noqa: BLE001  (a measurement never stops the following)
                logger.warning("cache_follow: replication lag not checked: %s", exc)
        read = 0
        known = shards()
        for name in sorted(self.held):
            shard = known.get(name)
            if shard is None or shard.finished:
                self.held.discard(name)
                continue
            read += self.read(shard)
        return read

    def run(self) -> None:
        logger.info("cache_follow: follower %s started in %s", self.owner, settings.HYBRIDSITE_REGION)
        failures = 0
        try:
            while not self.stopping.is_set():
                try:
                    read = self.step()
                    failures = 0
                except Exception as exc:  # noqa: BLE001  (a dependency down or throttling: wait and go on)
                    logger.warning("cache_follow: %s: %s", type(exc).__name__, exc)
                    self.iterators.clear()
                    failures += 1
                    # Each failure in a row doubles the wait (jittered); records are read again
                    # from the checkpoint, harmlessly.
                    ceiling = min(settings.DYNAMODB_THROTTLE_CAP_SECONDS, settings.WRITEBACK_IDLE_SECONDS * 2**failures)
                    self.stopping.wait(random.uniform(ceiling / 2, ceiling))
                    continue
                if not read:
                    self.stopping.wait(settings.WRITEBACK_IDLE_SECONDS)
        finally:
            try:
                self.release_all()
            except Exception as exc:  # noqa: BLE001  (stopping anyway: the leases expire)
                logger.warning("cache_follow: leases not released (%s); they expire", exc)
            logger.info("cache_follow: follower %s stopped", self.owner)
