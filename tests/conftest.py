"""Real services for the suite: the test database (pytest-django), DynamoDB tables on the moto
server (or AWS) named with the test prefix, Redis keys under the test prefix, and a real Celery
worker process for integration tests."""

from __future__ import annotations

import pytest
from django.conf import settings
from django_redis import get_redis_connection


@pytest.fixture(scope="session")
def dynamodb_tables(django_db_blocker):
    from projections.tables import tables_ensure

    tables_ensure()
    yield


@pytest.fixture
def dynamodb(dynamodb_tables):
    """Empty projection tables for one test."""
    from projections.models import TABLES

    for model in TABLES:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)
    yield


@pytest.fixture
def redis_clean():
    """No cache keys of this test run before the test."""
    conn = get_redis_connection("default")
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    keys = list(conn.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        conn.delete(*keys)
    yield conn
