"""Two regions under faults: 1,000 mixed catalog writes (most in the home region, staff price
changes through the replica region's internal API) and 250 cart writes in both regions, each
customer in their own region, while the replication stand-in is paused 5 s, the replica's
DynamoDB is unreachable 5 s, then the home region's 5 s, and a region's ``cache_follow`` is
SIGKILLed at random. A client reads products alternately in the two regions all along, sending the
highest ETag it saw. Afterwards ``projections_check --region R`` is clean in both regions (Postgres
against R's DynamoDB, R's Redis against R's DynamoDB), every cart is in Postgres once as its region
last wrote it and the same in both regions' DynamoDB, and the client never read a lower version.

Processes, all real: in the home region a Celery worker (relay and beat), the write-back consumer,
``cache_follow`` and gunicorn; in the replica region ``cache_follow`` and gunicorn; the stand-in
runs in this process. Each region's DynamoDB is reached through a proxy the test takes down.
Fixtures of its own: ``proxies`` (one per region's DynamoDB) and ``followed_anew`` (the followed
tables created again in both regions); the two regions come from tests/regions/conftest.py.
``SEED`` replays a run (the seed is printed when the test fails). The numbers (once 2,000 catalog
and 500 cart writes, 10 s outages) are scaled down to keep the run near 90 s.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connections
from rest_framework.authtoken.models import Token

from carts.models import CartCopy
from carts.tables import Cart
from catalog import services
from catalog.models import Category, OutboxEvent, Product, Warehouse
from devtools.launcher import Region, region_env
from devtools.net import wait_for
from devtools.replication import Replicator
from hybridsite.dynamodb import all_tables, table_ensure
from projections import follow
from tests.regions.conftest import HOME, REPLICA, Regions, tables_at
from tests.services import Broker, CacheFollower, StreamsConsumer, TcpProxy, Web, database_url

pytestmark = [
    pytest.mark.proof,
    pytest.mark.integration,
    pytest.mark.aws_engine(reason="two DynamoDB Local processes and the replication stand-in between them (Java)"),
]

CATALOG_WRITES = 1000
CART_WRITES = 250
PRODUCTS = 120
CUSTOMERS = 30  # half of them in each region
OUTAGE_SECONDS = 5.0
WRITE_SECONDS = 19.0  # the writes are spread over the three outages and a little after
UNLIMITED = str(10**9)


def request(base: str, method: str, path: str, body: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; status 0 when the connection failed."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=20)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers={
            "Content-Type": "application/json", "Accept": "application/json", **(headers or {}),
        })
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    except OSError:
        return 0, {}, b""
    finally:
        connection.close()


def until_accepted(base: str, path: str, body: dict[str, Any], token: str, deadline: float) -> int:
    """PUT, again while the region answers that it cannot (503, 409 contention, a cut connection)."""
    while True:
        status = request(base, "PUT", path, body, {"Authorization": f"Token {token}"})[0]
        if status not in (0, 409, 500, 502, 503, 504) or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


class Catalog:
    """The home region's catalog writer (catalog services in this process) and, for one price change
    in ten, a staff user writing through the replica region's internal API."""

    def __init__(self, rng: random.Random, replica_url: str) -> None:
        self.rng = rng
        self.replica_url = replica_url
        self.categories = [Category.objects.create(slug=f"cat-{n}", name=f"Category {n}") for n in range(3)]
        self.warehouses = [Warehouse.objects.create(code=f"W{n}", name=f"Warehouse {n}") for n in range(2)]
        self.live: dict[str, Product] = {}
        self.gone: set[str] = set()
        self.skus: list[str] = []  # every SKU created, appended only: what the reader (another thread) reads
        self.created = 0
        for _ in range(PRODUCTS):
            self.create()
        self.in_carts = sorted(self.live)[:20]  # never deleted: the carts' products
        staff = get_user_model().objects.create_user("chaos-staff", password="x", is_staff=True)
        staff.user_permissions.add(*Permission.objects.filter(codename__in=["change_price", "change_stocklevel"]))
        self.staff_token = Token.objects.create(user=staff).key
        self.statuses: dict[int, int] = defaultdict(int)

    def create(self) -> None:
        sku = f"SKU-{self.created:05d}"
        self.created += 1
        product = services.product_create(sku=sku, name=f"Product {sku}", category=self.rng.choice(self.categories))
        services.price_set(product=product, currency="EUR", amount=Decimal(self.rng.randint(100, 9999)) / 100)
        services.stock_adjust(product=product, warehouse=self.warehouses[0], delta=50)
        self.live[sku] = product
        self.skus.append(sku)

    def write(self, deadline: float) -> None:
        rng = self.rng
        kind = rng.random()
        if kind < 0.03:
            self.create()
            return
        sku = rng.choice(sorted(self.live))
        product = self.live[sku]
        if kind < 0.05:
            if sku not in self.in_carts:
                self.live.pop(sku).delete()
                self.gone.add(sku)
        elif kind < 0.08:
            services.product_update(product=product, category=rng.choice(self.categories))
        elif kind < 0.13:
            amount = f"{rng.randint(100, 9999) / 100:.2f}"
            status = until_accepted(
                self.replica_url, f"/api/internal/products/{sku}/price/", {"currency": "USD", "amount": amount},
                self.staff_token, deadline,
            )
            self.statuses[status] += 1
        elif kind < 0.65:
            currency, amount = rng.choice(["EUR", "USD"]), Decimal(rng.randint(1, 9999)) / 100
            services.price_set(product=product, currency=currency, amount=amount)
        else:
            services.stock_adjust(product=product, warehouse=rng.choice(self.warehouses), delta=rng.randint(1, 5))


