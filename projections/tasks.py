"""Celery tasks: thin wrappers with explicit names, late acks and bounded retries."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from hybridsite import cache_keys

from . import relay, search

logger = logging.getLogger(__name__)


@shared_task(
    name="projections.relay_outbox",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=5,
    ignore_result=True,
)
def relay_outbox() -> None:
    """Drain the outbox. Kicked after commits and by beat every few seconds (the guarantee)."""
    try:
        get_redis_connection("default").delete(cache_keys.relay_kick())
    except RedisError:
        pass
    result = relay.drain(backlog=kick_relay)  # a backlog: an idle worker process joins in
    if result.stopped_by is relay.StopReason.EMPTY:
        relay.forget_old_floors()
    if result.rows:
        logger.info(
            "relay: %d rows, %d aggregates projected, %d failed, %d dead (%s)",
            result.rows, result.projected, result.failed, result.dead, result.stopped_by,
        )
    if result.stopped_by is relay.StopReason.TIME:
        relay_outbox.delay()


def kick_relay() -> None:
    """Queue one relay task unless one is already queued (a Redis flag; without Redis, queue anyway)."""
    try:
        queued = not get_redis_connection("default").set(cache_keys.relay_kick(), 1, nx=True, ex=30)
    except RedisError:
        queued = False
    if not queued:
        try:
            relay_outbox.delay()
        except Exception as exc:  # broker down: the beat sweep picks the rows up when it is back
            logger.warning("relay kick not queued: %s", exc)


@shared_task(name="projections.search_refresh", acks_late=True, ignore_result=True)
def search_refresh(text: str, token: str) -> None:
    """Recompute a stale search (``text``: its canonical parameters) and let go of its lock. Not
    retried: a lost refresh only lets the entry age to its hard expiry."""
    search.refresh(text, token)
