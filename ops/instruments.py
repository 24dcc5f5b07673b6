"""The Prometheus metrics the ops app records, and the names the SLO recorder reads.

Labels are bounded: a store, an operation kind, an outcome (``ok`` or an error class or code), a
route name, the layer that answered. Never a SKU, a slug or a user id.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
READ_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

STORE_CALLS = Histogram(
    "hybridsite_store_call_seconds",
    "Calls to Postgres, DynamoDB and Redis, by operation and outcome.",
    ["store", "op", "outcome"],
    buckets=STORE_BUCKETS,
)
READS = Histogram(
    "hybridsite_read_seconds",
    "Customer API reads as the client sees them, by route, the layer that answered (X-Served-From) "
    "and outcome (ok, rejected: a 4xx other than 404, error: a 5xx).",
    ["route", "served_from", "outcome"],
    buckets=READ_BUCKETS,
)
# A breaker lives in each web process: the highest state among the live ones.
BREAKER_OPEN = Gauge(
    "hybridsite_breaker_open", "1 while a read-path circuit breaker is open.", ["dependency"],
    multiprocess_mode="livemax",
)


@lru_cache(maxsize=2048)
def _store_child(store: str, op: str, outcome: str):
    """``labels()`` validates and locks on each call; the hot read calls Redis once per request."""
    return STORE_CALLS.labels(store, op, outcome)


def store_call_observe(store: str, op: str, outcome: str, seconds: float) -> None:
    _store_child(store, op, outcome).observe(seconds)


@lru_cache(maxsize=256)
def _read_child(route: str, served_from: str, outcome: str):
    return READS.labels(route, served_from, outcome)


def read_observe(route: str, served_from: str, status: int, seconds: float) -> None:
    """A 404 is an answer (a known absence); other 4xx are the caller's, 5xx are ours."""
    outcome = "error" if status >= 500 else "rejected" if status >= 400 and status != 404 else "ok"
    _read_child(route, served_from, outcome).observe(seconds)


def process_registry() -> CollectorRegistry:
    """Every process sharing PROMETHEUS_MULTIPROC_DIR added up (gunicorn's workers, Celery's), or
    this process alone without it."""
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    return registry
