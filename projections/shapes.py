"""Which product document shape is written and which is served: two django-waffle switches, so
that a new shape rolls out without a deploy and without a read error:

1. ``product_document_v2_write`` on: projections (and the shape backfill) write shape 2; readers
   still serve shape 1, converting what they find.
2. ``projections_backfill --model product --reshape`` rewrites every document in shape 2
   (resumable, throttled with ``--rate``, progress in the admin under Backfill checkpoints).
3. ``product_document_v2_read`` on: readers serve shape 2.
4. ``projections_shapes`` counts the documents of each shape: the old one is gone when it says 0.

The hot read asks on every request, so each process keeps a switch's value for
``SHAPE_SWITCH_LOCAL_SECONDS`` (after that, waffle's Redis-cached value; Postgres behind it). A
failure to read a switch keeps the last value known (shape 1 before any). A read never waits for
Postgres once its process knows the read switch: when the value is due, a thread of the process
reads it again and requests go on with the last value meanwhile (a hot read needs no Postgres at
all). Writers (projections, the shape backfill) read the write switch themselves when it is due.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connections
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from waffle import switch_is_active

logger = logging.getLogger(__name__)

WRITE_V2 = "product_document_v2_write"
READ_V2 = "product_document_v2_read"

_known: dict[str, tuple[float, bool]] = {}
_refreshing: set[str] = set()
_generation = 0  # bumped by forget(): a refresh begun before it must not put back what it read
_lock = threading.Lock()


def _remember(name: str, value: bool, generation: int) -> None:
    with _lock:
        if generation == _generation:
            _known[name] = (time.monotonic() + settings.SHAPE_SWITCH_LOCAL_SECONDS, value)


def _read(name: str, last: bool, generation: int) -> bool:
    try:
        value = switch_is_active(name)
    except (RedisError, ConnectionInterrupted, DatabaseError) as exc:
        logger.warning("switch %s unreadable (%s); keeping its last value", name, exc)
        value = last
    _remember(name, value, generation)
    return value


def _switch(name: str) -> bool:
    known = _known.get(name)
    if known is not None and time.monotonic() < known[0]:
        return known[1]
    return _read(name, known[1] if known is not None else False, _generation)


def _switch_without_waiting(name: str) -> bool:
    """The value this process knows, read again by a thread of its own when it is due; only the
    first read in a process waits for it."""
    known = _known.get(name)
    if known is None:
        return _switch(name)
    if time.monotonic() >= known[0]:
        with _lock:
            start = name not in _refreshing
            _refreshing.add(name)
        if start:
            threading.Thread(target=_refresh, args=(name, known[1], _generation), daemon=True).start()
    return known[1]


def _refresh(name: str, last: bool, generation: int) -> None:
    try:
        _read(name, last, generation)
    except Exception:  # nothing waits on this thread: say why, keep the last value
        logger.exception("switch %s not refreshed", name)
        _remember(name, last, generation)
    finally:
        connections.close_all()  # this thread's own connection, if the read opened one
        with _lock:
            _refreshing.discard(name)


def write_shape() -> int:
    return 2 if _switch(WRITE_V2) else 1


def read_shape() -> int:
    return 2 if _switch_without_waiting(READ_V2) else 1


def forget() -> None:
    """Drop the values this process keeps (a test flips a switch and reads at once)."""
    global _generation
    with _lock:
        _known.clear()
        _generation += 1
