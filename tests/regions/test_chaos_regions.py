"""Two regions under faults (issue 21): 2,000 mixed catalog writes (in the home region, from two
writers; one in twenty a staff price change through the replica region's internal API) and 500
cart writes in both regions, each customer in their own region, while the replication stand-in is
paused 10 s, the replica's DynamoDB is unreachable 10 s, then the home region's 10 s, and a
region's ``cache_follow`` is SIGKILLed three times at random. A client reads products alternately
in the two regions all along, sending the highest ETag it saw. Afterwards ``projections_check
--region R`` is clean in both regions (Postgres against R's DynamoDB, R's Redis against R's
DynamoDB), every cart is in Postgres once as its region last wrote it and the same in both regions'
DynamoDB, and the client never read a lower version.

The writes are spread over the outages' 45 s; ``REGIONS_CHAOS_WRITES`` sets the catalog writes
(the cart writes are a quarter of them) for a machine where they cannot keep up.

Processes, all real: in the home region a Celery worker (relay and beat), the write-back consumer,
``cache_follow`` and gunicorn; in the replica region ``cache_follow`` and gunicorn; the stand-in
runs in this process. Each region's DynamoDB is reached through a proxy the test takes down. The
carts' products are created just before the writes start, so the replica's customers put products
in their carts that have not replicated yet (and cannot while the stand-in is paused). ``SEED``
replays a run's choices (the seed is printed when the test fails; the threads' interleaving is the
machine's); a backwards read names the region and the layer (``X-Served-From``) of both reads.
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
from dataclasses import dataclass
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
from hybridsite.dynamodb import all_tables, get_item, table_ensure
from projections import follow
from projections.registry import product_key
from projections.tables import ProductDocument
from tests.regions.conftest import HOME, REPLICA, Regions, tables_at
from tests.services import Broker, CacheFollower, StreamsConsumer, TcpProxy, Web, database_url
from writeback.models import DeadLetter

pytestmark = [
    pytest.mark.proof,
    pytest.mark.integration,
    pytest.mark.aws_engine(reason="two DynamoDB Local processes and the replication stand-in between them (Java)"),
]

CATALOG_WRITES = int(os.environ.get("REGIONS_CHAOS_WRITES", "2000"))
STAFF_PRICE_WRITES = CATALOG_WRITES // 20  # of them, through the replica region's internal API
CART_WRITES = CATALOG_WRITES // 4
PRODUCTS = 80
IN_CARTS = 20  # the carts' products: never deleted
CUSTOMERS = 32  # half of them in each region
CATALOG_LANES = 2  # catalog writers side by side, each with its own products
CART_LANES = 8  # customers write side by side, each customer's writes one after another
OUTAGE_SECONDS = 10.0
GAP_SECONDS = 2.0  # before each outage
WRITE_SECONDS = 3 * (GAP_SECONDS + OUTAGE_SECONDS) + 9  # the writes spread over the outages and a little after
FOLLOWER_KILLS = 3
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


RETRIED = (0, 409, 502, 503, 504)
"""What a client retries: a cut connection, contention, a region that says it cannot answer now."""


def until_accepted(base: str, path: str, body: dict[str, Any], token: str, deadline: float) -> int:
    """PUT, again while the region answers that it cannot (``RETRIED``), until ``deadline``."""
    while True:
        status = request(base, "PUT", path, body, {"Authorization": f"Token {token}"})[0]
        if status not in RETRIED or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


class Catalog:
    """The home region's catalog writers (catalog services in this process): ``CATALOG_LANES``
    side by side, each writing its own products (its own random choices: a lane replays as it ran)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        setup = random.Random(f"{seed}:catalog")
        self.categories = [Category.objects.create(slug=f"cat-{n}", name=f"Category {n}") for n in range(3)]
        self.warehouses = [Warehouse.objects.create(code=f"W{n}", name=f"Warehouse {n}") for n in range(2)]
        self.lock = threading.Lock()
        self.live: dict[str, Product] = {}
        self.lanes: dict[str, int] = {}  # SKU -> the lane that writes it
        self.skus: list[str] = []  # every SKU created, appended only: what the other threads pick from
        self.created = [0] * CATALOG_LANES
        for n in range(PRODUCTS - IN_CARTS):
            self.create(setup, n % CATALOG_LANES)
        self.in_carts: list[str] = []
        self.seconds: dict[str, float] = defaultdict(float)  # time spent per kind of write, for the report
        self.failures: list[BaseException] = []

    def create(self, rng: random.Random, lane: int) -> str:
        sku = f"SKU-{lane}-{self.created[lane]:05d}"
        self.created[lane] += 1
        product = services.product_create(sku=sku, name=f"Product {sku}", category=rng.choice(self.categories))
        services.price_set(product=product, currency="EUR", amount=Decimal(rng.randint(100, 9999)) / 100)
        services.stock_adjust(product=product, warehouse=self.warehouses[0], delta=50)
        with self.lock:
            self.live[sku] = product
            self.lanes[sku] = lane
            self.skus.append(sku)
        return sku

    def create_for_carts(self) -> None:
        """The carts' products, last: their projection and replication are under way as the carts start."""
        setup = random.Random(f"{self.seed}:carts' products")
        self.in_carts = [self.create(setup, n % CATALOG_LANES) for n in range(IN_CARTS)]

    def write_lane(self, lane: int, writes: int, started: float) -> None:
        """``writes`` writes of one lane, spread over ``WRITE_SECONDS`` from ``started``."""
        rng = random.Random(f"{self.seed}:catalog:{lane}")
        try:
            for n in range(writes):
                delay = started + n * WRITE_SECONDS / writes - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                began = time.monotonic()
                kind = self.write(rng, lane)
                with self.lock:
                    self.seconds[kind] += time.monotonic() - began
        except BaseException as exc:  # reported by the test
            self.failures.append(exc)
        finally:
            connections.close_all()  # this thread's

    def write(self, rng: random.Random, lane: int) -> str:
        kind = rng.random()
        if kind < 0.03:
            self.create(rng, lane)
            return "create"
        with self.lock:
            sku = rng.choice(sorted(sku for sku in self.live if self.lanes[sku] == lane))
            product = self.live[sku]
        if kind < 0.05:
            if sku not in self.in_carts:
                with self.lock:
                    del self.live[sku]
                product.delete()
            return "delete"
        if kind < 0.08:
            services.product_update(product=product, category=rng.choice(self.categories))
            return "update"
        if kind < 0.65:
            currency, amount = rng.choice(["EUR", "USD"]), Decimal(rng.randint(1, 9999)) / 100
            services.price_set(product=product, currency=currency, amount=amount)
            return "price"
        services.stock_adjust(product=product, warehouse=rng.choice(self.warehouses), delta=rng.randint(1, 5))
        return "stock"


