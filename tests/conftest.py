"""Real services for the suite: the test database (pytest-django), DynamoDB tables on DynamoDB
Local, moto server or AWS (``settings.DYNAMODB_ENGINE``) named with the test prefix, Redis keys
under the test prefix, a Redis broker of the suite's own (so that tests can stop it) and real
Celery worker processes."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django_redis import get_redis_connection

from catalog import services
from catalog.models import Category, Product
from tests.services import Broker, Listener, TcpProxy, ThrottlingProxy, Web, Worker, database_url


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the item, so fixtures can tell at teardown whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


DYNAMODB_FIXTURES = frozenset({"dynamodb", "dynamodb_tables"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``aws_engine(reason=...)`` are skipped on moto, which lacks what they need.
    A test that needs DynamoDB's tables (directly or through another fixture) is marked
    ``dynamodb``: CI runs those on the second engine, where the others would repeat themselves."""
    for item in items:
        if DYNAMODB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dynamodb)
        marker = item.get_closest_marker("aws_engine")
        if marker is None:
            continue
        reason = marker.kwargs.get("reason")
        if not reason:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.aws_engine needs reason=...")
        if settings.DYNAMODB_ENGINE == "moto":
            item.add_marker(pytest.mark.skip(reason=f"moto lacks it: {reason}"))


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


@pytest.fixture(scope="session", autouse=True)
def static_files() -> None:
    """The production storage (hashed names from a manifest) needs `collectstatic` before any page
    renders, as under `make run`."""
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def projector_threads(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Relay threads of this process hold their own connections: close them before the test
    database is dropped."""
    yield
    from projections.relay import stop_projector_threads

    with django_db_blocker.unblock():
        stop_projector_threads()


@pytest.fixture(scope="session")
def dynamodb_tables() -> None:
    from hybridsite.dynamodb import tables_ensure

    tables_ensure()


@pytest.fixture
def dynamodb(dynamodb_tables) -> None:
    """Empty projection tables for one test."""
    from hybridsite.dynamodb import all_tables

    for model in all_tables():
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)


@pytest.fixture
def flags() -> Iterator[None]:
    """Switches start unset and end forgotten: waffle's cached values (the test's database is
    rolled back under them) and the values this process keeps for the hot read."""
    from django.core.cache import caches

    from projections import shapes

    caches["flags"].delete_pattern("*")
    shapes.forget()
    yield
    caches["flags"].delete_pattern("*")
    shapes.forget()


@pytest.fixture
def fresh_streams(dynamodb) -> None:
    """Every write-back table created again: new streams holding only this test's records (the
    records of earlier tests name users this test's database never had)."""
    from hybridsite.dynamodb import table_ensure
    from writeback import registry

    for writeback in registry.registered():
        writeback.model.delete_table()
        table_ensure(writeback.model)


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
def processes(request, transactional_db, dynamodb, redis_clean, broker, tmp_path) -> Iterator[list[Worker]]:
    """The worker and listener processes a test starts, stopped after it. When the test fails, the
    end of each one's log is printed with the failure."""
    started: list[Worker] = []
    yield started
    for process in started:
        process.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for process in started:
            tail = process.log_path.read_text(errors="replace").splitlines()[-120:]
            print(f"--- end of {process.log_path.name} ---", *tail, sep="\n")


def _process_env(broker: Broker, env: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker.url,
        **env,
    }


@pytest.fixture
def start_worker(processes, broker, tmp_path) -> Callable[..., Worker]:
    """Start real Celery workers (with beat) on the test database; extra env overrides settings."""

    def start(beat: bool = True, **env: str) -> Worker:
        worker = Worker(tmp_path / f"worker{len(processes)}.log", _process_env(broker, env), beat=beat)
        processes.append(worker)
        worker.start()
        return worker

    return start


@pytest.fixture
def start_listener(processes, broker, tmp_path) -> Callable[..., Listener]:
    """Start ``outbox_listen`` on the test database; extra env overrides settings."""

    def start(**env: str) -> Listener:
        listener = Listener(tmp_path / f"listener{len(processes)}.log", _process_env(broker, env))
        processes.append(listener)
        listener.start()
        return listener

    return start


