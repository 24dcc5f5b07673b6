"""Real services for the suite: the test database (pytest-django), DynamoDB tables on the moto
server (or AWS) named with the test prefix, Redis keys under the test prefix, a Redis broker of
the suite's own (so that tests can stop it) and real Celery worker processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django_redis import get_redis_connection

from tests.services import Broker, Worker, database_url


@pytest.fixture(scope="session", autouse=True)
def broker(tmp_path_factory) -> Iterator[Broker]:
    from hybridsite.celery import app

    server = Broker(tmp_path_factory.mktemp("broker"))
    server.start()
    app.conf.broker_url = server.url
    if app._pool is not None:  # a producer pool made before this fixture points at the old URL
        app._pool.force_close_all()
        app._pool = None
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dynamodb_tables() -> None:
    from projections.tables import tables_ensure

    tables_ensure()


@pytest.fixture
def dynamodb(dynamodb_tables) -> None:
    """Empty projection tables for one test."""
    from projections.models import TABLES

    for model in TABLES:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)


@pytest.fixture
def redis_clean():
    """No cache keys of this test run before the test."""
    conn = get_redis_connection("default")
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    keys = list(conn.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        conn.delete(*keys)
    return conn


@pytest.fixture
def start_worker(transactional_db, dynamodb, redis_clean, broker, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Start real Celery workers (with beat) on the test database; extra env overrides settings."""
    workers: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker(
            tmp_path / f"worker{len(workers)}.log",
            {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": broker.url,
                **env,
            },
        )
        workers.append(worker)
        worker.start()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def worker(start_worker) -> Worker:
    return start_worker()
