"""The hot read's process-local layer, kept coherent by Redis itself (``HOT_READ_LOCAL_CACHE``).

Server-assisted client-side caching: one connection per process speaks RESP3 and turns on
``CLIENT TRACKING ... BCAST PREFIX <documents>``, so Redis pushes the name of every document entry
that changes (written, deleted, expired, evicted, flushed) to every process holding a copy. A
product hit is then answered from this process's memory without a Redis round trip. What keeps
that correct:

- **Coherence.** A copy is dropped when its key's invalidation arrives. Before a copy is served,
  invalidations already delivered to this process's socket are read (a non-blocking poll, no round
  trip), so the window in which two processes may answer different versions is the delivery of one
  push message from Redis to this host (measured by ``make bench``; see docs/performance/hot-read.md).
  A copy is kept only when no invalidation arrived between the read that fetched it and its
  keeping (otherwise a read racing a write could keep the older version for good).
- **Connection loss.** Tracking's contract: a client that loses its tracking connection may have
  missed invalidations, so it forgets every copy, serves none until the connection and tracking
  are back, and only keeps copies read after that. A heartbeat finds a dead connection that no
  error reported. A Redis restart or a FLUSHALL reads as a loss or an invalidation of everything.
- **Floors.** Redis never holds an entry below its key's version floor (``cache._STORE`` deletes
  it), and that deletion invalidates the copy: a copy is never below the floor, and no floor check
  needs a round trip. Besides, versions in a process only rise: the layer remembers the highest
  version it kept per key (longer than the copies, across losses), keeps no copy below it, and a
  Redis entry below it is handed to the reader as a miss at that floor.
- **min_version / ETag.** A copy below a client's ``min_version`` or its If-None-Match version is
  not served from here (the Redis path decides); a copy's response is built as the Redis hit's is (ETag, 304).
- **Rate limits.** A hit served here counts the client's request in this process and sends the
  counts to Redis once every ``HOT_READ_LOCAL_COUNT_BATCH`` local hits (one pipelined round trip,
  the read metrics' hit counter with them). A client is refused (by the Redis path, counted
  exactly) as soon as this process's known count reaches its limit; across P processes a client
  may exceed its limit by up to P × the batch per window. This, and the window above, are why the
  layer is off unless asked for.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

import redis
from django.conf import settings
from redis.exceptions import RedisError

from hybridsite import cache_keys

from . import cache, metrics
from .reader import Counted
from .readpath import Result, Throttle

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0  # a PING when nothing arrived for this long; no answer within twice it: lost
RECONNECT_SECONDS = 0.2
FLOORS_PER_ENTRY = 10  # floors outlive copies: ten remembered per copy the layer may hold

# KEYS: the client's rate-limit counter. ARGV: requests to add, window ms. As the hot read counts one.
_COUNT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return count
"""


