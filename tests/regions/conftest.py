"""Two regions in one test process. The suite's own DynamoDB Local and Redis are the home region's;
beside them run a second DynamoDB Local and a second Redis, the replica region's (``us-east-1``),
with every table of the suite's prefix. ``regions`` (per test) gives:

- ``regions.replication(models)``: the replication stand-in (devtools/replication.py) between the
  two regions' tables (every app table, or ``models``'), started; stopped after the test.
- ``regions.replica()``: the test process acting as the replica region inside the block — its
  settings (``HYBRIDSITE_REGION``, ``HOME_REGION``, ``REGIONS``, the per-region endpoints and
  URLs, ``DYNAMODB_ENDPOINT``, ``REDIS_URL``, ``CACHES``), every table's connection, the Redis
  clients and the read path's breakers, all put back on leaving. ``dynamodb=`` and
  ``home_dynamodb=`` put another endpoint (a proxy a test takes down) in front of either region's
  DynamoDB.
- ``regions.home()``: the home region of the same two-region site (the suite's services, with the
  replica named), for what the home region does about the other (``projections_check --region``).

Each test starts with both regions' tables and Redis empty. Tests need two DynamoDB Local
processes: mark them ``aws_engine(reason=...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from pynamodb.models import Model
from redis import Redis

from devtools.embedded import start_dynamodb_local, start_redis, stop_dynamodb_local, stop_redis
from devtools.replication import Replicator
from hybridsite.dynamodb import all_tables, client, reset_connection, tables_ensure
from projections.readpath import dynamodb_breaker, home_dynamodb_breaker, redis_breaker

HOME, REPLICA = "eu-west-1", "us-east-1"
"""The suite's region (``HYBRIDSITE_REGION``'s default) is the home region."""

_REPLICA_ENDPOINT = pytest.StashKey[str]()


@pytest.fixture(scope="session", name="replica_endpoint")
def second_dynamodb_local(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``replica_endpoint``: a second DynamoDB Local, in memory, beside the suite's (the home side).
    One per run, whichever module asks first (tests/devtools/test_replication.py imports it)."""
    stash = request.config.stash
    if _REPLICA_ENDPOINT in stash:
        yield stash[_REPLICA_ENDPOINT]
        return
    directory: Path = tmp_path_factory.mktemp("dynamodb-replica")
    stash[_REPLICA_ENDPOINT] = start_dynamodb_local(directory, in_memory=True, short_lived=True)["DYNAMODB_ENDPOINT"]
    try:
        yield stash[_REPLICA_ENDPOINT]
    finally:
        del stash[_REPLICA_ENDPOINT]
        stop_dynamodb_local(directory)


@pytest.fixture(scope="session")
def replica_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second Redis (as the embedded one starts), the replica region's: its URL."""
    directory: Path = tmp_path_factory.mktemp("redis-replica")
    try:
        yield start_redis(directory)["REDIS_URL"]
    finally:
        stop_redis(directory)


@contextmanager
def tables_at(endpoint: str, region: str) -> Iterator[None]:
    """Every app table reached at ``endpoint`` as ``region``'s inside the block. PynamoDB keeps one
    connection per model, built from ``Meta`` on first use: dropped on entering and on leaving."""
    saved = {model: (model.Meta.host, model.Meta.region) for model in all_tables()}
    for model in saved:
        model.Meta.host, model.Meta.region = endpoint, region
        reset_connection(model)
    try:
        yield
    finally:
        for model, (host, old_region) in saved.items():
            model.Meta.host, model.Meta.region = host, old_region
            reset_connection(model)


def _streamed(model: type[Model]) -> bool:
    return bool(getattr(model.Meta, "stream_view_type", None))


@pytest.fixture(scope="session")
def replica_tables(dynamodb_tables, replica_endpoint: str) -> None:
    """Every app table in the replica region too."""
    with tables_at(replica_endpoint, REPLICA):
        tables_ensure()


