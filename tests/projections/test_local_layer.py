"""The hot read's process-local layer (projections/local.py, ``HOT_READ_LOCAL_CACHE``): coherent
across real processes through Redis's client tracking, never below a floor, flushed when its
tracking connection is lost, and honouring min_version, ETags and rate limits."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest
from django.test import Client

from catalog import services
from catalog.models import Product
from devtools.net import wait_for
from hybridsite import cache_keys
from hybridsite.ratelimit import window
from projections import cache, local, readpath
from projections.projector import project, put_document
from projections.tables import ProductDocument
from tests.services import Web, database_url

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/products/SKU-1/"
KEY = cache_keys.document("product:SKU-1")


def answer(response) -> tuple[str, int]:
    return response["X-Served-From"], orjson.loads(response.content)["version"]


def reprice(product: Product, amount: str) -> int:
    """A new price committed and projected (DynamoDB and Redis refreshed); the new version."""
    services.price_set(product=product, currency="EUR", amount=Decimal(amount))
    return project("product", product.pk).version


@pytest.fixture
def layer_on(settings) -> Iterator[None]:
    settings.HOT_READ_LOCAL_CACHE = True
    local.reset()
    yield
    local.reset()


def served_locally(client: Client) -> tuple[str, int]:
    """Read until this process's layer answers (its tracking connection comes up in the background)."""
    seen: list[tuple[str, int]] = []
    wait_for(lambda: seen.append(answer(client.get(URL))) or seen[-1][0] == "local", 30, 0.02, "a local hit")
    return seen[-1]


class CountingClient(Client):
    """Counts the requests it makes: the rate limit's arithmetic needs them all."""

    made = 0

    def get(self, *args, **kwargs):
        self.made += 1
        return super().get(*args, **kwargs)


def test_a_local_hit_honours_min_version_etags_and_rate_limits(product, flags, redis_clean, layer_on, settings):
    settings.THROTTLE_ANON_PER_MINUTE = limit = 30
    settings.HOT_READ_LOCAL_COUNT_BATCH = batch = 5
    local.reset()
    client = CountingClient()
    _, version = served_locally(client)
    etag = client.get(URL)["ETag"]
    not_modified = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert (not_modified.status_code, not_modified["X-Served-From"]) == (304, "local")
    above = client.get(URL, {"min_version": version + 1})
    assert above.status_code == 409  # the copy is below what the client asked for: Redis, then 409
    before = client.made  # all admitted (fewer than the limit)
    statuses = [client.get(URL).status_code for _ in range(2 * limit)]
    assert set(statuses) == {200, 429} and statuses[-1] == 429
    admitted = before + statuses.count(200)
    # Never refused below the limit; one process admits less than one batch past it.
    assert limit <= admitted < limit + batch
    counted = int(redis_clean.get(cache_keys.rate_limit("anon", "127.0.0.1", window(60)[0])) or 0)
    assert counted >= limit  # the local hits reached Redis in batches, the refused requests one by one


def test_a_copy_is_never_below_the_floor_and_versions_in_a_process_only_rise(product, flags, redis_clean, layer_on):
    client = Client()
    _, version = served_locally(client)
    layer = local.layer()
    assert layer is not None and layer.copies() == {KEY: version}

    # A newer version committed and not projected: a client asking for it gets it from Postgres
    # (projected on the read path), which raises the floor and replaces the entry in Redis.
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    newer = Product.objects.get(pk=product.pk).version
    response = client.get(URL, {"min_version": newer})
    assert response.status_code == 200 and answer(response)[1] == newer
    assert int(redis_clean.get(cache_keys.floor("product:SKU-1"))) == newer
    assert all(v >= newer for v in layer.copies().values())  # the older copy went with its invalidation
    assert served_locally(client) == ("local", newer)

    # Redis loses the floor and is handed the older entry again (a restart fed by a late writer):
    # this process has served `newer`, and never answers below it.
    redis_clean.delete(cache_keys.floor("product:SKU-1"))
    old_body = orjson.dumps({**orjson.loads(client.get(URL).content), "version": version})
    redis_clean.set(KEY, cache.encode(version, 200, old_body))
    answers = [answer(client.get(URL)) for _ in range(5)]
    assert all(v == newer for _, v in answers), answers
    assert answers[0][0] == "dynamodb"


