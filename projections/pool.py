"""Threads that project aggregates: projections spend their time waiting on DynamoDB, so a batch
is projected on threads, each with a database connection of its own (kept between batches). The
relay and the backfill both project through one of these."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import close_old_connections, connections

T = TypeVar("T")
R = TypeVar("R")


# A batch is split between a pool's threads only into parts of at least this many aggregates:
# each part costs a snapshot of its own, which a handful of aggregates does not repay (at 200
# writes/s, the relay's claims of a few rows projected unsplit cut the lag's median by a third).
MIN_PART = 25


def split(items: list[T], threads: int) -> list[list[T]]:
    """Parts of a batch to project at once: one per thread at most, none under ``MIN_PART``
    aggregates unless the whole batch is."""
    parts = min(threads, max(1, len(items) // MIN_PART))
    size, longer = divmod(len(items), parts)  # the first ``longer`` parts take one more
    bounds = [i * size + min(i, longer) for i in range(parts + 1)]
    return [items[start:end] for start, end in zip(bounds, bounds[1:]) if end > start]


class ProjectorPool:
    def __init__(self, size: int, name: str) -> None:
        self.size = max(1, size)
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix=name)

    def map(self, func: Callable[[T], R], items: Iterable[T]) -> list[R | Exception]:
        """``func`` of each item, in order; an error is returned in its place, not raised."""

        def call(item: T) -> R | Exception:
            close_old_connections()  # one that broke in an earlier batch is replaced
            try:
                return func(item)
            except Exception as exc:
                return exc

        return list(self._executor.map(call, items))

    def close(self) -> None:
        """End the threads, each closing its database connection first."""
        everyone = threading.Barrier(self.size)  # every thread takes exactly one of the tasks

        def close_connection(_: int) -> None:
            everyone.wait()
            connections.close_all()

        list(self._executor.map(close_connection, range(self.size)))
        self._executor.shutdown(wait=True)
