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
