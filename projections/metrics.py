"""The pipeline's measurements. Counters and projection-lag samples in Redis: cheap, shared by every
process and host, best effort (``projections_stats`` prints them, ``/metrics`` exports the counters);
and the projection lag as a Prometheus histogram, which the SLO page reads.

Metrics never fail the work they measure: a Redis error is logged and dropped.
"""

from __future__ import annotations

import logging

from django_redis import get_redis_connection
from prometheus_client import Histogram
from redis.exceptions import RedisError

from hybridsite import cache_keys

logger = logging.getLogger(__name__)
LAG_SAMPLES_KEPT = 10_000
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
LAG = Histogram(
    "hybridsite_projection_lag_seconds",
    "Commit in Postgres to the document written in DynamoDB, from the snapshot's own commit time.",
    buckets=LAG_BUCKETS,
)


def incr(name: str, amount: int = 1) -> None:
    incr_many({name: amount})


def incr_many(amounts: dict[str, int]) -> None:
    """Several counters in one round trip; zero amounts are skipped."""
    amounts = {name: amount for name, amount in amounts.items() if amount}
    if not amounts:
        return
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for name, amount in amounts.items():
            pipe.hincrby(cache_keys.metrics(), name, amount)
        pipe.execute()
    except RedisError as exc:
        logger.debug("metrics %s dropped: %s", sorted(amounts), exc)


def observe_lag(milliseconds: list[float]) -> None:
    if not milliseconds:
        return
    for ms in milliseconds:
        LAG.observe(ms / 1000)
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.lpush(cache_keys.lag_samples(), *(f"{ms:.3f}" for ms in milliseconds))
        pipe.ltrim(cache_keys.lag_samples(), 0, LAG_SAMPLES_KEPT - 1)
        pipe.execute()
    except RedisError as exc:
        logger.debug("lag samples dropped: %s", exc)


def snapshot() -> dict[str, int]:
    raw = get_redis_connection("default").hgetall(cache_keys.metrics())
    return {key.decode(): int(value) for key, value in sorted(raw.items())}


def lag_samples() -> list[float]:
    return [float(v) for v in get_redis_connection("default").lrange(cache_keys.lag_samples(), 0, -1)]


def reset() -> None:
    get_redis_connection("default").delete(cache_keys.metrics(), cache_keys.lag_samples())
