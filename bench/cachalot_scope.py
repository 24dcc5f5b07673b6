"""django-cachalot caches reads only inside the cachalot view; everywhere else it only invalidates.

cachalot decides per thread whether to answer a read from its cache (``cachalot_enabled`` in its
thread-local storage, True when unset). With that default, the projector, the relay, the backfill
and the Hybridsite views of every bench process would read catalog rows from cachalot's cache too,
and cachalot cannot see the rows Postgres triggers change (``Product.version``): projections would
go stale. So the default is flipped to off, and ``enabled()`` turns it on for one request. Writes
invalidate in every thread, as they would in a site running cachalot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cachalot import api, monkey_patch


class _OffUnlessEnabled(threading.local):
    cachalot_enabled = False
    disable_on_all = False


_storage = _OffUnlessEnabled()


def install() -> None:
    api.LOCAL_STORAGE = _storage
    monkey_patch.LOCAL_STORAGE = _storage


@contextmanager
def enabled() -> Iterator[None]:
    previous = _storage.cachalot_enabled
    _storage.cachalot_enabled = True
    try:
        yield
    finally:
        _storage.cachalot_enabled = previous