@pytest.fixture
def web(transactional_db, dynamodb_tables, tmp_path) -> Iterator[Web]:
    """The app under gunicorn on the test database and services, DEBUG off."""
    server = Web(
        tmp_path / "web.log",
        {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(), "DEBUG": "0"},
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker(start_worker) -> Worker:
    return start_worker()


def _local_endpoint() -> tuple[str, int]:
    if not settings.DYNAMODB_ENDPOINT:
        pytest.skip("needs a local DynamoDB endpoint (DYNAMODB_ENDPOINT) to put a proxy in front of")
    endpoint = urlsplit(settings.DYNAMODB_ENDPOINT)
    return endpoint.hostname or "127.0.0.1", endpoint.port or 80


@contextmanager
def _tables_at(monkeypatch, url: str) -> Iterator[None]:
    """PynamoDB caches one connection per model, built from ``Meta.host`` on first use: the cached
    connections are dropped now and at the end (monkeypatch restores the host after that)."""
    from hybridsite import dynamodb

    for model in dynamodb.all_tables():
        monkeypatch.setattr(model.Meta, "host", url)
        dynamodb.reset_connection(model)
    try:
        yield
    finally:
        for model in dynamodb.all_tables():
            dynamodb.reset_connection(model)


@pytest.fixture
def dynamodb_proxy(monkeypatch, dynamodb) -> Iterator[TcpProxy]:
    """Every projection table reached through a proxy that a test can take down (a dead endpoint)."""
    proxy = TcpProxy(*_local_endpoint())
    with _tables_at(monkeypatch, proxy.url):
        yield proxy
        proxy.down()


@pytest.fixture
def throttling_proxy(monkeypatch, dynamodb) -> Iterator[ThrottlingProxy]:
    """Every table reached through a proxy that a test can make throttle."""
    proxy = ThrottlingProxy(*_local_endpoint())
    with _tables_at(monkeypatch, proxy.url):
        yield proxy
        proxy.stop()


@pytest.fixture
def redis_proxy(settings, redis_clean) -> Iterator[TcpProxy]:
    """The cache reached through a proxy that a test can take down (Redis stopped)."""
    location = urlsplit(settings.CACHES["default"]["LOCATION"])
    proxy = TcpProxy(location.hostname, location.port or 6379)
    caches = {**settings.CACHES, "default": {**settings.CACHES["default"]}}
    caches["default"]["LOCATION"] = proxy.through(settings.CACHES["default"]["LOCATION"])
    settings.CACHES = caches
    yield proxy
    proxy.down()


@pytest.fixture(autouse=True)
def one_rate_window(monkeypatch) -> None:
    """Each test counts its rate limits in one fixed window (the middle of one, pinned): a test
    that expects the fourth request to get 429 must not see the minute turn after the third."""
    from hybridsite import ratelimit

    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_030.0)


@pytest.fixture(autouse=True)
def closed_breakers() -> None:
    """Each test starts with every dependency trusted again, no health snapshot, and no version
    served that an earlier test's Redis did not learn."""
    from hybridsite.health import snapshot
    from projections.readpath import dynamodb_breaker, redis_breaker, unlearned

    redis_breaker.reset()
    dynamodb_breaker.reset()
    snapshot.clear()
    unlearned.reset()


@pytest.fixture
def seed() -> int:
    """A new random seed each run, shown when the test fails; ``SEED=<n> make test ...`` replays it."""
    value = int(os.environ.get("SEED") or random.randrange(2**32))
    print(f"seed {value} (SEED={value} replays this run)")
    return value


@pytest.fixture
def tools(dynamodb, redis_clean) -> Category:
    """One category, empty tables and cache."""
    return Category.objects.create(slug="tools", name="Tools")


@pytest.fixture
def product(tools) -> Product:
    """SKU-1, a hammer at EUR 9.99, as Postgres holds it now (``version`` included); not projected."""
    product = services.product_create(sku="SKU-1", name="Hammer", category=tools)
    services.price_set(product=product, currency="EUR", amount=Decimal("9.99"))
    product.refresh_from_db()
    return product