class StaffPrices(threading.Thread):
    """A staff user changing USD prices through the replica region's internal API (it writes
    Postgres, in the home region), each written again while the region answers that it cannot."""

    def __init__(self, rng: random.Random, catalog: Catalog, url: str, started: float) -> None:
        super().__init__(daemon=True)
        self.rng, self.catalog, self.url, self.started = rng, catalog, url, started
        staff = get_user_model().objects.create_user("chaos-staff", password="x", is_staff=True)
        staff.user_permissions.add(*Permission.objects.filter(codename__in=["change_price"]))
        self.token = Token.objects.create(user=staff).key
        self.answers: list[tuple[str, int]] = []  # (SKU, status)
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            for n in range(STAFF_PRICE_WRITES):
                delay = self.started + n * WRITE_SECONDS / STAFF_PRICE_WRITES - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sku = self.rng.choice(self.catalog.skus)
                amount = f"{self.rng.randint(100, 9999) / 100:.2f}"
                status = until_accepted(
                    self.url, f"/api/internal/products/{sku}/price/", {"currency": "USD", "amount": amount},
                    self.token, time.monotonic() + 60,
                )
                self.answers.append((sku, status))
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def unexpected(self) -> list[tuple[str, int]]:
        """Answers other than 200, and 404 for a product deleted by then."""
        return [(sku, status) for sku, status in self.answers
                if status != 200 and not (status == 404 and sku not in self.catalog.live)]


