"""GET /api/health/: each dependency's state and latency; 503 naming what is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache

from botocore.client import BaseClient
from botocore.config import Config
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_redis import get_redis_connection
from kombu import Connection
from pynamodb.connection import Connection as DynamoDBConnection

from projections.models import ProductDocument


def _postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    get_redis_connection("default").ping()


@lru_cache(maxsize=1)
def _single_attempt_client(dynamodb: DynamoDBConnection) -> BaseClient:
    """The models' endpoint and credentials without retries: a hanging endpoint costs one timeout, not two."""
    meta = ProductDocument.Meta
    config = Config(
        connect_timeout=meta.connect_timeout_seconds,
        read_timeout=meta.read_timeout_seconds,
        retries={"total_max_attempts": 1},
    )
    return dynamodb.session.create_client("dynamodb", dynamodb.region, endpoint_url=dynamodb.host, config=config)


def _dynamodb() -> None:
    _single_attempt_client(ProductDocument._get_connection().connection).list_tables(Limit=1)


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


@never_cache
@require_GET
def health(request) -> JsonResponse:
    services = check_all()
    down = sorted(name for name, result in services.items() if result["status"] != "up")
    body = {"status": "down" if down else "ok", "down": down, "services": services}
    return JsonResponse(body, status=503 if down else 200)
