"""The promise at scale: 5,000 mixed writes through every write path while the worker is SIGKILLed
at random, Redis is restarted empty once and DynamoDB is unreachable for 10 s, with a customer
reading all along. Orders are placed and changed among the writes, and their customer reads them
all along too. Afterwards the drift check is clean (orders included), every deleted SKU answers 404,
every order reads as Postgres holds it, and no reader saw a version go backwards.

``SEED`` replays a run (the seed is printed when the test fails).
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import orjson
import pgserver
import pytest
import redis
from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import F
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import APIException

from catalog import services
from catalog.models import Category, OutboxEvent, Price, Product, Warehouse
from devtools.net import wait_for
from hybridsite import cache_keys, dynamodb, redis_client
from orders import services as order_services
from orders.models import Order
from projections.drift import check
from projections.registry import product_cache_name, product_key
from projections.tables import ProductDocument
from tests.services import TcpProxy, database_url

pytestmark = pytest.mark.integration
PSQL = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
WRITES = 5000
PRODUCTS = 200
ORDERED = 20


class Catalog:
    """The writer's view of the catalog: which SKUs are live, which were deleted for good."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.roots = [Category.objects.create(slug=f"root-{n}", name=f"Root {n}") for n in range(3)]
        self.moving = Category.objects.create(slug="moving", name="Moving", parent=self.roots[0])
        self.categories = [*self.roots, self.moving]
        self.warehouses = [Warehouse.objects.create(code=f"W{n}", name=f"Warehouse {n}") for n in range(3)]
        self.live: dict[str, Product] = {}
        self.gone: set[str] = set()
        self.customer = get_user_model().objects.create_user("chaos-customer", password="x")
        self.orders: list[int] = []  # appended by the writer, read by the order reader
        for n in range(PRODUCTS):
            self.create(f"SKU-{n:04d}")
        self.sold = set(sorted(self.live)[:ORDERED])  # what orders are placed for: never deleted (PROTECT)

    def create(self, sku: str) -> None:
        product = services.product_create(sku=sku, name=f"Product {sku}", category=self.rng.choice(self.categories))
        services.price_set(product=product, currency="EUR", amount=Decimal(self.rng.randint(100, 9999)) / 100)
        self.live[sku] = product
        self.gone.discard(sku)

    def delete(self, sku: str) -> None:
        self.live.pop(sku).delete()
        self.gone.add(sku)

    def write(self) -> None:
        """One write through one of the write paths, chosen at random."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.02 and self.gone:  # re-create a deleted SKU (a new aggregate, same key)
            self.create(rng.choice(sorted(self.gone)))
            return
        sku = rng.choice(sorted(self.live))
        product = self.live[sku]
        if kind < 0.04:
            if sku not in self.sold:
                self.delete(sku)
        elif kind < 0.05:
            services.product_update(product=product, category=rng.choice(self.categories))
        elif kind < 0.055:
            self.moving.parent = rng.choice(self.roots)
            self.moving.save()
        elif kind < 0.06:
            subprocess.run(
                [str(PSQL), database_url(), "-v", "ON_ERROR_STOP=1", "-c",
                 f"UPDATE catalog_price SET amount = amount + 1 WHERE product_id = {product.pk}"],
                check=True, capture_output=True,
            )
        elif kind < 0.28:
            self.order(rng.choice(sorted(self.sold)))
        elif kind < 0.29 and self.orders:
            Order.objects.filter(pk=rng.choice(self.orders)).update(note=f"note {rng.randint(0, 10**6)}")
        elif kind < 0.30:
            Price.objects.filter(product=product).update(amount=F("amount") + Decimal("0.01"))
        elif kind < 0.65:
            currency, amount = rng.choice(["EUR", "USD"]), Decimal(rng.randint(1, 9999)) / 100
            services.price_set(product=product, currency=currency, amount=amount)
        else:
            services.stock_adjust(product=product, warehouse=rng.choice(self.warehouses), delta=rng.randint(1, 5))


    def order(self, sku: str) -> None:
        """One unit of ``sku``, at Postgres prices; refused when it is out of stock or unpriced."""
        try:
            order = order_services.order_create(
                user_id=self.customer.pk, idempotency_key=f"chaos-{len(self.orders)}-{self.rng.random()}",
                quantities={sku: 1}, cart_version=0,
            )
        except APIException:  # out of stock, or no price in the order currency
            return
        self.orders.append(order.pk)


class OrderReader(threading.Thread):
    """The customer reading their orders (and their list) and recording every version it saw."""

    def __init__(self, catalog: Catalog, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.catalog = catalog
        self.token = Token.objects.create(user=catalog.customer).key
        self.rng = rng
        self.stop = threading.Event()
        self.seen: dict[int, list[int]] = defaultdict(list)
        self.statuses: dict[int, int] = defaultdict(int)

    def run(self) -> None:
        client = Client(HTTP_AUTHORIZATION=f"Token {self.token}")
        try:
            while not self.stop.is_set():
                if not self.catalog.orders:
                    time.sleep(0.01)
                    continue
                order_id = self.rng.choice(self.catalog.orders)
                response = client.get(f"/api/orders/{order_id}/")
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.seen[order_id].append(orjson.loads(response.content)["version"])
                self.statuses[client.get("/api/orders/?limit=5").status_code] += 1
                time.sleep(0.005)
        finally:
            connections.close_all()

    def backwards(self) -> dict[int, list[int]]:
        return {order: versions for order, versions in self.seen.items() if versions != sorted(versions)}


class Customer(threading.Thread):
    """Reads random SKUs (deleted ones too) through the API and records every version it saw."""

    def __init__(self, catalog: Catalog, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.skus = sorted(catalog.live)
        self.rng = rng
        self.stop = threading.Event()
        self.seen: dict[str, list[tuple[int, str]]] = defaultdict(list)  # (version, X-Served-From)
        self.statuses: dict[int, int] = defaultdict(int)

    def run(self) -> None:
        client = Client()
        try:
            while not self.stop.is_set():
                sku = self.rng.choice(self.skus)
                response = client.get(f"/api/products/{sku}/")
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.seen[sku].append((orjson.loads(response.content)["version"], response["X-Served-From"]))
                time.sleep(0.002)  # leave the writer (same process) its share of the GIL
        finally:
            connections.close_all()

    def backwards(self) -> dict[str, list[tuple[int, str]]]:
        """Each SKU read going back, with the layer of each answer."""
        return {sku: seen for sku, seen in self.seen.items() if seen != sorted(seen, key=lambda read: read[0])}


def where(sku: str) -> str:
    """What each layer holds for a SKU, for a failure message."""
    entry = redis_client.client().get(cache_keys.document(product_cache_name(sku)))
    floor = redis_client.client().get(cache_keys.floor(product_cache_name(sku)))
    item = dynamodb.get_item(ProductDocument, product_key(sku))
    stored = item and (item.owner, item.version, item.deleted)
    return f"{sku} is deleted; cache {entry[:40] if entry else None!r}, floor {floor!r}, DynamoDB {stored}"


def restart_empty(proxy: TcpProxy, location: str) -> None:
    """Redis restarted empty, as its clients see it: connections cut, every key gone."""
    proxy.down()
    direct = redis.Redis.from_url(proxy.bypass(location))
    keys = list(direct.scan_iter(match=f"{cache_keys.NAMESPACE}*", count=1000))
    if keys:
        direct.delete(*keys)
    direct.close()
    proxy.up()


@pytest.mark.proof
def test_chaos(start_worker, settings, redis_proxy, dynamodb_proxy, seed):
    settings.THROTTLE_ANON_PER_MINUTE = 10**9  # one client reading as fast as it can,
    settings.THROTTLE_CACHE_FILLS_PER_MINUTE = 10**9  # deleted SKUs included
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "orders": 10**9}
    rng = random.Random(seed)
    catalog = Catalog(rng)
    worker = start_worker(
        REDIS_URL=settings.CACHES["default"]["LOCATION"],  # the cache through the proxy
        DYNAMODB_ENDPOINT=dynamodb_proxy.url,
    )
    customer = Customer(catalog, random.Random(seed + 1))
    customer.start()
    order_reader = OrderReader(catalog, random.Random(seed + 3))
    order_reader.start()
    stop_killing = threading.Event()
    kills: list[float] = []

    def killer() -> None:  # its own generator: sharing the writer's would change the writes on a replay
        kill_rng = random.Random(seed + 2)
        while not stop_killing.wait(kill_rng.uniform(2.0, 6.0)):
            worker.kill()
            kills.append(time.monotonic())
            worker.start()

    killing = threading.Thread(target=killer, daemon=True)
    killing.start()
    outage: threading.Timer | None = None
    try:
        for n in range(WRITES):
            if n == WRITES // 3:
                restart_empty(redis_proxy, settings.CACHES["default"]["LOCATION"])
            if n == 2 * WRITES // 3:
                dynamodb_proxy.down()
                outage = threading.Timer(10, dynamodb_proxy.up)
                outage.start()
            catalog.write()
    finally:
        stop_killing.set()
        killing.join()
        if outage:
            outage.join()
    try:
        assert kills, "the worker was never killed"
        wait_for(
            lambda: not OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists(), 180, 0.5, "drain"
        )
        report = check()
        assert report.line().endswith("missing=0 stale=0 differ=0 extra=0"), f"seed {seed}: {report.line()}"
        assert not OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD).exists()
        client = Client()
        for sku in sorted(catalog.gone):
            assert client.get(f"/api/products/{sku}/").status_code == 404, f"seed {seed}: {where(sku)}"
        reader = Client(HTTP_AUTHORIZATION=f"Token {order_reader.token}")
        for order_id, version in Order.objects.values_list("pk", "version"):
            assert reader.get(f"/api/orders/{order_id}/").json()["version"] == version, f"seed {seed}: {order_id}"
    finally:
        customer.stop.set()
        order_reader.stop.set()
        customer.join()
        order_reader.join()
    assert customer.statuses[200] > 100 and not set(customer.statuses) - {200, 404}, customer.statuses
    assert customer.backwards() == {}, f"seed {seed}"
    # Every order read is answered, by some layer (Postgres stays up): never a 404 nor a 503.
    assert catalog.orders and set(order_reader.statuses) == {200}, order_reader.statuses
    assert order_reader.backwards() == {}, f"seed {seed}"
    assert report.checked == len(catalog.live) + 1 + len(catalog.orders)

