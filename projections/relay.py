"""The relay: drain pending outbox rows into projections.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` in a transaction that lasts while their batch is
projected, and completed or failed in it: concurrent relays never take the same row, and the
claim dies with its connection, so the rows of a relay that dies are taken up again at once. Rows
of one aggregate are coalesced into one projection. A projected row is deleted; a failed one is
retried later with exponential backoff and jitter. Only a permanent failure (one that retrying
cannot fix) that persists for ``OUTBOX_MAX_ATTEMPTS`` makes a row ``dead``; transient ones
(DynamoDB unreachable, throttled) are retried until they pass.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

import botocore.exceptions
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone
from redis.exceptions import RedisError

from catalog.models import OutboxEvent
from hybridsite import dynamodb, tracing

from . import metrics
from .models import ReadFloor
from .pool import ProjectorPool, split
from .projector import Fenced, Outcome, Request, project_many
from .registry import AGGREGATES

logger = logging.getLogger(__name__)



class CacheRefreshFailed(Exception):
    """DynamoDB was written but Redis could not be refreshed: the projection is retried, so that
    Redis never keeps an older version than DynamoDB's."""


TRANSIENT_ERRORS = (
    botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
    # Postgres: too many clients, a terminated backend, a statement timeout, a lost connection.
    OperationalError, InterfaceError,
    RedisError, CacheRefreshFailed, Fenced,
)


def is_transient(exc: BaseException) -> bool:
    """Connection trouble and throttling pass by themselves; anything else needs a fix."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TRANSIENT_ERRORS):
            return True
        if isinstance(seen, botocore.exceptions.ClientError):
            return seen.response.get("Error", {}).get("Code") in dynamodb.TRANSIENT_CODES
        seen = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
    return False


class OutboxRow(NamedTuple):
    """A claimed outbox row."""

    id: int
    aggregate_type: str
    aggregate_id: int
    version: int
    traceparent: str | None  # the context of the change that wrote it (hybridsite.tracing)


class StopReason(StrEnum):
    """Why a drain stopped."""

    EMPTY = "empty"  # no due row left
    TIME = "time"  # its time was up: more may be due
    TRANSIENT_ERROR = "transient-error"  # a dependency is down: let the backoff pass


@dataclass
class DrainResult:
    projected: int = 0
    rows: int = 0
    failed: int = 0
    dead: int = 0
    lag_ms: list[float] = field(default_factory=list)
    stopped_by: StopReason | None = None


def claim(limit: int) -> list[OutboxRow]:
    """Lock up to ``limit`` due rows for the caller's transaction (others skip them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id, aggregate_type, aggregate_id, version, traceparent FROM catalog_outboxevent
            WHERE status = 'pending' AND available_at <= now()
            ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
            """,
            [limit],
        )
        return [OutboxRow(*row) for row in cursor.fetchall()]


def complete(ids: list[int]) -> None:
    if ids:
        OutboxEvent.objects.filter(pk__in=ids).delete()


def backoff_seconds(attempts: int) -> float:
    """Exponential, capped, with full jitter so that retries of many rows spread out."""
    ceiling = min(settings.OUTBOX_BACKOFF_CAP_SECONDS, settings.OUTBOX_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def fail(ids: list[int], error: BaseException, *, permanent: bool) -> int:
    """Record a failure; returns how many rows went dead. Every failure lengthens the backoff;
    only permanent ones count toward ``OUTBOX_MAX_ATTEMPTS`` (an outage is no reason to give up)."""
    message = f"{type(error).__name__}: {error}"[:2000]
    dead = 0
    with transaction.atomic():
        for event in OutboxEvent.objects.select_for_update().filter(pk__in=ids):
            event.attempts += 1
            event.last_error = message
            if permanent:
                event.permanent_failures += 1
                if event.permanent_failures >= settings.OUTBOX_MAX_ATTEMPTS:
                    event.status = OutboxEvent.Status.DEAD
                    dead += 1
            event.available_at = _after(backoff_seconds(event.attempts))
            event.save(update_fields=["attempts", "permanent_failures", "last_error", "status", "available_at"])
    return dead


def _after(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def forget_old_floors() -> int:
    """Durable read floors older than the cache's floors: DynamoDB has long caught up with them."""
    cutoff = _after(-settings.CACHE_FLOOR_TTL_SECONDS)
    return ReadFloor.objects.filter(updated_at__lt=cutoff).delete()[0]