class LocalLayer:
    """Copies of document entries in this process, and the tracking connection that keeps them."""

    def __init__(self, url: str, entries: int, batch: int) -> None:
        self.url = url
        self.max_entries = entries
        self.batch = batch
        # One lock guards the copies and the connection's reads: the listener thread and a request
        # thread never parse the connection at once, and a request never waits for it (see get).
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Result] = OrderedDict()
        self._floors: OrderedDict[str, int] = OrderedDict()
        self._epoch = 0  # counts invalidations, losses and reconnections
        self._conn: Any = None  # a redis Connection in RESP3 mode with tracking on, or None
        self._client: redis.Redis | None = None
        self._closed = False
        # Requests counted here and not yet in Redis: rate key -> [known count, pending, ends at].
        self._counts: dict[str, list[float]] = {}
        self._pending_hits = 0
        threading.Thread(target=self._listen, name="hot-read-tracking", daemon=True).start()

    # --- the request thread ------------------------------------------------------------------

    def get(self, key: str, throttle: Throttle | None, min_version: int) -> Result | None:
        """This process's copy of ``key``, counted against the client's limit; None when there is
        none, it is below ``min_version``, the client may be at its limit, or the connection is
        busy or lost (the Redis path then answers)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if not self._drained():
                return None
            result = self._entries.get(key)
            if result is None or result.version < min_version:
                return None
            if throttle is not None and not self._admit(throttle):
                return None
            self._entries.move_to_end(key)
            self._pending_hits += 1
            due = self._pending_hits >= self.batch
        finally:
            self._lock.release()
        if due:
            self._flush_counts()
        return result

    def epoch(self) -> int | None:
        """Taken before a Redis read whose entry may be kept; None while tracking is not on."""
        return self._epoch if self._conn is not None else None

    def after_read(self, key: str, counted: Counted, throttle: Throttle | None, epoch: int | None) -> Counted:
        """Learn from the hot read's round trip: the client's count, and the entry (kept when
        nothing was invalidated since ``epoch``). An entry below this process's floor for the key
        is handed on as a miss at that floor: versions in a process only rise."""
        count, raw, floor = counted
        process_floor = self._floors.get(key, 0)  # a dict read: no lock needed
        entry = cache.decode(raw) if raw is not None else None
        if self._lock.acquire(blocking=False):  # busy: nothing learnt, nothing kept this time
            try:
                state = self._counts.get(throttle.key()) if throttle is not None else None
                if state is not None:
                    state[0] = max(state[0], count)
                if (entry is not None and entry.status == 200 and entry.version >= process_floor
                        and epoch is not None and self._drained() and self._epoch == epoch):
                    self._keep(key, Result.of(entry, "local"))
            finally:
                self._lock.release()
        if entry is None:
            return counted if floor is None or floor >= process_floor else (count, None, process_floor)
        if entry.version < process_floor:
            metrics.incr("reader.local.below_process_floor")
            return count, None, process_floor
        return counted

    def _keep(self, key: str, result: Result) -> None:
        self._entries[key] = result
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        self._floors[key] = max(self._floors.get(key, 0), result.version)
        self._floors.move_to_end(key)
        while len(self._floors) > self.max_entries * FLOORS_PER_ENTRY:
            self._floors.popitem(last=False)

    def _drained(self) -> bool:
        """Read every invalidation already delivered (lock held); False when tracking is not on."""
        conn = self._conn
        if conn is None:
            return False
        try:
            # The parser's poll, not the connection's: that one reconnects a closed connection
            # silently, and a new connection has no tracking.
            while conn._parser.can_read(timeout=0):
                conn.read_response(push_request=True)
        except (RedisError, OSError, TypeError) as exc:  # TypeError: its socket closed meanwhile
            self._lost(f"while reading invalidations: {exc}")
            return False
        return True

    def _admit(self, throttle: Throttle) -> bool:
        """Count one request of the client here (lock held); False when it may be at its limit."""
        key = throttle.key()
        state = self._counts.get(key)
        if state is None:
            state = self._counts[key] = [0, 0, time.monotonic() + throttle.retry_after()]
        if state[0] + state[1] + 1 > throttle.limit:
            return False
        state[1] += 1
        return True

    def _flush_counts(self) -> None:
        """Send the pending counts and hits to Redis in one round trip; best effort, as every count
        (when it fails, this process still refuses a client at the count it knows)."""
        with self._lock:
            now = time.monotonic()
            sent = [(key, state, int(state[1])) for key, state in self._counts.items() if state[1]]
            for _, state, n in sent:
                state[0] += n
                state[1] -= n
            self._counts = {key: state for key, state in self._counts.items() if state[2] > now}
            hits, self._pending_hits = self._pending_hits, 0
        try:
            client = cache.client()
            script = cache.script(client, _COUNT)
            pipe = client.pipeline(transaction=False)
            for key, state, n in sent:
                script(keys=[key], args=[n, max(1, int((state[2] - now) * 1000))], client=pipe)
            pipe.hincrby(cache_keys.metrics(), "reader.hit", hits)
            pipe.hincrby(cache_keys.metrics(), "reader.hit.local", hits)
            answers = pipe.execute(raise_on_error=False)
        except RedisError as exc:
            logger.debug("local hit counts dropped: %s", exc)
            return
        with self._lock:
            for (_, state, _), total in zip(sent, answers):
                if not isinstance(total, Exception):
                    state[0] = max(state[0], int(total))

    # --- the tracking connection ------------------------------------------------------------

    def _invalidate(self, message: list[Any]) -> None:
        """A push from Redis (lock held by whoever reads): these keys changed, or every key (None)."""
        keys = message[1]
        self._epoch += 1
        if keys is None:
            self._entries.clear()
            return
        for key in keys:
            self._entries.pop(key.decode() if isinstance(key, bytes) else key, None)

    def _lost(self, why: str) -> None:
        """Tracking's contract on a lost connection: forget every copy (lock held)."""
        if self._conn is not None:
            logger.warning("hot-read local layer: tracking connection lost (%s); copies dropped", why)
            try:
                self._conn.disconnect()
            except (RedisError, OSError):
                pass
        self._conn = None
        self._entries.clear()
        self._epoch += 1

    def _connect(self) -> Any:
        # The client is kept with its connection: a client collected closes its pool's connections.
        self._client = client = redis.Redis.from_url(
            self.url, protocol=3, socket_timeout=HEARTBEAT_SECONDS * 2, socket_connect_timeout=HEARTBEAT_SECONDS * 2
        )
        conn = client.connection_pool.get_connection()
        # redis-py's one hook for RESP3 invalidation pushes on a connection it does not cache for.
        conn._parser.set_invalidation_push_handler(self._invalidate)
        conn.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", cache_keys.document(""))
        conn.read_response()
        return conn

    def _listen(self) -> None:
        """Keep the tracking connection: read its pushes as they come, PING when it is quiet,
        reconnect after a loss."""
        while not self._closed:
            try:
                conn = self._connect()
            except (RedisError, OSError) as exc:  # Redis down, or one without CLIENT TRACKING (< 6.0)
                logger.debug("hot-read local layer: tracking not on yet: %s", exc)
                time.sleep(RECONNECT_SECONDS)
                continue
            with self._lock:
                self._entries.clear()
                self._epoch += 1
                self._conn = conn
            while not self._closed and self._conn is conn:
                try:
                    readable = conn._parser.can_read(timeout=HEARTBEAT_SECONDS)
                    with self._lock:
                        if self._conn is not conn:
                            break
                        if readable:
                            self._drained()
                        else:
                            conn.send_command("PING")
                            conn.read_response()
                except Exception as exc:  # noqa: BLE001 (whatever broke it, the copies go and it reconnects)
                    with self._lock:
                        if self._conn is conn:
                            self._lost(str(exc))
            if not self._closed:
                time.sleep(RECONNECT_SECONDS)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            self._entries.clear()
        if conn is not None:
            conn.disconnect()

    # --- for tests and the bench -------------------------------------------------------------

    def live(self) -> bool:
        return self._conn is not None

    def copies(self) -> dict[str, int]:
        """The copies held, by key, with their versions."""
        with self._lock:
            self._drained()
            return {key: result.version for key, result in self._entries.items()}


_layer: LocalLayer | None = None
_layer_pid = 0
_layer_lock = threading.Lock()


def layer() -> LocalLayer | None:
    """This process's layer when ``HOT_READ_LOCAL_CACHE`` is on (made on first use in a process:
    a forked worker starts its own connection and thread); None when it is off."""
    global _layer, _layer_pid
    if not settings.HOT_READ_LOCAL_CACHE:
        return None
    if _layer is not None and _layer_pid == os.getpid():
        return _layer
    with _layer_lock:
        if _layer is None or _layer_pid != os.getpid():
            _layer = LocalLayer(
                settings.CACHES["default"]["LOCATION"], settings.HOT_READ_LOCAL_ENTRIES,
                settings.HOT_READ_LOCAL_COUNT_BATCH,
            )
            _layer_pid = os.getpid()
    return _layer


def reset() -> None:
    """Close this process's layer (tests turn the setting on and off)."""
    global _layer
    with _layer_lock:
        if _layer is not None and _layer_pid == os.getpid():
            _layer.close()
        _layer = None
