"""Whatever the order of deliveries (duplicates, reordering, a projector racing a late retry), the
stored document is the newest version anyone delivered, with that version's body, and neither it
nor its cache entry ever goes backwards. Through a product's whole life, and its customer's orders
beside it, readers never see a version go backwards and the drained projection tells Postgres's
truth."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django_redis import get_redis_connection
from hypothesis import HealthCheck, Phase
from hypothesis import settings as settings_
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from catalog.models import Category, OutboxEvent, Product, Warehouse
from catalog.services import price_set, product_create, product_update, stock_adjust
from hybridsite import cache_keys
from orders.models import Order
from orders.projection import order_document
from orders.selectors import order_list
from orders.services import order_create
from projections import cache, reader, readpath
from projections.documents import comparable
from projections.projector import project, put_document, read_snapshot
from projections.registry import AGGREGATES, build_product_document, product_document
from projections.relay import StopReason, drain
from projections.tables import ProductDocument
from tests.orders.conftest import make_customer, on_sale
from tests.services import TcpProxy

RECORDED_AT = datetime(2024, 1, 1, tzinfo=UTC)
SKUS = itertools.count()
ORDER_PAGE = 100  # the API's largest page: every order of an example on one


class ProjectionMachine(RuleBasedStateMachine):
    """One product per example, written through the services, its documents delivered at will."""

    versions = Bundle("versions")

    def __init__(self) -> None:
        super().__init__()
        category, _ = Category.objects.get_or_create(slug="stateful", defaults={"name": "Stateful"})
        self.warehouse, _ = Warehouse.objects.get_or_create(code="ST", defaults={"name": "Stateful"})
        self.product = product_create(sku=f"ST-{next(SKUS)}", name="Start", category=category)
        self.sku = self.product.sku
        self.owner = f"product#{self.product.pk}"
        self.bodies: dict[int, bytes] = {}
        self.highest = 0
        self.seen = 0
        self.seen_cached = 0

    def _record(self) -> int:
        """The body of the version now committed, from a snapshot of its own."""
        snapshot = read_snapshot(AGGREGATES["product"], self.product.pk)
        [item] = build_product_document(snapshot, RECORDED_AT)
        self.bodies[snapshot.version] = orjson.dumps(item.body)
        return snapshot.version

    @initialize(target=versions)
    def created(self) -> int:
        return self._record()

    @rule(target=versions, kind=st.sampled_from(["price", "stock", "name"]), n=st.integers(0, 9999))
    def write(self, kind: str, n: int) -> int:
        if kind == "price":
            price_set(product=self.product, currency=("EUR", "USD")[n % 2], amount=Decimal(n) / 100)
        elif kind == "stock":
            stock_adjust(product=self.product, warehouse=self.warehouse, delta=n % 7)
        else:
            product_update(product=self.product, name=f"Name {n}")
        return self._record()

    def _deliver(self, version: int) -> None:
        written = put_document(
            ProductDocument, {"pk": self.sku}, owner=self.owner, version=version, body=self.bodies[version],
            committed_at=None, projected_at=datetime.now(tz=UTC),
        )
        assert written == (version > self.highest)
        self.highest = max(self.highest, version)

    @rule(version=versions)
    def deliver(self, version: int) -> None:
        self._deliver(version)

    @rule(batch=st.lists(versions, min_size=2, max_size=6))
    def deliver_out_of_order(self, batch: list[int]) -> None:
        for version in batch:
            self._deliver(version)

    @rule()
    def run_projector(self) -> None:
        outcome = project("product", self.product.pk)
        assert outcome.version == max(self.bodies)
        self.highest = max(self.highest, outcome.version)

    @invariant()
    def document_is_the_newest_delivered(self) -> None:
        try:
            document = ProductDocument.get(self.sku)
        except ProductDocument.DoesNotExist:
            assert self.highest == 0
            return
        assert document.version == self.highest
        assert document.version >= self.seen
        self.seen = document.version
        assert comparable(orjson.loads(document.body)) == comparable(orjson.loads(self.bodies[document.version]))

    @invariant()
    def cache_entry_never_goes_backwards(self) -> None:
        raw = get_redis_connection("default").get(cache_keys.document(f"product:{self.sku}"))
        if raw is None:
            return
        entry = cache.decode(raw)
        assert entry.status == 200
        assert self.seen_cached <= entry.version <= self.highest
        self.seen_cached = entry.version
        assert comparable(orjson.loads(entry.body)) == comparable(orjson.loads(self.bodies[entry.version]))


@pytest.mark.usefixtures("transactional_db", "dynamodb", "redis_clean")
def test_deliveries_in_any_order_converge_on_the_newest_version() -> None:
    run_state_machine_as_test(
        ProjectionMachine,
        settings=settings_(
            max_examples=25, stateful_step_count=30, deadline=None, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


class LifecycleMachine(RuleBasedStateMachine):
    """One SKU through writes, deletes and re-creates, projected by the real relay in batches of
    any size, read by customers (some asking to read their writes) while Redis loses everything,
    entries expire and DynamoDB goes away for a read. Readers never see a version go backwards, and once the relay has
    drained, DynamoDB, Redis and the API all tell Postgres's truth: a deleted SKU stays deleted.

    Beside it, a customer places orders through checkout's service (an Idempotency-Key each),
    another program changes them in SQL, and the customer reads them through the API: one order
    (never backwards, at least the version asked for) and the list (newest first; read with the
    version checkout returned, it holds that order). Every order read is one Postgres committed,
    with that version's body. A page from Postgres is Postgres's truth; pages from the projection
    never go backwards (a page has no version a client sees, so one from Postgres may be ahead of
    the next one). Once drained, the list and each order read as Postgres holds them."""

    proxy: TcpProxy  # set by the test: DynamoDB as the projector and the reader reach it
    sold: str  # set by the test: the SKU orders are placed for (never deleted: order lines protect it)
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.category, _ = Category.objects.get_or_create(slug="lifecycle", defaults={"name": "Lifecycle"})
        self.warehouse, _ = Warehouse.objects.get_or_create(code="LC", defaults={"name": "Lifecycle"})
        n = next(SKUS)
        self.sku = f"LC-{n}"
        self.product: Product | None = product_create(sku=self.sku, name="Start", category=self.category)
        self.served: list[int] = []
        self.customer = make_customer(f"lifecycle-{n}")
        self.keys = itertools.count()
        self.committed: dict[int, int] = {}  # order id -> its version in Postgres (only these rules write orders)
        self.bodies: dict[tuple[int, int], dict] = {}  # (order id, version) -> the order as committed then
        self.newest: tuple[int, int] | None = None  # the last checkout's order id and version
        self.order_served: dict[int, list[int]] = defaultdict(list)  # versions reads of one order answered
        self.page_seen: dict[int, int] = {}  # the highest version of each order a page from the projection held

    @rule(kind=st.sampled_from(["price", "stock", "name"]), n=st.integers(1, 9999))
    def write(self, kind: str, n: int) -> None:
        if self.product is None:
            return
        if kind == "price":
            price_set(product=self.product, currency="EUR", amount=Decimal(n) / 100)
        elif kind == "stock":
            stock_adjust(product=self.product, warehouse=self.warehouse, delta=n % 5 + 1)
        else:
            product_update(product=self.product, name=f"Name {n}")

    @precondition(lambda self: self.product is not None)
    @rule()
    def delete(self) -> None:
        self.product.delete()
        self.product = None

    @precondition(lambda self: self.product is None)
    @rule()
    def recreate(self) -> None:
        self.product = product_create(sku=self.sku, name="Again", category=self.category)

    @rule(batch=st.integers(1, 3))
    def relay(self, batch: int) -> None:
        drain(batch_size=batch, max_seconds=0.2)

    def _read(self, min_version: int = 0) -> None:
        result = reader.read_document(product_document(self.sku), min_version=min_version)
        if result.found:
            version = orjson.loads(result.body)["version"]
            assert not self.served or version >= self.served[-1], (self.served, version, result.source)
            assert version >= min_version
            self.served.append(version)

    @rule()
    def read(self) -> None:
        self._read()

    @precondition(lambda self: self.product is not None)
    @rule()
    def read_your_writes(self) -> None:
        self._read(min_version=Product.objects.values_list("version", flat=True).get(pk=self.product.pk))

    @rule()
    def read_while_dynamodb_is_away(self) -> None:
        """A fallback: Postgres answers, and DynamoDB may stay behind what it served."""
        self.proxy.down()
        try:
            self._read()
        finally:
            self.proxy.up()
            readpath.dynamodb_breaker.reset()

    @rule()
    def redis_restarted_empty(self) -> None:
        connection = get_redis_connection("default")
        keys = list(connection.scan_iter(match=f"{cache_keys.NAMESPACE}*", count=1000))
        if keys:
            connection.delete(*keys)

    @rule()
    def entry_expires(self) -> None:
        get_redis_connection("default").delete(cache_keys.document(f"product:{self.sku}"))

    def _committed(self, order_id: int) -> dict:
        """The order as committed now, as checkout answers it (and the projection renders it)."""
        order = orjson.loads(orjson.dumps(order_document(order_list(user_id=self.customer.user_id).get(pk=order_id))))
        self.committed[order_id] = order["version"]
        self.bodies[order_id, order["version"]] = order
        return order

    @rule(target=orders)
    def place_order(self) -> int:
        """One unit, under a new Idempotency-Key, through the service checkout places orders with
        (as the chaos test does: the API's own guarantees are tested in tests/orders/)."""
        order = order_create(
            user_id=self.customer.user_id, idempotency_key=f"lifecycle-{next(self.keys)}",
            quantities={self.sold: 1}, cart_version=0,
        )
        self.newest = order.pk, self._committed(order.pk)["version"]
        return order.pk

    @rule(order_id=orders, n=st.integers(1, 9999))
    def change_order(self, order_id: int, n: int) -> None:
        """Another program changes the order in SQL; its triggers give it a new version."""
        Order.objects.filter(pk=order_id).update(note=f"note {n}")
        self._committed(order_id)

    def _read_order(self, order_id: int, min_version: int = 0) -> None:
        query = f"?min_version={min_version}" if min_version else ""
        response, order = self.customer.call("get", f"/api/orders/{order_id}/{query}")
        assert response.status_code == 200, (response.status_code, order)
        served, version = self.order_served[order_id], order["version"]
        assert not served or version >= served[-1], (served, version, response["X-Served-From"])
        assert version >= min_version
        assert self.bodies.get((order_id, version)) == order, (order, response["X-Served-From"])
        served.append(version)

    def _read_orders(self, min_version: int = 0) -> dict[int, int]:
        """The customer's list, as order id -> version."""
        query = f"?limit={ORDER_PAGE}" + (f"&min_version={min_version}" if min_version else "")
        response, page = self.customer.call("get", f"/api/orders/{query}")
        assert response.status_code == 200, (response.status_code, page)
        source = response["X-Served-From"]
        held = {order["id"]: order["version"] for order in page["results"]}
        assert list(held) == sorted(held, reverse=True) and page["next_cursor"] is None, page
        for order in page["results"]:
            assert self.bodies.get((order["id"], order["version"])) == order, (order, source)
        if source == "postgres":
            assert held == self.committed
        else:
            for order_id, version in self.page_seen.items():
                assert held.get(order_id, 0) >= version, (order_id, version, held, source)
            self.page_seen.update(held)
        return held

    @rule(order_id=orders, own_write=st.booleans())
    def read_order(self, order_id: int, own_write: bool) -> None:
        self._read_order(order_id, min_version=self.committed[order_id] if own_write else 0)

    @rule(after_checkout=st.booleans())
    def read_orders(self, after_checkout: bool) -> None:
        if after_checkout and self.newest is not None:
            order_id, version = self.newest
            assert self._read_orders(min_version=version).get(order_id, 0) >= version
        else:
            self._read_orders()

    @rule(order_id=orders)
    def read_orders_while_dynamodb_is_away(self, order_id: int) -> None:
        """Postgres answers, and the projection may stay behind what it served."""
        self.proxy.down()
        try:
            self._read_order(order_id)
            self._read_orders()
        finally:
            self.proxy.up()
            readpath.dynamodb_breaker.reset()

    def teardown(self) -> None:
        while drain(max_seconds=5).stopped_by is not StopReason.EMPTY or OutboxEvent.objects.filter(
            status=OutboxEvent.Status.PENDING
        ).exists():
            pass
        try:
            document = ProductDocument.get(self.sku, consistent_read=True)
        except ProductDocument.DoesNotExist:
            document = None  # never projected while it lived
        result = reader.read_document(product_document(self.sku))
        if self.product is None:
            assert (document is None or document.deleted) and not result.found
        else:
            version = Product.objects.values_list("version", flat=True).get(pk=self.product.pk)
            assert document is not None and not document.deleted and document.version == version
            assert result.found and result.version == version
        assert self._read_orders() == self.committed  # DynamoDB's page, or one cached since it changed
        for order_id, version in self.committed.items():
            self._read_order(order_id)
            assert self.order_served[order_id][-1] == version
        self.redis_restarted_empty()


@pytest.mark.proof
@pytest.mark.usefixtures("transactional_db", "redis_clean")
def test_lifecycle_never_loses_a_delete_nor_reads_backwards(dynamodb_proxy, settings) -> None:
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 0
    settings.OUTBOX_BACKOFF_CAP_SECONDS = 0
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "orders": 10**9}  # the customer reads all along
    LifecycleMachine.proxy = dynamodb_proxy
    category, _ = Category.objects.get_or_create(slug="lifecycle", defaults={"name": "Lifecycle"})
    warehouse, _ = Warehouse.objects.get_or_create(code="LC", defaults={"name": "Lifecycle"})
    LifecycleMachine.sold = on_sale("LC-SOLD", "Sold", "9.99", category, {warehouse: 10_000}).sku
    run_state_machine_as_test(
        LifecycleMachine,
        settings=settings_(
            max_examples=60, stateful_step_count=25, deadline=None, database=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
