"""Fixed-window rate limits in Redis for the endpoints off the hot path: the internal API, the admin
login, the health check. (The customer API counts its limit inside the read's own round trip.)

A limit fails open when Redis cannot be reached: these endpoints must keep working without the
cache, and Postgres, not Redis, holds what they change.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from . import cache_keys, redis_client
from .clients import client_bucket

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes named in settings: no cycle at run time
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
"""


# The clock of every fixed window, here and on the customer API (a test pins it, so that no count
# it makes straddles two windows).
clock = time.time


def window(seconds: int) -> tuple[int, int]:
    """The fixed window of ``seconds`` we are in: its number, and the whole seconds until it ends."""
    now = clock()
    return int(now // seconds), seconds - int(now % seconds)


def hit(scope: str, ident: str, limit: int, window_seconds: int = 60) -> int:
    """Count one request; returns 0 when it is allowed, else the seconds until the window ends."""
    number, seconds_left = window(window_seconds)
    key = cache_keys.rate_limit(scope, ident, number)
    try:
        count = int(redis_client.script(redis_client.client(), _COUNT)(keys=[key], args=[window_seconds * 1000]))
    except RedisError as exc:
        logger.warning("rate limit %s not counted: %s", scope, exc)
        return 0
    if count <= limit:
        return 0
    return seconds_left


class ScopedThrottle(BaseThrottle):
    """DRF throttle over ``hit``: per user when authenticated, per client bucket otherwise.

    Views name their ``throttle_scope``; the limit is ``settings.THROTTLE_RATES[scope]`` per minute.
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        scope = getattr(view, "throttle_scope", "default")
        user = getattr(request, "user", None)
        ident = f"user:{user.pk}" if user is not None and user.is_authenticated else client_bucket(request)
        self.retry_after = hit(scope, ident, settings.THROTTLE_RATES[scope])
        return not self.retry_after

    def wait(self) -> float | None:
        return self.retry_after