class Carts:
    """Customers writing their carts in their own region: ``CART_LANES`` threads side by side, each
    with its own customers, one write at a time, each written again while the region answers that
    it cannot. ``expected`` is what each cart must hold at the end."""

    def __init__(self, seed: int, skus: list[str], urls: dict[str, str], started: float) -> None:
        self.seed, self.skus, self.urls, self.started = seed, skus, urls, started
        users = [get_user_model().objects.create_user(f"chaos-customer-{n}", password="x") for n in range(CUSTOMERS)]
        self.customers = [
            (user.pk, Token.objects.create(user=user).key, HOME if n % 2 == 0 else REPLICA)
            for n, user in enumerate(users)
        ]
        self.expected: dict[int, dict[str, int]] = {}
        self.statuses: dict[tuple[str, int], int] = defaultdict(int)
        self.refused: list[tuple[float, str, str, int]] = []  # (seconds in, region, SKU, status): not 200
        self.failures: list[BaseException] = []
        self.lock = threading.Lock()
        self.lanes = [threading.Thread(target=self.lane, args=(n,), daemon=True) for n in range(CART_LANES)]

    def start(self) -> None:
        for lane in self.lanes:
            lane.start()

    def join(self) -> None:
        for lane in self.lanes:
            lane.join()

    def lane(self, number: int) -> None:
        rng = random.Random(f"{self.seed}:carts:{number}")
        customers = self.customers[number::CART_LANES]  # one region's: the lanes alternate
        writes = CART_WRITES // CART_LANES + (number < CART_WRITES % CART_LANES)
        try:
            for n in range(writes):
                delay = self.started + n * WRITE_SECONDS / writes - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                user_id, token, region = rng.choice(customers)
                sku, quantity = rng.choice(self.skus), rng.randint(1, 9)
                status = until_accepted(
                    self.urls[region], f"/api/cart/items/{sku}/", {"quantity": quantity}, token,
                    time.monotonic() + 60,
                )
                with self.lock:
                    self.statuses[(region, status)] += 1
                    if status == 200:
                        self.expected.setdefault(user_id, {})[sku] = quantity
                    else:
                        self.refused.append((round(time.monotonic() - self.started, 1), region, sku, status))
        except BaseException as exc:  # reported by the test
            self.failures.append(exc)


@dataclass(frozen=True)
class Read:
    """One product read of the alternating client."""

    at: float  # seconds from the start of the writes (negative: before)
    region: str
    version: int
    source: str  # X-Served-From

    def __str__(self) -> str:
        return f"v{self.version} from {self.region} {self.source} at {self.at:.1f} s"


