"""Project every aggregate of a type: chunked, parallel, resumable, safe beside live writes.

Safe beside live writes because it goes through the projector (same lock, same version
condition): a backfill never overwrites a newer document written by the relay.
"""

from __future__ import annotations

from collections.abc import Callable

from .models import BackfillCheckpoint
from .pool import ProjectorPool
from .projector import project
from .registry import AGGREGATES


def _project_all(aggregate_type: str, ids: list[int], pool: ProjectorPool) -> None:
    """Project ``ids`` on the pool's threads; the first error stops the backfill (``--resume``
    continues from the last finished chunk)."""
    errors = [r for r in pool.map(lambda i: project(aggregate_type, i), ids) if isinstance(r, Exception)]
    if errors:
        raise errors[0]


def backfill(
    aggregate_type: str,
    *,
    resume: bool = False,
    chunk: int = 500,
    workers: int = 4,
    progress: Callable[[int], object] = lambda n: None,
) -> int:
    """Returns how many aggregates were projected in this run."""
    aggregate = AGGREGATES[aggregate_type]
    checkpoint, _ = BackfillCheckpoint.objects.get_or_create(aggregate_type=aggregate_type)
    if not resume or checkpoint.finished:
        checkpoint.last_id, checkpoint.projected, checkpoint.finished = 0, 0, False
        checkpoint.save()
    done = 0
    pool = ProjectorPool(workers, "backfill")
    try:
        for ids in aggregate.ids(chunk, checkpoint.last_id):
            _project_all(aggregate_type, ids, pool)
            done += len(ids)
            checkpoint.last_id = ids[-1]
            checkpoint.projected += len(ids)
            checkpoint.save(update_fields=["last_id", "projected", "updated_at"])
            progress(len(ids))
    finally:
        pool.close()
    checkpoint.finished = True
    checkpoint.save(update_fields=["finished", "updated_at"])
    return done