def test_a_copy_is_not_served_below_a_version_this_process_served_that_redis_did_not_learn(
    product, flags, redis_clean, layer_on
):
    """A projection wrote a newer version to DynamoDB and could not refresh Redis (so no
    invalidation came); a read whose store failed served the newer version from DynamoDB."""
    client = Client()
    _, version = served_locally(client)
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    newer = Product.objects.get(pk=product.pk).version
    body = orjson.dumps({**orjson.loads(client.get(URL).content), "version": newer})
    assert put_document(
        ProductDocument, {"pk": "SKU-1"}, owner=f"product#{product.pk}", version=newer, body=body,
        committed_at=None, projected_at=product.updated_at,
    )
    readpath.unlearned.served("product:SKU-1", newer)
    assert local.layer().copies() == {KEY: version}  # type: ignore[union-attr]
    assert answer(client.get(URL)) == ("dynamodb", newer)


def test_losing_the_tracking_connection_flushes_the_layer(product, flags, redis_proxy, layer_on):
    client = Client()
    served_locally(client)
    layer = local.layer()
    assert layer is not None and layer.live() and layer.copies()
    redis_proxy.down()  # Redis unreachable: every connection through the proxy is cut
    wait_for(lambda: not layer.live(), 10, 0.02, "the loss noticed")
    assert layer.copies() == {}
    assert client.get(URL)["X-Served-From"] != "local"
    redis_proxy.up()
    wait_for(lambda: layer.live(), 10, 0.05, "tracking back")
    assert served_locally(client)[0] == "local"


@pytest.fixture
def other_process(transactional_db, dynamodb_tables, tmp_path) -> Iterator[Web]:
    """The app under gunicorn with the local layer on: a second process with copies of its own."""
    server = Web(tmp_path / "web.log", {
        **os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(), "DEBUG": "0",
        "HOT_READ_LOCAL_CACHE": "1",
    })
    server.start()
    yield server
    server.stop()


def test_a_write_invalidates_the_other_process_copy(product, flags, redis_clean, other_process):
    """Another process serves its copy until the write's invalidation reaches it, then the new
    version and never the old one again. The delay between the write's acknowledgement and the
    other process's first answer at the new version is printed (docs/performance/hot-read.md)."""

    def read() -> tuple[str, int]:
        # Generous: the worker's first request loads the app, slow on a busy machine.
        with urllib.request.urlopen(other_process.url + URL, timeout=120) as response:
            return response.headers["X-Served-From"], orjson.loads(response.read())["version"]

    seen: list[tuple[str, int]] = []
    wait_for(lambda: seen.append(read()) or seen[-1][0] == "local", 30, 0.02, "the other process's local hit")
    before = seen[-1][1]
    delays = []
    for amount in ("10.00", "11.00", "12.00"):
        newer = reprice(product, amount)  # acknowledged by Redis when this returns
        written = time.perf_counter()
        answers: list[tuple[str, int]] = []
        wait_for(lambda: answers.append(read()) or answers[-1][1] >= newer, 30, 0, "it")  # noqa: B023 (called here)
        delays.append(((time.perf_counter() - written) * 1e6, len(answers) - 1))
        answers += [read() for _ in range(10)]
        versions = [v for _, v in answers]
        assert versions == sorted(versions) and versions[-1] == newer  # rises, and never falls back
        assert versions[0] >= before
        assert answers[-1][0] == "local"  # the new version is kept locally again
        before = newer
    print("\nthe other process's first answer at the new version, after the write (one HTTP request included),"
          f" and its answers at the old version before it: {[f'{d:.0f} µs, {n}' for d, n in delays]}")
