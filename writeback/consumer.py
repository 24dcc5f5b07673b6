"""The DynamoDB Streams consumer: reads every shard of the write-back tables' streams and applies
the records to Postgres, effectively once.

Shards are shared by leases in Postgres. A consumer announces itself (``ConsumerProcess``) and
renews its leases with each heartbeat; a lease not renewed for ``WRITEBACK_LEASE_SECONDS`` is
free to take, so a killed consumer's shards move within seconds. Each consumer holds at most its
share (shards ready to read / live consumers, rounded up) and gives back the excess, so two
processes split the shards. A child shard is read only once its parent is finished. Iterators
are renewed from the checkpoint when they expire; a checkpoint older than the stream's retention
(``TrimmedDataAccessException``) reloads the table from a Scan, then reads on from the oldest
record (the apply functions skip what is not newer).
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
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from hybridsite.dynamodb import ShardReadPace, shard_iterator, stream_arn, streams_client, table_name

from . import registry
from .apply import LeaseLost, apply_batch
from .models import ConsumerProcess, Resync, ShardLease
from .records import normalized

logger = logging.getLogger(__name__)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def discover(client: Any) -> int:
    """Record every shard of every write-back table's stream (new ones unowned). Returns the count."""
    count = 0
    for writeback in registry.registered():
        arn = stream_arn(writeback.model)
        if arn is None:
            logger.warning("write-back: table %s has no stream (run projections_setup)", table_name(writeback.model))
            continue
        start: dict[str, str] = {}
        while True:
            description = client.describe_stream(StreamArn=arn, **start)["StreamDescription"]
            for shard in description["Shards"]:
                ShardLease.objects.get_or_create(
                    stream_arn=arn, shard_id=shard["ShardId"],
                    defaults={
                        "parent_shard_id": shard.get("ParentShardId", ""), "table_name": table_name(writeback.model),
                    },
                )
                count += 1
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            start = {"ExclusiveStartShardId": last}
    return count


def ready_shards() -> Any:
    """Unfinished shards whose parent is finished (or unknown: trimmed from the stream long ago)."""
    unfinished_parent = ShardLease.objects.filter(
        stream_arn=OuterRef("stream_arn"), shard_id=OuterRef("parent_shard_id"), finished=False
    )
    return ShardLease.objects.filter(finished=False).exclude(Exists(unfinished_parent))