class Carts(threading.Thread):
    """Customers writing their carts in their own region, one write at a time, each written again
    while the region answers that it cannot; ``expected`` is what each cart must hold at the end."""

    def __init__(self, rng: random.Random, skus: list[str], urls: dict[str, str], started: float) -> None:
        super().__init__(daemon=True)
        self.rng, self.skus, self.started = rng, skus, started
        users = [get_user_model().objects.create_user(f"chaos-customer-{n}", password="x") for n in range(CUSTOMERS)]
        self.customers = [
            (user.pk, Token.objects.create(user=user).key, urls[HOME if n % 2 == 0 else REPLICA])
            for n, user in enumerate(users)
        ]
        self.expected: dict[int, dict[str, int]] = {}
        self.statuses: dict[int, int] = defaultdict(int)
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            for n in range(CART_WRITES):
                delay = self.started + n * WRITE_SECONDS / CART_WRITES - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                user_id, token, url = self.rng.choice(self.customers)
                sku, quantity = self.rng.choice(self.skus), self.rng.randint(1, 9)
                status = until_accepted(
                    url, f"/api/cart/items/{sku}/", {"quantity": quantity}, token, time.monotonic() + 60
                )
                self.statuses[status] += 1
                if status == 200:
                    self.expected.setdefault(user_id, {})[sku] = quantity
        except BaseException as exc:  # reported by the test
            self.failure = exc


