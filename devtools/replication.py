"""A stand-in for DynamoDB global tables (multi-Region eventual consistency, MREC) between two
DynamoDB Local processes: a test harness for Hybridsite's behaviour under replication, not shipped.
On AWS the global table does this; docs/architecture/regions.md says where the two differ.

For every table of a prefix present on both sides, each side's stream (``NEW_AND_OLD_IMAGES``,
enabled where a table has none) is read and each change applied to the other side, asynchronously:

- **Write timestamps.** A side's own write is stamped in place as soon as its stream record is read
  (``_rts``: nanoseconds of this process's clock, strictly increasing; ``_rtok``: a token unique to
  the stamp; ``_rorg``: the side), as DynamoDB stamps ``aws:rep:updatetime``, but with a second,
  conditional write. Stamps go on while replication is paused: they date the writes, not their
  replication. A side's own delete is dated when its record is read.
- **Per-item order.** Each item's records are handled, and its changes applied, in the order of its
  side's stream, by one of :data:`LANES` threads (different items' side by side).
- **Last writer wins.** A copy is applied only over an older stamp (``attribute_not_exists(key) OR
  _rts < :ts``), a delete only over an older stamp: a change older than the target's copy is
  dropped. An unstamped item on the target is a local write whose stamp is still to come, so newer.
  A copy that lands on an item the target had just deleted, with an older stamp than that delete
  (the place of AWS's tombstones), is deleted again when the target's stream shows it.
- **No echo.** A copy keeps the stamp, token and origin of the side that wrote it: the target's
  reader sees a token it did not make and skips the record. A replicated delete is registered,
  with the token of the item it removes, before it is sent, and the target's reader skips its record.
- **Faults.** ``delay_seconds`` (each change applied no sooner than its stamp plus the delay),
  :meth:`Replicator.pause` and :meth:`Replicator.resume` (changes wait, in order); a side that does
  not answer is retried, in order, until it does.
- **Lag.** Seconds from a change's stamp to its apply on the other side: :meth:`Replicator.lag`.

``python -m devtools.replication --prefix hybridsite- eu-west-1=http://127.0.0.1:8000
us-east-1=http://127.0.0.1:8001`` runs it until interrupted, printing the lag when it changed;
``--fill`` first copies the first side's items to the second (:func:`fill`), as AWS fills a new replica.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from statistics import quantiles
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from devtools.embedded import LOCAL_AWS_CREDENTIALS

logger = logging.getLogger("devtools.replication")

STAMP, TOKEN, ORIGIN = "_rts", "_rtok", "_rorg"
"""The attributes the stand-in keeps on every replicated item (as global tables keep aws:rep:*)."""
NAMES = {"#ts": STAMP, "#tok": TOKEN, "#org": ORIGIN}
TRANSIENT = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
DISCOVERY_SECONDS = 1.0
RETRY_SECONDS = 0.2
LANES = 8
"""Threads per side handling its records, and per direction applying changes: each item always in
the same one, so that its changes keep their order (one thread for all kept up with 50 a second)."""


def clients(endpoint: str, region: str) -> tuple[Any, Any]:
    """The DynamoDB and DynamoDB Streams clients of one side."""
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}, max_pool_connections=64)
    credentials = {
        "aws_access_key_id": LOCAL_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": LOCAL_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
    dynamodb, streams = (
        boto3.client(service, endpoint_url=endpoint, region_name=region, config=config, **credentials)
        for service in ("dynamodb", "dynamodbstreams")
    )
    return dynamodb, streams


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


@dataclass
class Change:
    """One change read from a side's stream, to apply to the other side."""

    table: str
    keys: dict[str, Any]
    image: dict[str, Any] | None  # None: a delete
    stamp: int

    @property
    def item(self) -> tuple[str, str]:
        return _item(self.table, self.keys)


def _item(table: str, keys: dict[str, Any]) -> tuple[str, str]:
    """An item's identity: its table and its key."""
    return table, repr(sorted(keys.items()))


@dataclass
class Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    last_sequence: str | None = None
    done: bool = False


@dataclass
class Stream:
    """A table's stream on one side, and where its reader stands in each shard."""

    arn: str
    shards: dict[str, Shard] = field(default_factory=dict)