class Consumer:
    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner or owner_id()
        self.client = streams_client()
        self.iterators: dict[int, str | None] = {}
        self.stopping = threading.Event()
        self.pace = ShardReadPace(self.stopping.wait)
        self.next_discovery = 0.0
        self.next_heartbeat = 0.0

    # --- leases ------------------------------------------------------------------------------

    def _lease_until(self) -> Any:
        return timezone.now() + timedelta(seconds=settings.WRITEBACK_LEASE_SECONDS)

    def heartbeat(self) -> None:
        """Say this consumer is alive, renew its leases, take its share of the free ones and give
        back what is above its share."""
        until = self._lease_until()
        now = timezone.now()
        ConsumerProcess.objects.update_or_create(owner=self.owner, defaults={"expires_at": until})
        ConsumerProcess.objects.filter(expires_at__lt=now).delete()
        ShardLease.objects.filter(owner=self.owner, finished=False).update(lease_expires_at=until)
        live = ConsumerProcess.objects.filter(expires_at__gte=now).count() or 1
        share = math.ceil(ready_shards().count() / live)
        mine = list(ready_shards().filter(owner=self.owner).order_by("id").values_list("id", flat=True))
        if len(mine) > share:
            for lease_id in mine[share:]:
                self.release(lease_id)
        elif len(mine) < share:
            with transaction.atomic():
                free = list(
                    ready_shards().filter(Q(owner="") | Q(lease_expires_at__lt=now))
                    .order_by("id").select_for_update(skip_locked=True)
                    .values_list("id", flat=True)[: share - len(mine)]
                )
                ShardLease.objects.filter(id__in=free).update(owner=self.owner, lease_expires_at=until)
            for lease_id in free:
                logger.info("write-back: %s took shard lease %s", self.owner, lease_id)
                self.iterators.pop(lease_id, None)

    def release(self, lease_id: int) -> None:
        ShardLease.objects.filter(pk=lease_id, owner=self.owner).update(owner="", lease_expires_at=timezone.now())
        self.iterators.pop(lease_id, None)
        logger.info("write-back: %s gave back shard lease %s", self.owner, lease_id)

    def release_all(self) -> None:
        for lease_id in ShardLease.objects.filter(owner=self.owner).values_list("id", flat=True):
            self.release(lease_id)
        ConsumerProcess.objects.filter(owner=self.owner).delete()

    # --- reading -----------------------------------------------------------------------------

    def _iterator(self, lease: ShardLease) -> str | None:
        if lease.pk in self.iterators:
            return self.iterators[lease.pk]
        self.iterators[lease.pk] = shard_iterator(
            self.client, lease.stream_arn, lease.shard_id, lease.checkpoint, lambda reason: self.resync(lease, reason)
        )
        return self.iterators[lease.pk]

    def resync(self, lease: ShardLease, reason: str) -> None:
        """The stream lost records this shard had not applied: reload the table from a Scan."""
        writeback = registry.for_table(lease.table_name)
        if writeback is None:
            return
        logger.warning("write-back: %s trimmed past its checkpoint (%s): resync from a Scan", lease.shard_id, reason)
        resync = Resync.objects.create(table_name=lease.table_name, shard_id=lease.shard_id, reason=reason[:2000])
        with transaction.atomic():
            items = writeback.resync(writeback.model.scan(consistent_read=True))
        Resync.objects.filter(pk=resync.pk).update(items=items, finished_at=timezone.now())

    def read(self, lease: ShardLease) -> int:
        """One GetRecords on the shard, applied with its checkpoint. Returns records applied."""
        iterator = self._iterator(lease)
        if iterator is None:
            apply_batch(lease_id=lease.pk, owner=self.owner, records=[], finished=True)
            return 0
        try:
            self.pace.before_read(str(lease.pk))
            answer = self.client.get_records(ShardIterator=iterator, Limit=settings.WRITEBACK_BATCH_SIZE)
        except self.client.exceptions.ExpiredIteratorException:
            self.iterators.pop(lease.pk, None)  # renewed from the checkpoint on the next read
            return 0
        except self.client.exceptions.TrimmedDataAccessException as exc:
            self.iterators.pop(lease.pk, None)
            self.resync(lease, str(exc))
            ShardLease.objects.filter(pk=lease.pk).update(checkpoint="")  # read on from TRIM_HORIZON
            return 0
        records = [normalized(record, lease.stream_arn) for record in answer["Records"]]
        next_iterator = answer.get("NextShardIterator")
        if not records and next_iterator is not None:
            self.iterators[lease.pk] = next_iterator  # nothing new: no transaction
            return 0
        applied = apply_batch(lease_id=lease.pk, owner=self.owner, records=records, finished=next_iterator is None)
        self.iterators[lease.pk] = next_iterator
        if next_iterator is None:
            logger.info("write-back: shard %s finished", lease.shard_id)
            self.iterators.pop(lease.pk, None)
        return applied

    def step(self) -> int:
        """Discovery and heartbeat when due, then one read of each held shard."""
        now = time.monotonic()
        if now >= self.next_discovery:
            discover(self.client)
            self.next_discovery = now + settings.WRITEBACK_DISCOVERY_SECONDS
        if now >= self.next_heartbeat:
            self.heartbeat()
            self.next_heartbeat = now + settings.WRITEBACK_LEASE_SECONDS / 3
        applied = 0
        for lease in ready_shards().filter(owner=self.owner).order_by("id"):
            try:
                applied += self.read(lease)
            except LeaseLost:
                logger.info("write-back: %s lost shard lease %s", self.owner, lease.pk)
                self.iterators.pop(lease.pk, None)
        return applied

    def run(self) -> None:
        logger.info("write-back: consumer %s started", self.owner)
        failures = 0
        try:
            while not self.stopping.is_set():
                try:
                    applied = self.step()
                    failures = 0
                except Exception as exc:  # noqa: BLE001  (a dependency down or throttling: wait and go on)
                    logger.warning("write-back: %s: %s", type(exc).__name__, exc)
                    close_old_connections()
                    self.iterators.clear()
                    failures += 1
                    # Throttled or down: each failure in a row doubles the wait (jittered), so that
                    # the consumers slow down together; records are read again from the checkpoint.
                    ceiling = min(settings.DYNAMODB_THROTTLE_CAP_SECONDS, settings.WRITEBACK_IDLE_SECONDS * 2**failures)
                    self.stopping.wait(random.uniform(ceiling / 2, ceiling))
                    continue
                if not applied:
                    self.stopping.wait(settings.WRITEBACK_IDLE_SECONDS)
        finally:
            try:
                self.release_all()
            except Exception as exc:  # noqa: BLE001  (stopping anyway: the leases expire)
                logger.warning("write-back: leases not released (%s); they expire", exc)
            logger.info("write-back: consumer %s stopped", self.owner)