class AlternatingReader(threading.Thread):
    """A client reading products alternately in the two regions, sending the highest ETag it saw
    for each (If-None-Match: a floor the answer is at or above, 304 when equal)."""

    def __init__(self, rng: random.Random, catalog: Catalog, urls: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.rng, self.catalog, self.urls = rng, catalog, urls
        self.stop = threading.Event()
        self.highest: dict[str, tuple[int, str]] = {}
        self.lower: list[tuple[str, str, int, int]] = []  # (sku, region, version read, highest sent)
        self.statuses: dict[tuple[str, int], int] = defaultdict(int)

    def run(self) -> None:
        regions = [HOME, REPLICA]
        n = 0
        while not self.stop.is_set():
            region = regions[n % 2]
            n += 1
            sku = self.rng.choice(self.catalog.skus)
            seen = self.highest.get(sku)
            headers = {"If-None-Match": seen[1]} if seen else {}
            status, answer, body = request(self.urls[region], "GET", f"/api/products/{sku}/", headers=headers)
            self.statuses[(region, status)] += 1
            if status == 200:
                version = int(json.loads(body)["version"])
                if seen and version < seen[0]:
                    self.lower.append((sku, region, version, seen[0]))
                if not seen or version > seen[0]:
                    self.highest[sku] = (version, answer["etag"])
            time.sleep(0.01)


def drift(two: Regions, region: str) -> str:
    """``projections_check --region R``'s lines, empty when clean (run as the home region of this
    two-region site, which names the other)."""
    out = io.StringIO()
    with two.home():
        try:
            call_command("projections_check", region=region, stdout=out)
        except SystemExit:
            return out.getvalue().strip()
    return ""


def cart_items(endpoint: str, region: str) -> dict[int, tuple[int, dict[str, int]]]:
    with tables_at(endpoint, region):
        return {
            int(cart.user_id): (int(cart.version), {sku: int(n) for sku, n in cart.lines.as_dict().items()})
            for cart in Cart.scan(consistent_read=True)
        }


@pytest.fixture
def followed_anew(regions: Regions) -> None:
    """Every table cache_follow reads created again in both regions: new streams holding only this
    test's records (an earlier test's records would raise the floors of this test's keys)."""
    for region, endpoint in ((HOME, regions.home_endpoint), (REPLICA, regions.replica_endpoint)):
        with tables_at(endpoint, region):
            for table in follow.followed_tables().values():
                table.model.delete_table()
                table_ensure(table.model)


@pytest.fixture
def proxies(regions: Regions) -> Iterator[dict[str, TcpProxy]]:
    """Each region's DynamoDB behind a proxy the test takes down: every process reaches it there."""
    made = {}
    for region, endpoint in ((HOME, regions.home_endpoint), (REPLICA, regions.replica_endpoint)):
        parts = urlsplit(endpoint)
        made[region] = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 80)
    yield made
    for proxy in made.values():
        proxy.down()


