"""Project every aggregate of a type: chunked, parallel, resumable, safe beside live writes.

Safe beside live writes because it goes through the projector (same lock, same version
condition): a backfill never overwrites a newer document written by the relay. ``reshape``
rewrites documents at their current version too (the projector's repair condition), so that each
is stored in the shape being written now (projections/shapes.py).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from django.conf import settings
from django.db import connection, connections

from .models import BackfillCheckpoint
from .pool import ProjectorPool, split
from .projector import Request, project_many
from .registry import AGGREGATES
from .relay import backoff_seconds, is_transient


def _project_all(aggregate_type: str, ids: list[int], pool: ProjectorPool, reshape: bool) -> None:
    """Project ``ids`` in batches over the pool's threads. Aggregates that failed for a reason
    that passes by itself (DynamoDB throttling, a connection) are projected again after the relay's
    backoff, up to ``DYNAMODB_THROTTLE_ATTEMPTS`` times: a throttled backfill slows down. Any other
    error, or one that lasts, stops the backfill (``--resume`` continues from the last finished
    chunk). Redis learns only the documents it holds: the rest would evict the hot set."""
    requests = [Request(aggregate_type, i) for i in ids]
    for attempt in range(1, settings.DYNAMODB_THROTTLE_ATTEMPTS + 1):
        failed: list[tuple[Request, Exception]] = []
        batches = split(requests, pool.size)
        answers = pool.map(lambda batch: project_many(batch, repair=reshape, populate=False), batches)
        for batch, answer in zip(batches, answers):
            results = [answer] * len(batch) if isinstance(answer, Exception) else answer
            failed += [(request, result) for request, result in zip(batch, results) if isinstance(result, Exception)]
        if not failed:
            return
        for _, error in failed:
            if not is_transient(error) or attempt == settings.DYNAMODB_THROTTLE_ATTEMPTS:
                raise error
        time.sleep(backoff_seconds(attempt))
        requests = [request for request, _ in failed]


def default_processes() -> int:
    """One process per CPU this one may use, at most four (each holds ``workers`` connections)."""
    return min(4, len(os.sched_getaffinity(0)))


class BackfillFailed(Exception):
    """A chunk failed in a backfill process (its error, as text: not every error survives pickling)."""


_process_pool: ProjectorPool | None = None


def _start_process(workers: int) -> None:
    global _process_pool
    _process_pool = ProjectorPool(workers, "backfill")


def _project_chunk(aggregate_type: str, ids: list[int], reshape: bool) -> None:
    """In a backfill process: one chunk, on that process's threads."""
    assert _process_pool is not None
    try:
        _project_all(aggregate_type, ids, _process_pool, reshape)
    except Exception as exc:
        raise BackfillFailed(f"{aggregate_type} ids {ids[0]}..{ids[-1]}: {type(exc).__name__}: {exc}") from exc


def _projected(
    aggregate_type: str, chunks: Iterable[list[int]], *, processes: int, workers: int, reshape: bool
) -> Iterator[list[int]]:
    """Each chunk, once it and every chunk before it are projected: in this process on ``workers``
    threads, or spread over ``processes`` forked processes of ``workers`` threads each (one
    process's threads share one interpreter lock, which a backfill's CPU outgrows on two cores)."""
    if processes == 1:
        pool = ProjectorPool(workers, "backfill")
        try:
            for ids in chunks:
                _project_all(aggregate_type, ids, pool, reshape)
                yield ids
        finally:
            pool.close()
        return
    # The processes are forked while this one holds no database connection (the chunks' first
    # query opens one after): a child that closed an inherited one would end this one's session.
    if connection.in_atomic_block:
        raise ValueError("a backfill over processes cannot run inside a transaction: its connection is closed")
    connections.close_all()
    executor = ProcessPoolExecutor(
        processes, mp_context=multiprocessing.get_context("fork"), initializer=_start_process, initargs=(workers,)
    )
    executor.submit(int).result()  # with fork, every process starts at the first submit
    pending: deque[tuple[list[int], Future[None]]] = deque()

    def oldest() -> list[int]:
        done, future = pending.popleft()
        future.result()
        return done

    try:
        for ids in chunks:
            pending.append((ids, executor.submit(_project_chunk, aggregate_type, ids, reshape)))
            if len(pending) > processes:  # one chunk queued per process beyond those running
                yield oldest()
        while pending:
            yield oldest()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def backfill(
    aggregate_type: str,
    *,
    resume: bool = False,
    chunk: int = 500,
    workers: int = 4,
    processes: int = 1,
    reshape: bool = False,
    rate: float | None = None,
    progress: Callable[[int], object] = lambda n: None,
) -> int:
    """Returns how many aggregates were projected in this run; ``rate`` caps aggregates per second
    (a backfill beside live traffic should leave DynamoDB and Postgres room; it runs in this process
    alone, so that no chunks run ahead of the pace). With ``processes`` above one, chunks are
    projected in that many forked processes and the checkpoint follows the last chunk finished
    with every one before it; a chunk that fails there raises ``BackfillFailed``."""
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
    chunks = aggregate.ids(max(1, min(chunk, int(rate))) if rate else chunk, checkpoint.last_id)
    processes = 1 if rate else max(1, processes)
    for ids in _projected(aggregate_type, chunks, processes=processes, workers=workers, reshape=reshape):
        done += len(ids)
        checkpoint.last_id = ids[-1]
        checkpoint.projected += len(ids)
        checkpoint.save(update_fields=["last_id", "projected", "updated_at"])
        progress(len(ids))
        if rate:
            time.sleep(max(0.0, done / rate - (time.monotonic() - started)))
    checkpoint.finished = True
    checkpoint.save(update_fields=["finished", "updated_at"])
    return done
