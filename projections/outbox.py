"""The relay: drain pending outbox rows into projections.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and leased (``available_at`` moves past the
lease), so concurrent relays never take the same row, and rows of a relay that dies come back
when the lease ends. Rows of one aggregate are coalesced into one projection. A projected row is
deleted; a failed one is retried later with exponential backoff and jitter. Only a permanent
failure (one that retrying cannot fix) that persists for ``OUTBOX_MAX_ATTEMPTS`` makes a row
``dead``; transient ones (DynamoDB unreachable, throttled) are retried until they pass.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import botocore.exceptions
from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone

from catalog.models import OutboxEvent

from . import metrics
from .projector import Outcome, PermanentProjectionError, project
from .registry import AGGREGATES

logger = logging.getLogger(__name__)

TRANSIENT_AWS_CODES = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "InternalFailure", "TransactionConflictException",
}


def is_transient(exc: BaseException) -> bool:
    """Connection trouble and throttling pass by themselves; anything else needs a fix."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
            return True
        if isinstance(seen, botocore.exceptions.ClientError):
            return seen.response.get("Error", {}).get("Code") in TRANSIENT_AWS_CODES
        seen = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
    return False


@dataclass
class DrainResult:
    projected: int = 0
    rows: int = 0
    failed: int = 0
    dead: int = 0
    lag_ms: list[float] = field(default_factory=list)
    stopped_by: str = ""


def claim(limit: int) -> list[tuple[int, str, int, int]]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE catalog_outboxevent SET available_at = now() + make_interval(secs => %s)
            WHERE id IN (
                SELECT id FROM catalog_outboxevent
                WHERE status = 'pending' AND available_at <= now()
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
            RETURNING id, aggregate_type, aggregate_id, version
            """,
            [settings.OUTBOX_LEASE_SECONDS, limit],
        )
        return sorted(cursor.fetchall())


def complete(ids: list[int]) -> None:
    if ids:
        OutboxEvent.objects.filter(pk__in=ids).delete()


def backoff_seconds(attempts: int) -> float:
    """Exponential, capped, with full jitter so that retries of many rows spread out."""
    ceiling = min(settings.OUTBOX_BACKOFF_CAP_SECONDS, settings.OUTBOX_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def fail(ids: list[int], error: BaseException, *, permanent: bool) -> int:
    """Record a failure; returns how many rows went dead."""
    message = f"{type(error).__name__}: {error}"[:2000]
    dead = 0
    with transaction.atomic():
        for event in OutboxEvent.objects.select_for_update().filter(pk__in=ids):
            event.attempts += 1
            event.last_error = message
            if permanent and event.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
                event.status = OutboxEvent.Status.DEAD
                dead += 1
            event.available_at = _after(backoff_seconds(event.attempts))
            event.save(update_fields=["attempts", "last_error", "status", "available_at"])
    return dead


def _after(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def retry_dead(ids: list[int] | None = None) -> int:
    """Operator action: dead rows become pending again, with a fresh attempt count."""
    rows = OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(status=OutboxEvent.Status.PENDING, attempts=0, available_at=_after(0))


Row = tuple[int, str, int, int]  # id, aggregate_type, aggregate_id, version
_executor: ThreadPoolExecutor | None = None


def _project_group(group: list[Row]) -> Outcome | Exception:
    """Project the aggregate of a group of rows; the error is returned, not raised."""
    aggregate_type = group[-1][1]
    try:
        if aggregate_type not in AGGREGATES:
            raise PermanentProjectionError(f"no projection is registered for {aggregate_type!r}")
        close_old_connections()
        return project(aggregate_type, group[-1][2], deleted_version=max(row[3] for row in group))
    except Exception as exc:
        return exc


def _project_groups(groups: list[list[Row]]) -> list[Outcome | Exception]:
    """Projections spend their time waiting on DynamoDB: run a batch's aggregates on threads,
    each with its own database connection (kept for the next batch)."""
    global _executor
    if settings.OUTBOX_PROJECT_THREADS <= 1 or len(groups) == 1 or connection.in_atomic_block:
        return [_project_group(group) for group in groups]
    if _executor is None:
        _executor = ThreadPoolExecutor(settings.OUTBOX_PROJECT_THREADS, thread_name_prefix="projector")
    return list(_executor.map(_project_group, groups))


def stop_projector_threads() -> None:
    """End the pool's threads, each closing its database connection first."""
    global _executor
    if _executor is None:
        return
    size = settings.OUTBOX_PROJECT_THREADS
    everyone = threading.Barrier(size)  # every thread takes exactly one of the tasks

    def close() -> None:
        everyone.wait()
        connections.close_all()

    list(_executor.map(lambda _: close(), range(size)))
    _executor.shutdown(wait=True)
    _executor = None


def drain(max_seconds: float | None = None, batch_size: int | None = None) -> DrainResult:
    """Project pending rows until none are left, time is up, or a dependency is down."""
    deadline = time.monotonic() + (max_seconds if max_seconds is not None else settings.OUTBOX_DRAIN_SECONDS)
    result = DrainResult()
    while time.monotonic() < deadline:
        rows = claim(batch_size or settings.OUTBOX_BATCH_SIZE)
        if not rows:
            result.stopped_by = "empty"
            break
        result.rows += len(rows)
        by_owner: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            aggregate = AGGREGATES.get(row[1])
            by_owner[aggregate.owner(row[2]) if aggregate else f"unknown:{row[1]}"].append(row)
        groups = list(by_owner.values())
        done: list[int] = []
        for group, outcome in zip(groups, _project_groups(groups)):
            ids = [row[0] for row in group]
            if isinstance(outcome, Outcome):
                done += ids
                result.projected += 1
                result.lag_ms += outcome.lag_ms
                continue
            transient = is_transient(outcome)
            result.failed += len(ids)
            result.dead += fail(ids, outcome, permanent=not transient)
            logger.warning(
                "projection of %s#%s failed (%s): %s",
                group[-1][1], group[-1][2], "transient" if transient else "permanent", outcome,
            )
            if transient:
                result.stopped_by = "transient-error"  # the dependency is down: let backoff pass
        complete(done)
        if result.stopped_by:
            break
    else:
        result.stopped_by = "time"
    metrics.incr_many({"relay.rows": result.rows, "relay.failed": result.failed, "relay.dead": result.dead})
    metrics.observe_lag(result.lag_ms)
    return result