def _undeclared_streams_off() -> None:
    """The stand-in turns streams on where a table has none: turned off again on the home side after
    each test, since the suite's later tests (the stack's tables compared with the real ones) see the
    home tables as ``projections_setup`` made them."""
    for model in all_tables():
        tables = client(model)
        description = tables.describe_table(TableName=model.Meta.table_name)["Table"]
        if not _streamed(model) and (description.get("StreamSpecification") or {}).get("StreamEnabled"):
            tables.update_table(TableName=model.Meta.table_name, StreamSpecification={"StreamEnabled": False})


def _reset_breakers() -> None:
    for breaker in (redis_breaker, dynamodb_breaker, home_dynamodb_breaker):
        breaker.reset()


@dataclass
class Regions:
    """The two regions of the site under test (see the module's docstring)."""

    home_endpoint: str
    replica_endpoint: str
    home_redis: str
    replica_redis: str
    replicators: list[Replicator] = field(default_factory=list)

    def replication(self, models: list[type[Model]] | None = None, **options: Any) -> Replicator:
        """The stand-in between the two regions' tables of ``models`` (default: every app table),
        started (``options``: ``delay_seconds``, ``poll_seconds``); stopped after the test."""
        tables = [model.Meta.table_name for model in (models or all_tables())]
        stand_in = Replicator(
            {HOME: self.home_endpoint, REPLICA: self.replica_endpoint},
            prefix=settings.DYNAMODB_TABLE_PREFIX, tables=tables, **options,
        )
        self.replicators.append(stand_in)
        return stand_in.start()

    def _site(self, region: str, dynamodb_endpoints: dict[str, str], redis_url: str) -> override_settings:
        caches = {name: {**cache, "LOCATION": redis_url} for name, cache in settings.CACHES.items()}
        return override_settings(
            HYBRIDSITE_REGION=region, AWS_REGION=region, HOME_REGION=HOME, REGIONS=[HOME, REPLICA],
            DYNAMODB_REGION_ENDPOINTS=dynamodb_endpoints,
            REDIS_REGION_URLS={HOME: self.home_redis, REPLICA: self.replica_redis},
            DYNAMODB_ENDPOINT=dynamodb_endpoints[region], REDIS_URL=redis_url, CACHES=caches,
        )

    @contextmanager
    def replica(self, *, dynamodb: str | None = None, home_dynamodb: str | None = None) -> Iterator[None]:
        """The test process as the replica region inside the block (Django's ``CACHES`` changed:
        its cache handlers, so every Redis client, are built again)."""
        endpoints = {HOME: home_dynamodb or self.home_endpoint, REPLICA: dynamodb or self.replica_endpoint}
        _reset_breakers()
        try:
            with self._site(REPLICA, endpoints, self.replica_redis), tables_at(endpoints[REPLICA], REPLICA):
                yield
        finally:
            _reset_breakers()

    @contextmanager
    def home(self) -> Iterator[None]:
        """The test process as the home region of this two-region site (its own services)."""
        with self._site(HOME, {HOME: self.home_endpoint, REPLICA: self.replica_endpoint}, self.home_redis):
            yield

    def replica_redis_client(self) -> Redis:
        return Redis.from_url(self.replica_redis)


@pytest.fixture
def regions(dynamodb, redis_clean, replica_tables, replica_endpoint: str, replica_redis: str) -> Iterator[Regions]:
    """Both regions' tables and Redis empty; the stand-ins a test starts, stopped after it."""
    two = Regions(settings.DYNAMODB_ENDPOINT, replica_endpoint, settings.CACHES["default"]["LOCATION"], replica_redis)
    with tables_at(replica_endpoint, REPLICA):
        for model in all_tables():
            with model.batch_write() as batch:
                for item in model.scan():
                    batch.delete(item)
    redis = two.replica_redis_client()
    redis.flushdb()
    redis.close()
    try:
        yield two
    finally:
        for stand_in in two.replicators:
            stand_in.stop()
        _undeclared_streams_off()
