"""A forked process (a Celery pool process, a backfill process) starts with what the parent held:
its DynamoDB connections must be its own (two processes on one socket read each other's answers)
and its thread pools too (the parent's threads do not exist in the child: work submitted to the
inherited pool would wait forever)."""

from __future__ import annotations

import os
import select
import signal
import threading
import traceback
from collections.abc import Callable

import orjson

from hybridsite import dynamodb as adapter
from projections.projector import concurrently
from projections.tables import ProductDocument


def in_forked_child(func: Callable[[], object], timeout: float = 30.0) -> object:
    """What ``func`` returns in a forked child; a child that does not answer in time is killed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # leave without running the parent's clean-ups
        try:
            os.write(write, orjson.dumps(func()))
        except BaseException:
            os.write(write, orjson.dumps({"child raised": traceback.format_exc()}))
        finally:
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"the forked child gave no answer in {timeout} s")
        with os.fdopen(read, "rb", closefd=False) as answer:
            return orjson.loads(answer.read())
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def test_a_forked_process_builds_its_own_table_connections(dynamodb):
    inherited = adapter.connection(ProductDocument)
    ProductDocument(pk="FORK-1", owner="product#1", version=1, body="{}").save()

    def seen() -> dict[str, bool]:
        return {
            "own": adapter.connection(ProductDocument) is not inherited,
            "found": ProductDocument.get("FORK-1").version == 1,
        }

    assert in_forked_child(seen) == {"own": True, "found": True}
    assert adapter.connection(ProductDocument) is inherited


def test_a_forked_process_starts_writer_threads_of_its_own(settings):
    """Every writer thread of the parent busy at once: the pool has started all it may."""
    everyone = threading.Barrier(settings.PROJECTION_WRITE_THREADS, timeout=30)
    concurrently(lambda _: everyone.wait(), range(settings.PROJECTION_WRITE_THREADS))
    assert in_forked_child(lambda: concurrently(lambda n: n * 2, [1, 2, 3])) == [2, 4, 6]