@dataclass
class Counts:
    """What one side's reader and the applier into that side did."""

    stamped: int = 0  # own writes stamped in place
    deletes_read: int = 0  # own deletes, dated and sent
    echoes_skipped: int = 0  # records of writes the stand-in made here
    applied: int = 0  # changes from the other side applied here
    dropped: int = 0  # changes from the other side older than the copy here
    repaired: int = 0  # copies deleted again: they landed after a newer delete here


class Side:
    """One DynamoDB endpoint: its clients, its tables' streams, what was done there."""

    def __init__(self, name: str, endpoint: str) -> None:
        self.name = name
        self.dynamodb, self.streams = clients(endpoint, name)
        self.tables: dict[str, Stream] = {}
        self.counts = Counts()
        self.passes = 0  # full passes over every shard that read nothing
        self.deleted_at: dict[tuple[str, str], int] = {}  # the stamp of each item's last own delete here
        self.expected_removals: set[tuple[str, str, str]] = set()  # (table, item, token) of replicated deletes


class Replicator:
    """Replicates every table named ``prefix...`` between two DynamoDB endpoints until stopped.

    ``sides`` maps each side's region name to its endpoint; ``tables``, when given, names the
    prefix's tables to replicate (others of the prefix are left alone). :meth:`start` returns once
    both sides' streams are read from their current end: a write made after it is replicated."""

    def __init__(
        self, sides: dict[str, str], *, prefix: str, delay_seconds: float = 0.0, poll_seconds: float = 0.05,
        tables: list[str] | None = None,
    ) -> None:
        if len(sides) != 2:
            raise ValueError("the stand-in replicates between two sides")
        self.prefix = prefix
        self.only = None if tables is None else set(tables)
        self.delay_seconds = delay_seconds
        self.poll_seconds = poll_seconds
        self.sides = [Side(name, endpoint) for name, endpoint in sides.items()]
        self.keys: dict[str, list[str]] = {}
        self._records: dict[str, list[deque[tuple[str, dict[str, Any]]]]] = {  # by the side they were read on
            side.name: [deque() for _ in range(LANES)] for side in self.sides
        }
        self._changes: dict[str, list[deque[Change]]] = {  # by target
            side.name: [deque() for _ in range(LANES)] for side in self.sides
        }
        self._busy: set[tuple[str, str, int]] = set()
        self._lags: dict[str, deque[float]] = {side.name: deque(maxlen=100_000) for side in self.sides}  # by target
        self._lock = threading.Condition()
        self._paused = False
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_stamp = 0
        self.activity = 0  # records handled and changes applied, both sides

    # --- control ---------------------------------------------------------------------------------

    def start(self) -> Replicator:
        tables = self._tables()
        for side in self.sides:
            for table in tables:
                side.tables[table] = self._stream(side, table, from_latest=True)
        for side, other in (self.sides, self.sides[::-1]):
            self._threads.append(threading.Thread(target=self._read, args=(side,), daemon=True))
            for lane in range(LANES):
                self._threads.append(threading.Thread(target=self._lane, args=(
                    self._records[side.name][lane], (side.name, "handle", lane),
                    lambda record, side=side, other=other: self._handle(side, other, *record), False,
                ), daemon=True))
                self._threads.append(threading.Thread(target=self._lane, args=(
                    self._changes[other.name][lane], (other.name, "apply", lane),
                    lambda change, other=other: self._apply(other, change), True,
                ), daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> Replicator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pause(self) -> None:
        """Stop applying: changes wait in order (own writes are still stamped, as they are made)."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._lock.notify_all()

    def side(self, name: str) -> Side:
        return next(side for side in self.sides if side.name == name)

    def settle(self, timeout: float = 60.0) -> None:
        """Return once both streams are read to their end and (unless paused) every change is
        applied, with nothing new between two checks; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            activity, passes = self.activity, [side.passes for side in self.sides]
            while not self._quiet(passes):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replication did not settle in {timeout}s: {self.lag()}")
                time.sleep(self.poll_seconds)
            if self.activity == activity:
                return

    def _quiet(self, passes: list[int]) -> bool:
        read = all(side.passes >= seen + 2 for side, seen in zip(self.sides, passes))
        with self._lock:
            handled = not self._busy and not any(map(any, self._records.values()))
            applied = self._paused or not any(map(any, self._changes.values()))
        return read and handled and applied

    def lag(self) -> dict[str, dict[str, float]]:
        """Per target side: changes applied, and the least, p50, p95 and largest seconds from a
        change's stamp to its apply there."""
        figures: dict[str, dict[str, float]] = {}
        for target, lags in self._lags.items():
            values = sorted(lags)
            if not values:
                figures[target] = {"count": 0}
                continue
            cuts = quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
            figures[target] = {
                "count": len(values), "min": values[0], "p50": cuts[49], "p95": cuts[94], "max": values[-1],
            }
        return figures

    # --- tables and streams ----------------------------------------------------------------------

    def _tables(self) -> list[str]:
        """The prefix's tables, which both sides must have (create them in each region)."""
        names = []
        for side in self.sides:
            found: set[str] = set()
            for page in side.dynamodb.get_paginator("list_tables").paginate():
                found.update(name for name in page["TableNames"] if name.startswith(self.prefix))
            names.append(found if self.only is None else found & self.only)
        if names[0] != names[1]:
            raise ValueError(
                f"tables {sorted(names[0] ^ names[1])} exist on one side only: create every table on both"
            )
        for table in sorted(names[0]):
            schema = self.sides[0].dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            self.keys[table] = [key["AttributeName"] for key in sorted(schema, key=lambda k: k["KeyType"])]
        return sorted(names[0])

    def _stream(self, side: Side, table: str, *, from_latest: bool) -> Stream:
        """The table's stream on this side (enabled with both images where it is off), its shards
        found; with ``from_latest`` its open shards are read from their current end."""
        description = side.dynamodb.describe_table(TableName=table)["Table"]
        spec = description.get("StreamSpecification") or {}
        if not spec.get("StreamEnabled"):
            side.dynamodb.update_table(
                TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            )
            description = side.dynamodb.describe_table(TableName=table)["Table"]
        elif spec.get("StreamViewType") != "NEW_AND_OLD_IMAGES":
            raise ValueError(
                f"{table} on {side.name} streams {spec.get('StreamViewType')}: replication needs both images"
            )
        stream = Stream(arn=description["LatestStreamArn"])
        self._discover(side, stream, from_latest=from_latest)
        return stream

    def _discover(self, side: Side, stream: Stream, *, from_latest: bool = False) -> None:
        """Add the stream's new shards. At start, closed shards are history and open ones are read
        from their end; a shard that appears later is read from its start."""
        arguments: dict[str, Any] = {"StreamArn": stream.arn}
        while True:
            description = side.streams.describe_stream(**arguments)["StreamDescription"]
            for found in description["Shards"]:
                shard_id = found["ShardId"]
                if shard_id in stream.shards:
                    continue
                closed = "EndingSequenceNumber" in found["SequenceNumberRange"]
                shard = Shard(shard_id, found.get("ParentShardId"), done=from_latest and closed)
                if not shard.done:
                    shard.iterator = side.streams.get_shard_iterator(
                        StreamArn=stream.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON",
                    )["ShardIterator"]
                    if from_latest:
                        self._skip_to_end(side, stream, shard)
                stream.shards[shard_id] = shard
            if not description.get("LastEvaluatedShardId"):
                return
            arguments["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]

    def _skip_to_end(self, side: Side, stream: Stream, shard: Shard) -> None:
        """Read an open shard's records to its current end without handling them (a ``LATEST``
        iterator is not used: DynamoDB Local answers TrimmedDataAccessException to one)."""
        while shard.iterator:
            page = self._page(side, stream, shard)
            if page is None:
                return
            if page["Records"]:
                shard.last_sequence = page["Records"][-1]["dynamodb"]["SequenceNumber"]
            shard.iterator = page.get("NextShardIterator")
            if not page["Records"]:
                return
        shard.done = True

    def _page(self, side: Side, stream: Stream, shard: Shard) -> dict[str, Any] | None:
        """The shard's next records; None when its iterator had to be taken again. DynamoDB Local
        answers TrimmedDataAccessException to an iterator taken on a shard that held no record yet
        (on a stream created with its table, or enabled on a table written before): such a shard
        is read from its start again until it has records, all of them written after the reader
        began."""
        try:
            return side.streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        except side.streams.exceptions.ExpiredIteratorException:
            pass
        except side.streams.exceptions.TrimmedDataAccessException:
            if shard.last_sequence:
                raise
        shard.iterator = side.streams.get_shard_iterator(
            StreamArn=stream.arn, ShardId=shard.shard_id,
            **({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.last_sequence}
               if shard.last_sequence else {"ShardIteratorType": "TRIM_HORIZON"}),
        )["ShardIterator"]
        return None

    def _ready(self, stream: Stream) -> Iterator[Shard]:
        """Shards to read, each after its parent is read to its end (per-item order across splits)."""
        for shard in list(stream.shards.values()):
            parent = stream.shards.get(shard.parent_id or "")
            if not shard.done and (parent is None or parent.done):
                yield shard

    # --- reading a side's stream -----------------------------------------------------------------

    def _read(self, side: Side) -> None:
        next_discovery = time.monotonic() + DISCOVERY_SECONDS
        while not self._stopped.is_set():
            try:
                found = sum(self._read_table(side, table) for table in side.tables)
                if time.monotonic() >= next_discovery:
                    for stream in side.tables.values():
                        self._discover(side, stream)
                    next_discovery = time.monotonic() + DISCOVERY_SECONDS
            except TRANSIENT as exc:
                logger.warning("replication: reading %s: %s; retrying", side.name, exc)
                self._stopped.wait(RETRY_SECONDS)
                continue
            if not found:
                side.passes += 1
                self._stopped.wait(self.poll_seconds)

    def _read_table(self, side: Side, table: str) -> int:
        stream = side.tables[table]
        found = 0
        for shard in self._ready(stream):
            page = self._page(side, stream, shard)
            if page is None:
                continue
            with self._lock:
                for record in page["Records"]:
                    lane = hash(_item(table, record["dynamodb"]["Keys"])) % LANES
                    self._records[side.name][lane].append((table, record))
                    shard.last_sequence = record["dynamodb"]["SequenceNumber"]
                    found += 1
                self._lock.notify_all()
            shard.iterator = page.get("NextShardIterator")
            shard.done = shard.iterator is None
        return found

    def _handle(self, side: Side, other: Side, table: str, record: dict[str, Any]) -> None:
        data = record["dynamodb"]
        keys, new, old = data["Keys"], data.get("NewImage"), data.get("OldImage") or {}
        if new is None:
            token = old.get(TOKEN, {}).get("S", "")
            change = Change(table, keys, None, 0)
            if (table, change.item[1], token) in side.expected_removals:
                side.expected_removals.discard((table, change.item[1], token))
                self._count(side, "echoes_skipped")
                return
            change.stamp = self._stamp()
            side.deleted_at[change.item] = change.stamp
            self._count(side, "deletes_read")
            self._send(other, change)
            return
        token = new.get(TOKEN)
        if token is None or token == old.get(TOKEN):
            self._stamp_in_place(side, table, keys, token)
            return
        change = Change(table, keys, new, int(new[STAMP]["N"]))
        if new[ORIGIN]["S"] == side.name:
            self._send(other, change)  # a stamp of this side's own write
            return
        self._count(side, "echoes_skipped")
        if side.deleted_at.get(change.item, 0) > change.stamp:
            self._delete_again(side, change, token["S"])

    def _count(self, side: Side, what: str) -> None:
        with self._lock:
            setattr(side.counts, what, getattr(side.counts, what) + 1)

    def _stamp(self) -> int:
        with self._lock:
            self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
            return self._last_stamp

    def _stamp_in_place(self, side: Side, table: str, keys: dict[str, Any], token: dict[str, str] | None) -> None:
        """Date a write of this side: its stamp write is what its stream then shows for replication.
        Refused when the item is gone or another stamp came first (that one covers this write)."""
        values = {":ts": {"N": str(self._stamp())}, ":tok": {"S": uuid.uuid4().hex}, ":org": {"S": side.name}}
        condition = "attribute_exists(#k) AND " + ("attribute_not_exists(#tok)" if token is None else "#tok = :old")
        if token is not None:
            values[":old"] = token
        try:
            side.dynamodb.update_item(
                TableName=table, Key=keys, UpdateExpression="SET #ts = :ts, #tok = :tok, #org = :org",
                ConditionExpression=condition, ExpressionAttributeNames={**NAMES, "#k": self.keys[table][0]},
                ExpressionAttributeValues=values,
            )
            self._count(side, "stamped")
        except side.dynamodb.exceptions.ConditionalCheckFailedException:
            pass

    def _delete_again(self, side: Side, change: Change, token: str) -> None:
        """A copy landed on an item this side had deleted later than the copy's stamp."""
        side.expected_removals.add((change.table, change.item[1], token))
        try:
            side.dynamodb.delete_item(
                TableName=change.table, Key=change.keys, ConditionExpression="#tok = :tok",
                ExpressionAttributeNames={"#tok": TOKEN}, ExpressionAttributeValues={":tok": {"S": token}},
            )
            self._count(side, "repaired")
        except side.dynamodb.exceptions.ConditionalCheckFailedException:
            side.expected_removals.discard((change.table, change.item[1], token))

    # --- applying to the other side --------------------------------------------------------------

    def _send(self, target: Side, change: Change) -> None:
        with self._lock:
            self._changes[target.name][hash(change.item) % LANES].append(change)
            self._lock.notify_all()

    def _lane(
        self, queue: deque[Any], busy: tuple[str, str, int], work: Callable[[Any], float | None], pausable: bool,
    ) -> None:
        """Do ``work`` for each entry of ``queue`` in order; an entry whose work fails for a moment
        (an endpoint that does not answer) is tried again, and one whose work asks to wait (the
        delay) is looked at again after that time."""
        while not self._stopped.is_set():
            with self._lock:
                while not self._stopped.is_set() and ((pausable and self._paused) or not queue):
                    self._lock.wait()
                if self._stopped.is_set():
                    return
                entry = queue[0]
                self._busy.add(busy)
            try:
                wait = work(entry)
            except TRANSIENT as exc:
                logger.warning("replication: %s on %s: %s; retrying", busy[1], busy[0], exc)
                wait = RETRY_SECONDS
            finally:
                with self._lock:
                    self._busy.discard(busy)
            if wait:
                self._stopped.wait(wait)
                continue
            with self._lock:
                queue.popleft()
                self.activity += 1

    def _apply(self, target: Side, change: Change) -> float:
        """Apply one change unless the target's copy is newer (then it is dropped); the seconds to
        wait instead while its delay runs."""
        wait = change.stamp / 1e9 + self.delay_seconds - time.time()
        if wait > 0:
            return wait
        apply = self._apply_put if change.image is not None else self._apply_delete
        self._count(target, "applied" if apply(target, change) else "dropped")
        self._lags[target.name].append(time.time() - change.stamp / 1e9)
        return 0.0

    def _apply_put(self, target: Side, change: Change) -> bool:
        try:
            target.dynamodb.put_item(
                TableName=change.table, Item=change.image, ConditionExpression="attribute_not_exists(#k) OR #ts < :ts",
                ExpressionAttributeNames={"#k": self.keys[change.table][0], "#ts": STAMP},
                ExpressionAttributeValues={":ts": {"N": str(change.stamp)}},
            )
        except target.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _apply_delete(self, target: Side, change: Change) -> bool:
        """The target's copy is read first: its removal is registered, with its token, before it
        is sent, so that the target's reader knows the record for its own."""
        current = target.dynamodb.get_item(TableName=change.table, Key=change.keys, ConsistentRead=True).get("Item")
        token = (current or {}).get(TOKEN, {}).get("S")
        if token is None:  # nothing there, or a write of the target's own still to be stamped: newer
            return False
        removal = (change.table, change.item[1], token)
        target.expected_removals.add(removal)  # kept when the answer is lost: the delete may have been made
        try:
            target.dynamodb.delete_item(
                TableName=change.table, Key=change.keys, ConditionExpression="#tok = :tok AND #ts < :ts",
                ExpressionAttributeNames={"#tok": TOKEN, "#ts": STAMP},
                ExpressionAttributeValues={":ts": {"N": str(change.stamp)}, ":tok": {"S": token}},
            )
        except target.dynamodb.exceptions.ConditionalCheckFailedException:
            target.expected_removals.discard(removal)
            return False
        return True


FILL_SEGMENTS = 4
"""Parallel scan segments per table when a side is filled (DynamoDB Local answers them side by side)."""
BATCH = 25  # BatchWriteItem's limit


def _stamped(item: dict[str, Any], filled: dict[str, Any]) -> dict[str, Any]:
    """An item as a fill copies it: a stamp of its own, or the fill's (with a token of its own)."""
    return item if STAMP in item else {**item, **filled, TOKEN: {"S": uuid.uuid4().hex}}


def fill(source: str, target: str, *, prefix: str, only: list[str] | None = None) -> dict[str, int]:
    """Copy every item of the prefix's tables (those named in ``only``, when given) from the
    endpoint ``source`` to ``target``, which has the same tables, as AWS fills a replica it adds to
    a global table: the stand-in replicates only what is written while it runs. Items are copied as
    they are (stamps included) and replace the target's copies; an item never stamped (written
    before any stand-in ran) is given the fill's own stamp in its copy, older than any the stand-in
    gives later, so that its next change replicates (a copy without a stamp reads as the target's own
    write still to be stamped, which no change replaces). Returns the items copied, per table."""
    filled = {STAMP: {"N": str(time.time_ns())}, ORIGIN: {"S": "fill"}}
    source_dynamodb, _ = clients(source, "source")
    target_dynamodb, _ = clients(target, "target")
    tables = sorted(
        name for page in source_dynamodb.get_paginator("list_tables").paginate()
        for name in page["TableNames"] if name.startswith(prefix) and (only is None or name in only)
    )
    copied = dict.fromkeys(tables, 0)
    lock = threading.Lock()

    def copy(table: str, segment: int) -> None:
        pages = source_dynamodb.get_paginator("scan").paginate(
            TableName=table, Segment=segment, TotalSegments=FILL_SEGMENTS, ConsistentRead=True
        )
        for page in pages:
            items = page["Items"]
            for start in range(0, len(items), BATCH):
                pending = {table: [
                    {"PutRequest": {"Item": _stamped(item, filled)}}
                    for item in items[start:start + BATCH]
                ]}
                while pending:
                    pending = target_dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            with lock:
                copied[table] += len(items)

    errors: list[BaseException] = []

    def run(table: str, segment: int) -> None:
        try:
            copy(table, segment)
        except BaseException as exc:  # raised in the caller's thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(table, segment), daemon=True)
        for table in tables for segment in range(FILL_SEGMENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return copied


READY = "replicating"
"""The first word of the line the command prints once it replicates (the launcher waits for it)."""


def _settings_prefix() -> str:
    """The project's table prefix, as its settings give it (the command runs beside the app)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hybridsite.settings")
    django.setup()
    from django.conf import settings

    return settings.DYNAMODB_TABLE_PREFIX


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--prefix", help="replicate the tables whose names start with this (default: DYNAMODB_TABLE_PREFIX's)",
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each change waits before it is applied")
    parser.add_argument(
        "--fill", action="store_true",
        help="first copy every item of the first side's tables to the second side's (a new replica)",
    )
    parser.add_argument("--report-seconds", type=float, default=10.0, help="print the lag this often, when it changed")
    parser.add_argument("sides", nargs=2, metavar="REGION=ENDPOINT")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prefix = args.prefix or _settings_prefix()
    sides = dict(side.split("=", 1) for side in args.sides)
    (first, source), (second, target) = sides.items()
    if args.fill:
        began = time.monotonic()
        copied = fill(source, target, prefix=prefix)
        logger.info(
            "filled %s from %s: %d items of %d tables in %.1fs",
            second, first, sum(copied.values()), len(copied), time.monotonic() - began,
        )
    with Replicator(sides, prefix=prefix, delay_seconds=args.delay) as replicator:
        # printed, not logged: the launcher waits for a line that starts with READY (Django's logging,
        # set up for the prefix, formats the log lines its own way)
        print(READY, f"{prefix}* between", " and ".join(f"{n} ({u})" for n, u in sides.items()), flush=True)
        reported = replicator.activity
        for _ in itertools.count():
            time.sleep(args.report_seconds)
            if replicator.activity != reported:
                reported = replicator.activity
                logger.info("lag by target: %s", _lag_line(replicator.lag()))


def _lag_line(lag: dict[str, dict[str, float]]) -> str:
    return "; ".join(
        f"{target}: {figures['count']:.0f} changes, p50 {figures['p50']:.3f}s, p95 {figures['p95']:.3f}s"
        if figures["count"] else f"{target}: none"
        for target, figures in lag.items()
    )


if __name__ == "__main__":
    main()