def test_two_regions_under_faults_converge_and_never_read_backwards(
    regions: Regions, proxies: dict[str, TcpProxy], fresh_streams, followed_anew, start_worker, broker: Broker,
    seed: int, tmp_path: Path,
) -> None:
    rng = random.Random(seed)
    names = [Region(HOME, ""), Region(REPLICA, "")]
    urls = {
        HOME: {"DYNAMODB_ENDPOINT": proxies[HOME].url, "REDIS_URL": regions.home_redis},
        REPLICA: {"DYNAMODB_ENDPOINT": proxies[REPLICA].url, "REDIS_URL": regions.replica_redis},
    }
    base = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker.url, "DEBUG": "0", "THROTTLE_ANON_PER_MINUTE": UNLIMITED,
        "THROTTLE_CACHE_FILLS_PER_MINUTE": UNLIMITED, "THROTTLE_CART_PER_MINUTE": UNLIMITED,
        "THROTTLE_INTERNAL_PER_MINUTE": UNLIMITED,
    }
    env = {region.name: {k: v for k, v in region_env(base, names, region, urls).items() if k != "BIND"}
           for region in names}
    stand_in = Replicator(  # as regions.replication() makes it, through the proxies
        {HOME: proxies[HOME].url, REPLICA: proxies[REPLICA].url}, prefix=settings.DYNAMODB_TABLE_PREFIX,
        tables=[model.Meta.table_name for model in all_tables()],
    ).start()
    regions.replicators.append(stand_in)  # stopped after the test

    start_worker(**env[HOME])
    consumer = StreamsConsumer(tmp_path / "streams.log", env[HOME])
    followers = {region: CacheFollower(tmp_path / f"follow-{region}.log", env[region]) for region in (HOME, REPLICA)}
    webs = {region: Web(tmp_path / f"web-{region}.log", env[region]) for region in (HOME, REPLICA)}
    started: list[Any] = [consumer, *followers.values(), *webs.values()]
    with ThreadPoolExecutor(len(started)) as pool:  # side by side: each waits for its own start
        list(pool.map(lambda process: process.start(), started))
    web_urls = {region: web.url for region, web in webs.items()}
    catalog = Catalog(rng, web_urls[REPLICA])
    reader = AlternatingReader(random.Random(seed + 1), catalog, web_urls)
    reader.start()
    try:
        began = time.monotonic()
        carts = Carts(random.Random(seed + 2), catalog.in_carts, web_urls, began)
        carts.start()
        kills: list[str] = []

        def faults() -> None:
            """The outages one after another; a follower SIGKILLed at random in between."""
            fault_rng = random.Random(seed + 3)
            kill_at = sorted(fault_rng.uniform(1, 3 * OUTAGE_SECONDS) for _ in range(2))
            steps: list[tuple[float, Callable[[], None]]] = [
                (1.0, stand_in.pause), (1.0 + OUTAGE_SECONDS, stand_in.resume),
                (2.0 + OUTAGE_SECONDS, proxies[REPLICA].down), (2.0 + 2 * OUTAGE_SECONDS, proxies[REPLICA].up),
                (3.0 + 2 * OUTAGE_SECONDS, proxies[HOME].down), (3.0 + 3 * OUTAGE_SECONDS, proxies[HOME].up),
            ]
            for at in kill_at:
                region = fault_rng.choice([HOME, REPLICA])

                def kill(region: str = region) -> None:
                    followers[region].kill()
                    kills.append(region)
                    followers[region].start()

                steps.append((at, kill))
            for at, step in sorted(steps, key=lambda s: s[0]):
                delay = began + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                step()

        faulting = threading.Thread(target=faults, daemon=True)
        faulting.start()
        try:
            for n in range(CATALOG_WRITES):
                delay = began + n * WRITE_SECONDS / CATALOG_WRITES - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                catalog.write(time.monotonic() + 60)
        finally:
            faulting.join()
            carts.join()
        assert carts.failure is None, carts.failure
        assert len(kills) == 2

        # Everything settles: the relay drains (the home region's DynamoDB is back), the stand-in
        # brings every change across, the write-back copies every cart, each region's Redis follows.
        wait_for(lambda: not OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists(), 120, 0.5,
                 "the outbox drained")
        stand_in.settle(timeout=120)
        home_carts = cart_items(regions.home_endpoint, HOME)

        def copied() -> bool:
            copies = dict(CartCopy.objects.values_list("user_id", "version"))
            return all(copies.get(user) == version for user, (version, _) in home_carts.items())

        wait_for(copied, 60, 0.5, "every cart copied to Postgres")
        reports = {region: "?" for region in (HOME, REPLICA)}

        def clean() -> bool:
            reports.update({region: drift(regions, region) for region in (HOME, REPLICA)})
            return not any(reports.values())

        try:
            wait_for(clean, 60, 1.0, "projections_check --region R clean in both regions")
        except TimeoutError:
            pass
        assert reports == {HOME: "", REPLICA: ""}, f"seed {seed}: {reports}"
    finally:
        reader.stop.set()
        reader.join()
        for process in reversed(started):
            process.stop()
        connections.close_all()

    # Every cart written: in Postgres once, as its region last wrote it, the same in both regions.
    assert home_carts == cart_items(regions.replica_endpoint, REPLICA)
    assert {user: lines for user, (_, lines) in home_carts.items()} == carts.expected
    copies = {copy.user_id: copy for copy in CartCopy.objects.all()}
    assert set(copies) == set(carts.expected)
    for user, (version, lines) in home_carts.items():
        assert (copies[user].version, copies[user].lines) == (version, lines), f"seed {seed}: cart of {user}"
    assert set(carts.statuses) == {200}, carts.statuses
    assert sum(carts.statuses.values()) == CART_WRITES
    assert set(catalog.statuses) <= {200}, catalog.statuses
    # The client read in both regions all along, and never read a lower version than it had seen.
    assert reader.lower == [], f"seed {seed}: {reader.lower[:10]}"
    assert all(reader.statuses[(region, 200)] > 50 for region in (HOME, REPLICA)), dict(reader.statuses)
    assert sum(count for (_, status), count in reader.statuses.items() if status == 304) > 0
