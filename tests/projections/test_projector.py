"""The projector, the relay, the drift check and the backfill against real Postgres, DynamoDB (moto
server over HTTP) and Redis, without a worker: conditional writes, tombstones, dead rows, repair."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import orjson
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from redis import Redis

from catalog.models import OutboxEvent, Price, Product, StockLevel
from catalog.services import price_set, product_update, stock_adjust
from hybridsite import cache_keys
from projections import cache, registry
from projections.backfill import BackfillFailed, backfill
from projections.drift import check
from projections.models import BackfillCheckpoint
from projections.projector import project, put_document
from projections.registry import Snapshot, stored_category_tree
from projections.relay import StopReason, drain, retry_dead
from projections.tables import (
    TABLES,
    CategoryListingItem,
    CategoryTreeDocument,
    ProductDocument,
    ProjectedItem,
)
from tests.factories import (
    CategoryFactory,
    PriceFactory,
    ProductFactory,
    StockLevelFactory,
    WarehouseFactory,
)

pytestmark = pytest.mark.usefixtures("transactional_db", "dynamodb", "redis_clean")

POISON = "x" * 500_000


def version_of(product: Product) -> int:
    return Product.objects.values_list("version", flat=True).get(pk=product.pk)


def stored(model: type[ProjectedItem], *key: str) -> ProjectedItem | None:
    try:
        return model.get(*key)
    except model.DoesNotExist:
        return None


def body(item: ProjectedItem) -> dict:
    return orjson.loads(item.body)


def cached(redis: Redis, name: str) -> cache.Entry | None:
    raw = redis.get(cache_keys.document(name))
    return cache.decode(raw) if raw is not None else None


def clear_tables() -> None:
    for model in TABLES:
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)


def run_check(*args: str) -> tuple[int, list[str]]:
    """``projections_check`` as cron runs it: its exit code (SystemExit) and its output lines."""
    out = StringIO()
    try:
        call_command("projections_check", *args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue().splitlines()
    return 0, out.getvalue().splitlines()


def outbox_row(product_id: int) -> OutboxEvent:
    return OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=product_id).latest("id")


@pytest.fixture
def hammer() -> Product:
    product = ProductFactory(sku="HAM-1", name="Hammer", category=CategoryFactory(slug="tools", name="Tools"))
    PriceFactory(product=product, currency="EUR", amount=Decimal("9.9"))
    StockLevelFactory(product=product, warehouse=WarehouseFactory(code="BER"), quantity=2)
    return product


class TestProject:
    def test_writes_document_listing_item_and_tree(self, hammer: Product) -> None:
        version = version_of(hammer)
        outcome = project("product", hammer.pk)
        assert (outcome.version, outcome.written, outcome.skipped, outcome.tombstoned) == (version, 2, 0, 0)

        document = ProductDocument.get("HAM-1")
        assert (document.owner, document.version, document.deleted) == (f"product#{hammer.pk}", version, False)
        assert body(document)["prices"] == {"EUR": "9.90"}
        assert (body(document)["in_stock"], body(document)["stock_band"]) == (True, "low")
        assert body(document)["version"] == version

        listing = CategoryListingItem.get("CATEGORY#tools", "HAM-1")
        assert listing.version == version
        assert body(listing) == {
            "sku": "HAM-1", "name": "Hammer", "prices": {"EUR": "9.90"}, "in_stock": True, "version": version,
        }

        tree_outcome = project("category", hammer.category_id)
        tree = CategoryTreeDocument.get("TREE")
        assert tree_outcome.written == 2  # its one piece, then its head
        [piece_key] = orjson.loads(tree.body)["piece_keys"]
        assert tree.owner == CategoryTreeDocument.get(piece_key).owner == "category-tree"
        whole = orjson.loads(stored_category_tree().body)
        assert whole["categories"] == [{"slug": "tools", "name": "Tools", "children": []}]
        assert whole["version"] == tree.version == tree_outcome.version

    def test_projecting_twice_skips_the_second(self, hammer: Product) -> None:
        project("product", hammer.pk)
        first = ProductDocument.get("HAM-1")
        outcome = project("product", hammer.pk)
        assert (outcome.written, outcome.skipped) == (0, 2)
        again = ProductDocument.get("HAM-1")
        assert (again.version, again.body, again.projected_at) == (first.version, first.body, first.projected_at)

    def test_newer_version_in_dynamodb_is_not_overwritten(self, hammer: Product) -> None:
        version = version_of(hammer)
        newer = version + 1000
        assert put_document(
            ProductDocument, {"pk": "HAM-1"}, owner=f"product#{hammer.pk}", version=newer,
            body=b'{"marker": "newer"}', committed_at=None, projected_at=timezone.now(),
        )
        outcome = project("product", hammer.pk)
        assert (outcome.written, outcome.skipped) == (1, 1)
        document = ProductDocument.get("HAM-1")
        assert (document.version, body(document)) == (newer, {"marker": "newer"})
        assert CategoryListingItem.get("CATEGORY#tools", "HAM-1").version == version

    def test_equal_or_older_delivery_is_refused(self, hammer: Product) -> None:
        project("product", hammer.pk)
        version = version_of(hammer)
        for stale in (version, version - 1):
            assert not put_document(
                ProductDocument, {"pk": "HAM-1"}, owner=f"product#{hammer.pk}", version=stale,
                body=b"{}", committed_at=None, projected_at=timezone.now(),
            )
        assert body(ProductDocument.get("HAM-1"))["name"] == "Hammer"

    def test_moving_category_tombstones_the_old_listing_item(self, hammer: Product, redis_clean: Redis) -> None:
        project("product", hammer.pk)
        product_update(product=hammer, category=CategoryFactory(slug="garden", name="Garden"))
        version = version_of(hammer)
        outcome = project("product", hammer.pk)
        assert (outcome.written, outcome.tombstoned) == (2, 1)

        old = CategoryListingItem.get("CATEGORY#tools", "HAM-1")
        assert (old.deleted, old.version, old.body) == (True, version, None)
        new = CategoryListingItem.get("CATEGORY#garden", "HAM-1")
        assert (new.deleted, new.version) == (False, version)
        assert body(ProductDocument.get("HAM-1"))["category"]["slug"] == "garden"
        assert int(redis_clean.get(cache_keys.listing_generation("tools"))) == 2
        assert int(redis_clean.get(cache_keys.listing_generation("garden"))) == 1

    def test_deactivating_tombstones_and_caches_the_absence(self, hammer: Product, redis_clean: Redis) -> None:
        project("product", hammer.pk)
        product_update(product=hammer, is_active=False)
        version = version_of(hammer)
        outcome = project("product", hammer.pk)
        assert (outcome.written, outcome.tombstoned) == (0, 2)
        for item in (ProductDocument.get("HAM-1"), CategoryListingItem.get("CATEGORY#tools", "HAM-1")):
            assert (item.deleted, item.version) == (True, version)
        assert cached(redis_clean, "product:HAM-1") == cache.Entry(version=version, status=404, body=b"")

    def test_delete_tombstones_with_the_outbox_version(self, hammer: Product) -> None:
        project("product", hammer.pk)
        product_id = hammer.pk
        hammer.delete()
        deleted_version = outbox_row(product_id).version
        outcome = project("product", product_id, deleted_version=deleted_version)
        assert (outcome.version, outcome.tombstoned) == (deleted_version, 2)
        document = ProductDocument.get("HAM-1")
        assert (document.deleted, document.version, document.owner) == (True, deleted_version, f"product#{product_id}")
        assert document.expires_at > timezone.now() + timedelta(days=1)
        assert CategoryListingItem.get("CATEGORY#tools", "HAM-1").deleted

    @pytest.mark.parametrize("skew", [0, 10**12], ids=["same-clock", "tombstone-ahead-of-clock"])
    def test_recreated_sku_projects_over_the_tombstone(self, hammer: Product, skew: int) -> None:
        """The tombstone belongs to the deleted product: a new owner of the SKU may replace it, even
        one whose version is lower (a clock step back between delete and re-create)."""
        category = hammer.category
        project("product", hammer.pk)
        old_id = hammer.pk
        hammer.delete()
        project("product", old_id, deleted_version=outbox_row(old_id).version + skew)

        again = ProductFactory(sku="HAM-1", name="Hammer II", category=category)
        version = version_of(again)
        outcome = project("product", again.pk)
        assert outcome.written == 2
        document = ProductDocument.get("HAM-1")
        assert (document.deleted, document.owner, document.version) == (False, f"product#{again.pk}", version)
        assert body(document)["name"] == "Hammer II"
        listing = CategoryListingItem.get("CATEGORY#tools", "HAM-1")
        assert (listing.deleted, listing.owner) == (False, f"product#{again.pk}")

    def test_a_document_too_large_is_a_placeholder_and_its_listing_item_is_current(
        self, hammer: Product, redis_clean: Redis
    ) -> None:
        """No older version stays in DynamoDB or Redis as if it were current."""
        project("product", hammer.pk)
        assert cached(redis_clean, "product:HAM-1") is not None
        product_update(product=hammer, description=POISON)
        outcome = project("product", hammer.pk)
        version = version_of(hammer)
        assert (outcome.written, outcome.unstorable, outcome.uncached) == (2, 1, {"product:HAM-1"})
        assert orjson.loads(outcome.documents["product:HAM-1"])["description"] == POISON
        placeholder = ProductDocument.get("HAM-1")
        assert (placeholder.version, placeholder.body, placeholder.deleted) == (version, None, False)
        assert placeholder.unstorable > 400 * 1024
        assert CategoryListingItem.get("CATEGORY#tools", "HAM-1").version == version
        assert cached(redis_clean, "product:HAM-1") is None


class TestCache:
    def test_holds_the_projected_version_and_body(self, hammer: Product, redis_clean: Redis) -> None:
        project("product", hammer.pk)
        version = version_of(hammer)
        entry = cached(redis_clean, "product:HAM-1")
        assert entry == cache.Entry(version=version, status=200, body=ProductDocument.get("HAM-1").body.encode())

        assert cache.store("product:HAM-1", version - 1, b'{"old": true}') is False
        assert cache.store("product:HAM-1", version, b'{"same": true}') is False
        assert cached(redis_clean, "product:HAM-1") == entry

        price_set(product=hammer, currency="EUR", amount=Decimal("8.00"))
        project("product", hammer.pk)
        newer = cached(redis_clean, "product:HAM-1")
        assert newer.version == version_of(hammer) > version
        assert orjson.loads(newer.body)["prices"] == {"EUR": "8.00"}

    def test_an_older_projection_does_not_replace_the_entry(self, hammer: Product, redis_clean: Redis) -> None:
        """A slow projector that read an old snapshot: DynamoDB refuses it, and so must Redis."""
        price_set(product=hammer, currency="EUR", amount=Decimal("1.00"))
        project("product", hammer.pk)
        current = cached(redis_clean, "product:HAM-1")
        assert cache.store("product:HAM-1", current.version - 5, b"{}") is False
        assert cached(redis_clean, "product:HAM-1") == current


class TestOutboxDrain:
    def test_drain_projects_every_write_and_empties_the_outbox(self) -> None:
        category = CategoryFactory(slug="tools", name="Tools")
        warehouse = WarehouseFactory(code="BER")
        products = [ProductFactory(category=category) for _ in range(4)]
        Price.objects.bulk_create([Price(product=p, currency="EUR", amount=Decimal("5")) for p in products])
        stock_adjust(product=products[0], warehouse=warehouse, delta=3)
        StockLevel.objects.filter(product=products[0]).update(quantity=7)
        product_update(product=products[1], is_active=False)
        CategoryFactory(slug="garden", name="Garden", parent=category)

        result = drain(5)
        assert result.stopped_by is StopReason.EMPTY
        assert result.failed == 0
        assert not OutboxEvent.objects.exists()
        report = check()
        assert report.clean, report.line()
        assert report.checked == 5
        first = ProductDocument.get(products[0].sku)
        assert first.version == version_of(products[0])
        assert body(first)["stock_band"] == "medium"
        assert stored(ProductDocument, products[1].sku) is None
        tree = orjson.loads(stored_category_tree().body)["categories"]
        assert tree == [{"slug": "tools", "name": "Tools", "children": [
            {"slug": "garden", "name": "Garden", "children": []},
        ]}]

    def test_a_permanent_failure_goes_dead_while_the_batch_is_projected(self) -> None:
        category = CategoryFactory()
        healthy = ProductFactory(sku="HEALTHY-1", category=category)
        poison = OutboxEvent.objects.create(aggregate_type="retired-aggregate", aggregate_id=1, version=1)

        first = drain(5)
        assert (first.failed, first.dead) == (1, 0)
        assert ProductDocument.get("HEALTHY-1").version == version_of(healthy)
        row = OutboxEvent.objects.get()
        assert (row.pk, row.status, row.attempts) == (poison.pk, "pending", 1)

        OutboxEvent.objects.update(available_at=timezone.now())
        second = drain(5)
        assert second.dead == 1
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("dead", 2)
        assert "PermanentProjectionError" in row.last_error and "retired-aggregate" in row.last_error
        assert drain(5).rows == 0

        assert retry_dead() == 1
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("pending", 0)
        assert check().clean


class TestDriftCheck:
    @pytest.fixture
    def projected(self) -> list[Product]:
        category = CategoryFactory(slug="tools", name="Tools")
        products = [ProductFactory(sku=f"DRIFT-{n}", category=category) for n in range(3)]
        drain(5)
        assert check().clean
        return products

    @staticmethod
    def counts() -> tuple[int, int, int, int]:
        report = check()
        return report.missing, report.stale, report.differ, report.extra

    def _drift_everything(self, products: list[Product]) -> None:
        ProductDocument.get(products[0].sku).delete()
        assert self.counts() == (1, 0, 0, 0)

        tampered = ProductDocument.get(products[1].sku)
        tampered.body = orjson.dumps({**body(tampered), "name": "Tampered"}).decode()
        tampered.save()
        assert self.counts() == (1, 0, 1, 0)

        assert put_document(
            ProductDocument, {"pk": "GHOST-1"}, owner="product#999999", version=1, body=b"{}",
            committed_at=None, projected_at=timezone.now(),
        )
        assert self.counts() == (1, 0, 1, 1)

    def test_reports_drift_and_exits_1_without_repair(self, projected: list[Product]) -> None:
        self._drift_everything(projected)
        assert run_check() == (1, ["checked=4 missing=1 stale=0 differ=1 extra=1"])

    def test_stale_document_is_reported(self, projected: list[Product]) -> None:
        document = ProductDocument.get(projected[2].sku)
        document.version -= 1
        document.save()
        assert self.counts() == (0, 1, 0, 0)

    def test_repair_fixes_missing_and_extra(self, projected: list[Product]) -> None:
        ProductDocument.get(projected[0].sku).delete()
        put_document(
            ProductDocument, {"pk": "GHOST-1"}, owner="product#999999", version=1, body=b"{}",
            committed_at=None, projected_at=timezone.now(),
        )
        assert run_check("--repair") == (0, [
            "checked=4 missing=1 stale=0 differ=0 extra=1",
            "repaired=2",
            "checked=4 missing=0 stale=0 differ=0 extra=0",
        ])
        assert run_check() == (0, ["checked=4 missing=0 stale=0 differ=0 extra=0"])
        assert ProductDocument.get("GHOST-1").deleted
        assert ProductDocument.get(projected[0].sku).version == version_of(projected[0])

    def test_repair_fixes_every_kind_of_drift(self, projected: list[Product]) -> None:
        """A body that differs at the same version (a corrupted item, or a builder changed by a
        deploy) must be rewritten too: that is what the operator runs --repair for."""
        self._drift_everything(projected)
        code, lines = run_check("--repair")
        assert lines[-1] == "checked=4 missing=0 stale=0 differ=0 extra=0"
        assert code == 0
        assert body(ProductDocument.get(projected[1].sku))["name"] == projected[1].name


class TestBackfill:
    @pytest.fixture
    def products(self) -> list[Product]:
        category = CategoryFactory()
        return [ProductFactory(category=category) for _ in range(6)]

    def _projected_skus(self) -> set[str]:
        return {item.pk for item in ProductDocument.scan() if not item.deleted}

    def test_projects_every_product(self, products: list[Product]) -> None:
        assert backfill("product", chunk=2, workers=3) == 6
        for product in products:
            assert ProductDocument.get(product.sku).version == version_of(product)
        checkpoint = BackfillCheckpoint.objects.get(aggregate_type="product")
        assert (checkpoint.last_id, checkpoint.projected, checkpoint.finished) == (products[-1].pk, 6, True)

    def test_refreshes_only_the_documents_redis_holds(self, products: list[Product], redis_clean: Redis) -> None:
        """A backfill of a million documents must not evict the hot set: a document read lately
        (Redis holds its floor) is refreshed to the new version, the others are not added."""
        read, *unread = products
        project("product", read.pk)
        cache.store(f"product:{read.sku}", version_of(read), b"{}", lease=cache.NO_LEASE)  # as a read does
        price_set(product=read, currency="EUR", amount=Decimal("3.21"))
        assert backfill("product", chunk=2, workers=2) == 6
        assert cached(redis_clean, f"product:{read.sku}").version == version_of(read)
        assert [cached(redis_clean, f"product:{product.sku}") for product in unread] == [None] * len(unread)

    def test_resume_continues_after_the_checkpoint(self, products: list[Product]) -> None:
        BackfillCheckpoint.objects.create(aggregate_type="product", last_id=products[2].pk, projected=3)
        assert backfill("product", resume=True, chunk=2, workers=2) == 3
        assert self._projected_skus() == {p.sku for p in products[3:]}
        checkpoint = BackfillCheckpoint.objects.get(aggregate_type="product")
        assert (checkpoint.last_id, checkpoint.projected, checkpoint.finished) == (products[-1].pk, 6, True)

        clear_tables()
        assert backfill("product", resume=True) == 6
        assert self._projected_skus() == {p.sku for p in products}

    def test_processes_project_every_chunk_and_the_checkpoint_follows_them(self, products: list[Product]) -> None:
        """After a backfill in this process, whose writer threads a forked process does not have."""
        assert backfill("product", chunk=2, workers=2) == 6
        clear_tables()
        assert backfill("product", chunk=2, workers=2, processes=2) == 6
        for product in products:
            assert ProductDocument.get(product.sku).version == version_of(product)
        checkpoint = BackfillCheckpoint.objects.get(aggregate_type="product")
        assert (checkpoint.last_id, checkpoint.projected, checkpoint.finished) == (products[-1].pk, 6, True)

    def test_a_chunk_failing_in_a_process_stops_the_backfill_before_it(
        self, products: list[Product], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The checkpoint stays after the last chunk finished with every one before it: --resume
        projects the failed chunk again."""
        aggregate = registry.AGGREGATES["product"]

        def load(ids: list[int]) -> dict[int, Snapshot]:
            if products[2].pk in ids:
                raise ValueError("this product cannot be read")
            return aggregate.load_many(ids)

        monkeypatch.setitem(registry.AGGREGATES, "product", replace(aggregate, load_many=load))  # forked as it is
        with pytest.raises(BackfillFailed, match=f"ids {products[2].pk}..{products[3].pk}"):
            backfill("product", chunk=2, workers=2, processes=2)
        checkpoint = BackfillCheckpoint.objects.get(aggregate_type="product")
        assert (checkpoint.last_id, checkpoint.projected, checkpoint.finished) == (products[1].pk, 2, False)

    def test_processes_refuse_to_run_inside_a_transaction(self, products: list[Product]) -> None:
        """Forking closes this process's connection first, which would break the caller's transaction."""
        with transaction.atomic(), pytest.raises(ValueError, match="inside a transaction"):
            backfill("product", processes=2)

    def test_backfill_never_overwrites_a_newer_document(self, products: list[Product]) -> None:
        newer = version_of(products[0]) + 1000
        put_document(
            ProductDocument, {"pk": products[0].sku}, owner=f"product#{products[0].pk}", version=newer,
            body=b'{"marker": "newer"}', committed_at=None, projected_at=timezone.now(),
        )
        assert backfill("product") == 6
        assert ProductDocument.get(products[0].sku).version == newer


@pytest.mark.django_db(transaction=True)
def test_setup_backfills_into_tables_it_creates(dynamodb, redis_clean) -> None:
    """An emulator restarted empty: setup recreates the tables and projects what Postgres holds."""
    product = ProductFactory()
    ProductDocument.delete_table()
    out = StringIO()
    call_command("projections_setup", "--backfill-created", stdout=out)
    assert f"{ProductDocument.Meta.table_name}: created" in out.getvalue()
    assert "product: backfilled 1 into new tables" in out.getvalue()
    assert ProductDocument.get(product.sku).version == version_of(product)
    out = StringIO()
    call_command("projections_setup", "--backfill-created", stdout=out)
    assert "backfilled" not in out.getvalue()
