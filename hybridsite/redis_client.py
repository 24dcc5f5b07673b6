"""The Redis connection and scripts that every part of the site shares: the document cache, rate
limits, the token cache, metrics. Below the apps, so that the project's base uses them without
importing an app."""

from __future__ import annotations

from functools import lru_cache

from django_redis import get_redis_connection
from redis import Redis
from redis.commands.core import Script


def client() -> Redis:
    """The cache's Redis connection (django-redis keeps one pool per process)."""
    return get_redis_connection("default")


@lru_cache(maxsize=32)
def script(client: Redis, source: str) -> Script:
    """A Lua script bound to a client, made once (it hashes its source) and reused."""
    return client.register_script(source)
