"""Project every aggregate of a type: chunked, parallel, resumable, safe beside live writes.

Safe beside live writes because it goes through the projector (same lock, same version
condition): a backfill never overwrites a newer document written by the relay. ``reshape``
rewrites documents at their current version too (the projector's repair condition), so that each
is stored in the shape being written now (projections/shapes.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from .models import BackfillCheckpoint
from .pool import ProjectorPool
from .projector import Request, project_many
from .registry import AGGREGATES


def _project_all(aggregate_type: str, ids: list[int], pool: ProjectorPool, reshape: bool) -> None:
    """Project ``ids`` as one batch per pool thread; the first error stops the backfill
    (``--resume`` continues from the last finished chunk)."""
    size = -(-len(ids) // pool.size)  # ceiling: at most one batch per thread
    batches = [[Request(aggregate_type, i) for i in ids[start:start + size]] for start in range(0, len(ids), size)]
    for answer in pool.map(lambda batch: project_many(batch, repair=reshape), batches):
        errors = [answer] if isinstance(answer, Exception) else [r for r in answer if isinstance(r, Exception)]
        if errors:
            raise errors[0]


def backfill(
    aggregate_type: str,
    *,
    resume: bool = False,
    chunk: int = 500,
    workers: int = 4,
    reshape: bool = False,
    rate: float | None = None,
    progress: Callable[[int], object] = lambda n: None,
) -> int:
    """Returns how many aggregates were projected in this run; ``rate`` caps aggregates per second
    (a backfill beside live traffic should leave DynamoDB and Postgres room)."""
    aggregate = AGGREGATES[aggregate_type]
    if reshape:
        # Every process must write the new shape before the rewrite begins: a projection after it
        # passed an aggregate would otherwise put the old shape back (processes keep a switch's
        # value this long; saving the switch cleared waffle's cached value).
        time.sleep(settings.SHAPE_SWITCH_LOCAL_SECONDS)
    checkpoint, _ = BackfillCheckpoint.objects.get_or_create(aggregate_type=aggregate_type)
    if not resume or checkpoint.finished:
        checkpoint.last_id, checkpoint.projected, checkpoint.finished = 0, 0, False
        checkpoint.total = sum(len(ids) for ids in aggregate.ids(10_000, 0))
        checkpoint.save()
    done = 0
    started = time.monotonic()
    pool = ProjectorPool(workers, "backfill")
    try:
        for ids in aggregate.ids(max(1, min(chunk, int(rate))) if rate else chunk, checkpoint.last_id):
            _project_all(aggregate_type, ids, pool, reshape)
            done += len(ids)
            checkpoint.last_id = ids[-1]
            checkpoint.projected += len(ids)
            checkpoint.save(update_fields=["last_id", "projected", "updated_at"])
            progress(len(ids))
            if rate:
                time.sleep(max(0.0, done / rate - (time.monotonic() - started)))
    finally:
        pool.close()
    checkpoint.finished = True
    checkpoint.save(update_fields=["finished", "updated_at"])
    return done
