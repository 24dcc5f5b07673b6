"""Applying stream records to Postgres: one record (the Lambda handler, a dead letter's retry), or
a shard's batch with its checkpoint in the same transaction (the consumer)."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .models import DeadLetter, ShardLease
from .records import change_of, table_of
from .registry import for_table

logger = logging.getLogger(__name__)


class UnknownTable(Exception):
    """A record of a table no app registered: parked, never guessed at."""


class LeaseLost(Exception):
    """Another consumer holds the shard now: this batch is rolled back and left to it."""


def apply_record(record: dict[str, Any]) -> None:
    """Apply one record through its table's registered function (in the caller's transaction)."""
    writeback = for_table(table_of(record))
    if writeback is None:
        raise UnknownTable(f"no write-back registered for table {table_of(record)}")
    writeback.apply(change_of(record))


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]


def apply_batch(*, lease_id: int, owner: str, records: list[dict[str, Any]], finished: bool) -> int:
    """Apply ``records`` of one shard and move its checkpoint past them, in one transaction, only
    while ``owner`` still holds the lease (else :class:`LeaseLost`, nothing applied). A record that
    fails is rolled back to its savepoint and parked as a dead letter; the batch goes on. Returns
    how many records were applied."""
    applied = 0
    with transaction.atomic():
        lease = ShardLease.objects.select_for_update().filter(
            pk=lease_id, owner=owner, lease_expires_at__gt=timezone.now()
        ).first()
        if lease is None:
            raise LeaseLost(f"lease {lease_id} is no longer held by {owner}")
        _constraints_immediate()
        for record in records:
            try:
                with transaction.atomic():
                    apply_record(record)
                applied += 1
            except Exception as exc:  # noqa: BLE001  (any failure parks the record; the shard goes on)
                logger.warning("write-back: record %s parked: %s", record["dynamodb"]["SequenceNumber"], exc)
                DeadLetter.objects.create(
                    table_name=table_of(record), shard_id=lease.shard_id,
                    sequence_number=record["dynamodb"]["SequenceNumber"], record=record, error=_describe(exc),
                )
        changes: dict[str, Any] = {"records_applied": F("records_applied") + applied, "updated_at": timezone.now()}
        if records:
            changes["checkpoint"] = records[-1]["dynamodb"]["SequenceNumber"]
        if finished:
            changes["finished"] = True
        ShardLease.objects.filter(pk=lease_id).update(**changes)
    return applied


def _constraints_immediate() -> None:
    """Foreign keys are checked at commit by default: a bad record would then fail the whole batch
    at its end, where no savepoint can single it out."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def dead_letter_retry(*, dead_letter: DeadLetter) -> bool:
    """Apply a parked record again: on success it is removed, else its error and attempts are kept."""
    try:
        with transaction.atomic():
            _constraints_immediate()
            apply_record(dead_letter.record)
            DeadLetter.objects.filter(pk=dead_letter.pk).delete()
        return True
    except Exception as exc:  # noqa: BLE001  (the error is shown in the admin)
        DeadLetter.objects.filter(pk=dead_letter.pk).update(error=_describe(exc), attempts=F("attempts") + 1)
        return False
