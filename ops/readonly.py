"""Read-only mode: a switch an operator flips (admin, or ``manage.py readonly on|off``) to pause
every write from outside — the write APIs answer 503, the admin refuses catalog edits — while
customer reads go on and the relay keeps draining what was already committed.

The switch is a django-waffle ``Switch`` row in Postgres, cached in Redis (the ``flags`` cache,
``FLAG_CACHE_SECONDS``) so that a request pays no query; saving it through the admin or the command
clears that cache at once.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from waffle import switch_is_active
from waffle.models import Switch

logger = logging.getLogger(__name__)

READ_ONLY_SWITCH = "read_only"


def is_read_only() -> bool:
    """Whether writes are paused. With Redis unreachable the switch is read from Postgres. With
    Postgres unreachable (and the switch not cached), off: the writes that need Postgres answer 503
    by themselves, and those that do not (carts, in DynamoDB) go on."""
    try:
        return switch_is_active(READ_ONLY_SWITCH)
    except (RedisError, ConnectionInterrupted) as exc:
        logger.warning("read-only switch read from Postgres: cache unavailable (%s)", exc)
    except DatabaseError as exc:
        logger.warning("read-only switch unreadable (%s): taken as off", exc)
        return False
    try:
        return Switch.objects.filter(name=READ_ONLY_SWITCH, active=True).exists()
    except DatabaseError as exc:
        logger.warning("read-only switch unreadable (%s): taken as off", exc)
        return False


def read_only_set(*, on: bool) -> None:
    """Turn read-only mode on or off (saving the switch clears its cached value)."""
    switch, _ = Switch.objects.get_or_create(
        name=READ_ONLY_SWITCH, defaults={"note": "Pauses every write API and catalog edits in the admin."}
    )
    if switch.active != on:
        switch.active = on
        switch.save()
