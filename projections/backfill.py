"""Project every aggregate of a type: chunked, parallel, resumable, safe beside live writes.

Safe beside live writes because it goes through the projector (same lock, same version
condition): a backfill never overwrites a newer document written by the relay.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from django.db import connections

from .models import BackfillCheckpoint
from .projector import project
from .registry import AGGREGATES


def _project_all(aggregate_type: str, ids: list[int], workers: int) -> None:
    """Project ``ids`` on ``workers`` threads, each with its own database connection."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for aggregate_id in ids:
        todo.put(aggregate_id)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while not errors:
                try:
                    aggregate_id = todo.get_nowait()
                except queue.Empty:
                    return
                project(aggregate_type, aggregate_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(min(workers, len(ids)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def backfill(
    aggregate_type: str,
    *,
    resume: bool = False,
    chunk: int = 500,
    workers: int = 4,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Returns how many aggregates were projected in this run."""
    aggregate = AGGREGATES[aggregate_type]
    checkpoint, _ = BackfillCheckpoint.objects.get_or_create(aggregate_type=aggregate_type)
    if not resume or checkpoint.finished:
        checkpoint.last_id, checkpoint.projected, checkpoint.finished = 0, 0, False
        checkpoint.save()
    done = 0
    for ids in aggregate.ids(chunk, checkpoint.last_id):
        _project_all(aggregate_type, ids, workers)
        done += len(ids)
        checkpoint.last_id = ids[-1]
        checkpoint.projected += len(ids)
        checkpoint.save(update_fields=["last_id", "projected", "updated_at"])
        progress(len(ids))
    checkpoint.finished = True
    checkpoint.save(update_fields=["finished", "updated_at"])
    return done