class AlternatingReader(threading.Thread):
    """A client reading products alternately in the two regions, sending the highest ETag it saw
    for each (If-None-Match: a floor the answer is at or above, 304 when equal); every answer with
    its region and layer (X-Served-From)."""

    def __init__(self, rng: random.Random, catalog: Catalog, urls: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.rng, self.catalog, self.urls = rng, catalog, urls
        self.stop = threading.Event()
        self.began = time.monotonic()
        self.highest: dict[str, tuple[Read, str]] = {}  # SKU -> the read of its highest version, its ETag
        self.lower: list[tuple[str, Read, Read]] = []  # (SKU, the read below, the highest read before it)
        self.statuses: dict[tuple[str, int], int] = defaultdict(int)
        self.sources: dict[tuple[str, str], int] = defaultdict(int)  # (region, X-Served-From) -> answers

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
            if status in (200, 304):
                self.sources[(region, answer.get("x-served-from", "?"))] += 1
            if status == 200:
                read = Read(time.monotonic() - self.began, region, int(json.loads(body)["version"]),
                            answer.get("x-served-from", "?"))
                if seen and read.version < seen[0].version:
                    self.lower.append((sku, read, seen[0]))
                if not seen or read.version > seen[0].version:
                    self.highest[sku] = (read, answer["etag"])
            time.sleep(0.01)

    def backwards(self) -> list[str]:
        return [f"{sku}: {read} after {highest}" for sku, read, highest in self.lower]


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


def where(endpoint: str, region: str, skus: list[str]) -> dict[str, int | None]:
    """The version of each SKU's document ``region``'s DynamoDB holds (None: none), for a failure."""
    with tables_at(endpoint, region):
        return {sku: getattr(get_item(ProductDocument, product_key(sku)), "version", None) for sku in skus}


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
    phases: dict[str, float] = {}  # seconds per phase, for the report
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name], mark = round(now - mark, 1), now

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

    consumer = StreamsConsumer(tmp_path / "streams.log", env[HOME])
    followers = {region: CacheFollower(tmp_path / f"follow-{region}.log", env[region]) for region in (HOME, REPLICA)}
    webs = {region: Web(tmp_path / f"web-{region}.log", env[region]) for region in (HOME, REPLICA)}
    started: list[Any] = [consumer, *followers.values(), *webs.values()]
    web_urls = {region: web.url for region, web in webs.items()}
    home_carts: dict[int, tuple[int, dict[str, int]]] = {}
    reader: AlternatingReader | None = None
    try:
        # The processes start side by side (each waits for its own start), the catalog meanwhile.
        with ThreadPoolExecutor(len(started) + 1) as pool:
            starting = [pool.submit(process.start) for process in started]
            starting.append(pool.submit(start_worker, **env[HOME]))  # stopped by its fixture
            catalog = Catalog(seed)
            phase("catalog created")
            for start in starting:
                start.result()
        phase("processes started")
        reader = AlternatingReader(random.Random(f"{seed}:reader"), catalog, web_urls)
        reader.start()
        catalog.create_for_carts()
        # The home region takes only products projected there (a cart makes no Postgres query):
        # the carts start once its DynamoDB holds theirs. The replica's may not hold them yet.
        wait_for(lambda: None not in where(regions.home_endpoint, HOME, catalog.in_carts).values(), 60, 0.2,
                 "the carts' products projected in the home region")
        not_replicated = [sku for sku, v in where(regions.replica_endpoint, REPLICA, catalog.in_carts).items()
                          if v is None]
        carts = Carts(seed, catalog.in_carts, web_urls, 0.0)
        staff = StaffPrices(random.Random(f"{seed}:staff"), catalog, web_urls[REPLICA], 0.0)
        phase("carts' products projected")
        began = carts.started = staff.started = reader.began = time.monotonic()
        took: dict[str, float] = {}  # seconds from the start of the writes to each writer's end
        carts.start()
        staff.start()
        kills: list[tuple[float, str]] = []
        restarts: list[threading.Thread] = []
        restart_failures: list[BaseException] = []
        restarting = {region: threading.Lock() for region in followers}

        def kill_and_restart(region: str, at: float) -> None:
            """SIGKILL, then start again; beside the outages' schedule, since a start under load may
            take longer than a step (one region's restarts one after another)."""
            with restarting[region]:
                followers[region].kill()
                kills.append((round(at, 1), region))
                try:
                    followers[region].start(timeout=180)
                except BaseException as exc:  # reported by the test
                    restart_failures.append(exc)

        def faults() -> None:
            """The outages one after another; a follower SIGKILLed at random in between."""
            fault_rng = random.Random(f"{seed}:faults")
            steps: list[tuple[float, Callable[[], None]]] = []
            for n, (begin, end) in enumerate([
                (stand_in.pause, stand_in.resume), (proxies[REPLICA].down, proxies[REPLICA].up),
                (proxies[HOME].down, proxies[HOME].up),
            ]):
                at = (n + 1) * GAP_SECONDS + n * OUTAGE_SECONDS
                steps += [(at, begin), (at + OUTAGE_SECONDS, end)]
            last = 3 * (GAP_SECONDS + OUTAGE_SECONDS)
            for _ in range(FOLLOWER_KILLS):
                at, region = fault_rng.uniform(GAP_SECONDS, last), fault_rng.choice([HOME, REPLICA])

                def kill(at: float = at, region: str = region) -> None:
                    restart = threading.Thread(target=kill_and_restart, args=(region, at), daemon=True)
                    restarts.append(restart)
                    restart.start()

                steps.append((at, kill))
            for at, step in sorted(steps, key=lambda s: s[0]):
                delay = began + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                step()

        faulting = threading.Thread(target=faults, daemon=True)
        faulting.start()
        try:
            local_writes = CATALOG_WRITES - STAFF_PRICE_WRITES
            writers = [
                threading.Thread(target=catalog.write_lane, args=(
                    lane, local_writes // CATALOG_LANES + (lane < local_writes % CATALOG_LANES), began,
                ), daemon=True)
                for lane in range(CATALOG_LANES)
            ]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join()
            took = {"catalog": round(time.monotonic() - began, 1)}
        finally:
            faulting.join()
            carts.join()
            took["carts"] = round(time.monotonic() - began, 1)
            staff.join()
            took["staff prices"] = round(time.monotonic() - began, 1)
        failures = (catalog.failures, carts.failures, staff.failure)
        assert failures == ([], [], None), f"seed {seed}: {failures}"

        # Everything settles: the relay drains (the home region's DynamoDB is back), the stand-in
        # brings every change across, the write-back copies every cart, each region's Redis follows.
        phase("writes")
        wait_for(lambda: not OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists(), 120, 0.5,
                 "the outbox drained")
        stand_in.settle(timeout=120)
        home_carts = cart_items(regions.home_endpoint, HOME)

        def copied() -> bool:
            copies = dict(CartCopy.objects.values_list("user_id", "version"))
            return all(copies.get(user) == version for user, (version, _) in home_carts.items())

        wait_for(copied, 60, 0.5, "every cart copied to Postgres")
        for restart in restarts:  # each region's Redis follows again
            restart.join()
        assert restart_failures == [] and len(kills) == FOLLOWER_KILLS, (restart_failures, kills)
        reports = {region: "?" for region in (HOME, REPLICA)}

        def clean() -> bool:
            reports.update({region: drift(regions, region) for region in (HOME, REPLICA)})
            return not any(reports.values())

        try:
            wait_for(clean, 60, 1.0, "projections_check --region R clean in both regions")
        except TimeoutError:
            pass
        phase("settled and checked")
        print(f"seed {seed}: seconds {phases} (writes done at {took}); "
              f"catalog seconds by kind { {kind: round(t, 1) for kind, t in catalog.seconds.items()} }; "
              f"follower kills {kills}; "
              f"carts' products not in the replica at the start: {len(not_replicated)}; "
              f"cart answers {dict(carts.statuses)}; reads {dict(reader.statuses)}; layers {dict(reader.sources)}")
        assert reports == {HOME: "", REPLICA: ""}, f"seed {seed}: {reports}"
    finally:
        if reader is not None:
            reader.stop.set()
            reader.join()
        with ThreadPoolExecutor(len(started)) as pool:
            list(pool.map(lambda process: process.stop(), started))
        connections.close_all()

    # Every cart written: in Postgres once, as its region last wrote it, the same in both regions.
    assert carts.refused == [], f"seed {seed}: cart writes refused (seconds in, region, SKU, status): {carts.refused}"
    assert sum(carts.statuses.values()) == CART_WRITES
    assert home_carts == cart_items(regions.replica_endpoint, REPLICA), f"seed {seed}"
    assert {user: lines for user, (_, lines) in home_carts.items()} == carts.expected, f"seed {seed}"
    copies = {copy.user_id: copy for copy in CartCopy.objects.all()}
    assert set(copies) == set(carts.expected), f"seed {seed}"
    for user, (version, lines) in home_carts.items():
        assert (copies[user].version, copies[user].lines) == (version, lines), f"seed {seed}: cart of {user}"
    assert not DeadLetter.objects.exists(), f"seed {seed}: {list(DeadLetter.objects.values())[:5]}"
    assert len(staff.answers) == STAFF_PRICE_WRITES and staff.unexpected() == [], f"seed {seed}: {staff.answers}"
    # The client read in both regions all along, and never read a lower version than it had seen.
    assert reader.backwards() == [], f"seed {seed}: {reader.backwards()[:10]}"
    assert all(reader.statuses[(region, 200)] > 50 for region in (HOME, REPLICA)), dict(reader.statuses)
    assert sum(count for (_, status), count in reader.statuses.items() if status == 304) > 0
