"""Whatever the order of deliveries (duplicates, reordering, a projector racing a late retry), the
stored document is the newest version anyone delivered, with that version's body, and neither it
nor its cache entry ever goes backwards."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django_redis import get_redis_connection
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from catalog.models import Category, Warehouse
from catalog.services import price_set, product_create, product_update, stock_adjust
from projections import cache, cache_keys
from projections.documents import comparable
from projections.models import ProductDocument
from projections.projector import project, put_document, read_snapshot
from projections.registry import AGGREGATES, build_product_document

RECORDED_AT = datetime(2024, 1, 1, tzinfo=UTC)
SKUS = itertools.count()


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
        settings=settings(
            max_examples=25, stateful_step_count=30, deadline=None, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