def overdue() -> bool:
    """Whether a pending row has been due for longer than ``OUTBOX_STALL_SECONDS``: no relay task
    has run for that long (the broker is down, or a worker stopped consuming after losing it)."""
    cutoff = _after(-settings.OUTBOX_STALL_SECONDS)
    return OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING, available_at__lt=cutoff).exists()


def retry_dead(ids: list[int] | None = None) -> int:
    """Operator action: dead rows become pending again, with a fresh attempt count."""
    rows = OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(status=OutboxEvent.Status.PENDING, attempts=0, permanent_failures=0, available_at=_after(0))


_pool: ProjectorPool | None = None


def _forget_pool() -> None:
    """In a forked child: the parent's projector threads are not there."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def _requests(groups: list[list[OutboxRow]]) -> list[Request]:
    """One projection per aggregate: the last row names it, the highest version is what a gone
    aggregate's tombstones carry at least."""
    return [
        Request(group[-1].aggregate_type, group[-1].aggregate_id, max(row.version for row in group))
        for group in groups
    ]


def _project(requests: list[Request]) -> list[Outcome | Exception]:
    """A batch of projections; a failed cache refresh fails its projection (it is retried)."""
    results = project_many(requests)
    return [
        CacheRefreshFailed(f"{r.aggregate_type}#{r.aggregate_id}: projected, but the cache was not refreshed")
        if isinstance(result, Outcome) and result.cache_failed else result
        for r, result in zip(requests, results)
    ]


def _project_groups(groups: list[list[OutboxRow]], inline: bool) -> list[Outcome | Exception]:
    """The groups' aggregates, split into up to ``OUTBOX_PROJECT_THREADS`` batches projected at once
    on the relay's pool, apart from the connection that holds the claim. ``inline``: one batch in
    the caller's own transaction, whose data only its connection can see."""
    global _pool
    requests = _requests(groups)
    if inline:
        return _project(requests)
    if _pool is None:
        _pool = ProjectorPool(settings.OUTBOX_PROJECT_THREADS, "relay")
    batches = split(requests, _pool.size)
    results: list[Outcome | Exception] = []
    for batch, answer in zip(batches, _pool.map(_project, batches)):
        results += [answer] * len(batch) if isinstance(answer, Exception) else answer
    return results


def stop_projector_threads() -> None:
    """End the relay's threads, each closing its database connection first."""
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None


def _project_batch(rows: list[OutboxRow], result: DrainResult, inline: bool) -> None:
    """Project the claimed rows' aggregates; delete the rows projected, record the failures."""
    result.rows += len(rows)
    by_owner: dict[str, list[OutboxRow]] = defaultdict(list)
    for row in rows:
        aggregate = AGGREGATES.get(row.aggregate_type)
        by_owner[aggregate.owner(row.aggregate_id) if aggregate else f"unknown:{row.aggregate_type}"].append(row)
    groups = list(by_owner.values())
    done: list[int] = []
    for group, outcome in zip(groups, _project_groups(groups, inline)):
        ids = [row.id for row in group]
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
            group[-1].aggregate_type, group[-1].aggregate_id, "transient" if transient else "permanent", outcome,
        )
        if transient:
            result.stopped_by = StopReason.TRANSIENT_ERROR
    complete(done)


def drain(
    max_seconds: float | None = None, batch_size: int | None = None, backlog: Callable[[], object] | None = None
) -> DrainResult:
    """Project pending rows until none are left, time is up, or a dependency is down. ``backlog``
    is called once when a claim comes back full (more rows wait than one relay claims at a time),
    so that the caller can start another relay beside this one."""
    deadline = time.monotonic() + (max_seconds if max_seconds is not None else settings.OUTBOX_DRAIN_SECONDS)
    result = DrainResult()
    inline = connection.in_atomic_block
    limit = batch_size or settings.OUTBOX_BATCH_SIZE
    while time.monotonic() < deadline:
        with transaction.atomic():  # the claim: it ends with this transaction, or with its connection
            rows = claim(limit)
            if not rows:
                result.stopped_by = StopReason.EMPTY
                break
            if backlog is not None and len(rows) == limit:
                # Now, not on commit: the other relay claims rows committed long ago (it skips
                # these), and joins while this batch is projected.
                backlog()
                backlog = None
            with tracing.outbox_span(row.traceparent for row in rows):
                _project_batch(rows, result, inline)
        if result.stopped_by:
            break
    else:
        result.stopped_by = StopReason.TIME
    metrics.incr_many({"relay.rows": result.rows, "relay.failed": result.failed, "relay.dead": result.dead})
    metrics.observe_lag(result.lag_ms)
    return result
