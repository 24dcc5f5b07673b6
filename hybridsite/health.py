"""GET /api/health/: the overall state for anyone; each dependency's state, latency and error, and
each region's replication lag, for staff and monitoring (HEALTH_TOKEN).

Anonymous answers come from a per-process snapshot at most HEALTH_CACHE_SECONDS old: a load
balancer polling every second costs one broker connection and one DynamoDB call per interval, not
per request, and the error texts (hosts, ports, database users) are never shown to it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from botocore.config import Config
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_redis import get_redis_connection
from kombu import Connection
from pynamodb.connection import Connection as DynamoDBConnection
from pynamodb.models import Model

from hybridsite import dynamodb, heartbeat

from .clients import client_bucket
from .errors import error_body
from .ratelimit import hit


def _postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    get_redis_connection("default").ping()


@lru_cache(maxsize=1)
def _single_attempt_client(dynamodb: DynamoDBConnection) -> Any:
    """The models' endpoint and credentials without retries: a hanging endpoint costs one timeout, not two.
    (A botocore client: its methods are made at run time, so it is typed ``Any``.)"""
    meta = _any_table().Meta
    config = Config(
        connect_timeout=meta.connect_timeout_seconds,
        read_timeout=meta.read_timeout_seconds,
        retries={"total_max_attempts": 1},
    )
    return dynamodb.session.create_client("dynamodb", dynamodb.region, endpoint_url=dynamodb.host, config=config)


def _any_table() -> type[Model]:
    """The first installed table: every table has the endpoint, region and credentials of settings
    (``dynamodb.table_meta``), so any one of them reaches DynamoDB as all do."""
    return dynamodb.all_tables()[0]


def _dynamodb() -> None:
    _single_attempt_client(dynamodb.connection(_any_table())).list_tables(Limit=1)


def _broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1) as conn:
        conn.ensure_connection(max_retries=0)


CHECKS: dict[str, Callable[[], None]] = {
    "postgres": _postgres,
    "redis": _redis,
    "dynamodb": _dynamodb,
    "broker": _broker,
}


def check_all() -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"status": "up"}
        except Exception as exc:  # any failure means "down"; the reason is reported, not raised
            results[name] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
        results[name]["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return results


class _Snapshot:
    """The last results of ``check_all`` in this process; one thread refreshes, the others read."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, object]] | None = None
        self.taken_at = 0.0
        self.lock = threading.Lock()

    def get(self, max_age: float) -> dict[str, dict[str, object]]:
        last = self.results
        if last is None:
            self.lock.acquire()
        elif time.monotonic() - self.taken_at < max_age:
            return last
        elif not self.lock.acquire(blocking=False):
            return last  # another thread is checking: answer with the last known state
        try:
            if self.results is None or time.monotonic() - self.taken_at >= max_age:
                self.results = check_all()
                self.taken_at = time.monotonic()
            return self.results
        finally:
            self.lock.release()

    def clear(self) -> None:
        with self.lock:
            self.results = None


snapshot = _Snapshot()


def _may_see_details(request: HttpRequest) -> bool:
    token = settings.HEALTH_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and secrets.compare_digest(header[7:].encode(), token.encode()):
        return True
    # Only a request carrying a session cookie can be staff: anonymous polls cost no query.
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        return bool(request.user.is_active and request.user.is_staff)
    return False


def _summary(services: dict[str, dict[str, object]]) -> tuple[list[str], int]:
    down = sorted(name for name, result in services.items() if result["status"] != "up")
    return down, 503 if down else 200


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    retry_after = hit("health", client_bucket(request), settings.THROTTLE_RATES["health"])
    if retry_after:
        response = JsonResponse(error_body("throttled", "Too many requests."), status=429)
        response["Retry-After"] = str(retry_after)
        return response
    if _may_see_details(request):
        services = check_all()
        down, status = _summary(services)
        regions = heartbeat.regions_state()
        return JsonResponse(
            {"status": "down" if down else "ok", "down": down, "services": services, "regions": regions}, status=status
        )
    down, status = _summary(snapshot.get(settings.HEALTH_CACHE_SECONDS))
    return JsonResponse({"status": "down" if down else "ok"}, status=status)
