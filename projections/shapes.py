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
failure to read a switch keeps the last value known (shape 1 before any).
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from waffle import switch_is_active

logger = logging.getLogger(__name__)

WRITE_V2 = "product_document_v2_write"
READ_V2 = "product_document_v2_read"

_known: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


def _switch(name: str) -> bool:
    now = time.monotonic()
    known = _known.get(name)
    if known is not None and now < known[0]:
        return known[1]
    try:
        value = switch_is_active(name)
    except (RedisError, ConnectionInterrupted, DatabaseError) as exc:
        logger.warning("switch %s unreadable (%s); keeping its last value", name, exc)
        value = known[1] if known is not None else False
    with _lock:
        _known[name] = (now + settings.SHAPE_SWITCH_LOCAL_SECONDS, value)
    return value


def write_shape() -> int:
    return 2 if _switch(WRITE_V2) else 1


def read_shape() -> int:
    return 2 if _switch(READ_V2) else 1


def forget() -> None:
    """Drop the values this process keeps (a test flips a switch and reads at once)."""
    with _lock:
        _known.clear()
