"""Change capture: every write path bumps the product's version and writes an outbox row in the
same transaction, and versions rise in commit order. Transactional tests, so that other
connections see committed rows and the triggers run as they do in production."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import psycopg2
import pytest
from django.db import connection, transaction
from django.db.models import Max

from catalog.models import OutboxEvent, Price, Product, StockLevel
from devtools.net import wait_for
from tests.factories import CategoryFactory, PriceFactory, ProductFactory, StockLevelFactory, WarehouseFactory
from tests.services import database_url

pytestmark = pytest.mark.django_db(transaction=True)


def version_of(product: Product) -> int:
    return Product.objects.values_list("version", flat=True).get(pk=product.pk)


def _last_outbox_id() -> int:
    return OutboxEvent.objects.aggregate(last=Max("id"))["last"] or 0


@contextmanager
def captured(*products: Product, untouched: tuple[Product, ...] = ()) -> Iterator[None]:
    """The block must raise each product's version and leave an outbox row carrying the new one,
    and leave the ``untouched`` products alone."""
    before = {p.pk: version_of(p) for p in (*products, *untouched)}
    after_id = _last_outbox_id()
    yield
    for product in products:
        version = version_of(product)
        assert version > before[product.pk], f"{product.sku} was not bumped"
        rows = OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=product.pk, id__gt=after_id)
        assert version in set(rows.values_list("version", flat=True)), f"{product.sku}: no outbox row at v{version}"
    for product in untouched:
        assert version_of(product) == before[product.pk], f"{product.sku} was bumped"
        assert not OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=product.pk, id__gt=after_id)


@pytest.fixture
def raw_connect() -> Iterator[Callable[[], psycopg2.extensions.connection]]:
    """Connections of another program: plain psycopg2, no Django, no signals."""
    opened: list[psycopg2.extensions.connection] = []

    def connect() -> psycopg2.extensions.connection:
        opened.append(psycopg2.connect(database_url()))
        return opened[-1]

    yield connect
    for conn in opened:
        conn.close()


def test_orm_save() -> None:
    product = ProductFactory()
    with captured(product):
        product.name = "Renamed"
        product.save()


def test_insert_starts_with_a_clock_version_and_an_outbox_row() -> None:
    after_id = _last_outbox_id()
    product = ProductFactory()
    version = version_of(product)
    assert version > 1_600_000_000_000_000  # microseconds since the epoch, not a counter
    assert list(
        OutboxEvent.objects.filter(id__gt=after_id, aggregate_type="product").values_list("aggregate_id", "version")
    ) == [(product.pk, version)]


def test_rolled_back_write_leaves_no_trace() -> None:
    price = PriceFactory()
    before, after_id = version_of(price.product), _last_outbox_id()
    with pytest.raises(RuntimeError), transaction.atomic():
        Price.objects.filter(pk=price.pk).update(amount=Decimal("1.00"))
        raise RuntimeError
    assert version_of(price.product) == before
    assert not OutboxEvent.objects.filter(id__gt=after_id).exists()


def test_queryset_update_of_price() -> None:
    price, other = PriceFactory(), PriceFactory()
    with captured(price.product, untouched=(other.product,)):
        Price.objects.filter(pk=price.pk).update(amount=Decimal("3.21"))


def test_queryset_update_of_stock() -> None:
    level, other = StockLevelFactory(), StockLevelFactory()
    with captured(level.product, untouched=(other.product,)):
        StockLevel.objects.filter(pk=level.pk).update(quantity=99)


def test_bulk_create_of_prices() -> None:
    first, second = ProductFactory(), ProductFactory()
    with captured(first, second):
        Price.objects.bulk_create([
            Price(product=first, currency="EUR", amount=Decimal("1.00")),
            Price(product=first, currency="USD", amount=Decimal("1.10")),
            Price(product=second, currency="EUR", amount=Decimal("2.00")),
        ])


def test_bulk_update_of_prices_and_products() -> None:
    prices = [PriceFactory(), PriceFactory()]
    for price in prices:
        price.amount = Decimal("7.77")
    with captured(*(p.product for p in prices)):
        Price.objects.bulk_update(prices, ["amount"])
    products = [p.product for p in prices]
    for product in products:
        product.name = "Bulk renamed"
    with captured(*products):
        Product.objects.bulk_update(products, ["name"])


def test_delete_of_a_price() -> None:
    price = PriceFactory()
    with captured(price.product):
        price.delete()


def test_category_rename_bumps_its_products_only() -> None:
    tools, garden = CategoryFactory(), CategoryFactory()
    hammer, saw, rake = ProductFactory(category=tools), ProductFactory(category=tools), ProductFactory(category=garden)
    with captured(hammer, saw, untouched=(rake,)):
        tools.name = "Hand tools"
        tools.save()


def test_unchanged_category_save_bumps_nothing() -> None:
    tools = CategoryFactory()
    hammer = ProductFactory(category=tools)
    with captured(untouched=(hammer,)):
        tools.save()


def test_parent_rename_and_move_bump_products_below() -> None:
    """Product documents carry the category path, so the whole subtree is re-projected."""
    root, other_root = CategoryFactory(), CategoryFactory()
    child = CategoryFactory(parent=root)
    grandchild = CategoryFactory(parent=child)
    in_child, in_grandchild = ProductFactory(category=child), ProductFactory(category=grandchild)
    elsewhere = ProductFactory(category=other_root)
    with captured(in_child, in_grandchild, untouched=(elsewhere,)):
        root.name = "Renamed root"
        root.save()
    with captured(in_grandchild, untouched=(elsewhere,)):
        grandchild.parent = other_root
        grandchild.save()


def test_warehouse_code_change_bumps_products_stocked_there() -> None:
    warehouse = WarehouseFactory(code="OLD")
    stocked = StockLevelFactory(warehouse=warehouse).product
    elsewhere = StockLevelFactory().product
    with captured(untouched=(stocked, elsewhere)):
        warehouse.name = "Only the name"
        warehouse.save()
    with captured(stocked, untouched=(elsewhere,)):
        warehouse.code = "NEW"
        warehouse.save()


def test_raw_sql_from_another_program(raw_connect) -> None:
    price = PriceFactory()
    unstocked = ProductFactory()
    warehouse = WarehouseFactory()
    conn = raw_connect()
    with captured(price.product, unstocked):
        with conn, conn.cursor() as cursor:
            cursor.execute("UPDATE catalog_price SET amount = 0.5 WHERE id = %s", [price.pk])
            cursor.execute(
                "INSERT INTO catalog_stocklevel (product_id, warehouse_id, quantity) VALUES (%s, %s, 5)",
                [unstocked.pk, warehouse.pk],
            )


def test_outbox_notification_is_delivered_at_commit(raw_connect) -> None:
    """The relay's listener is woken by committed writes only."""
    listener, writer = raw_connect(), raw_connect()
    listener.autocommit = True
    with listener.cursor() as cursor:
        cursor.execute("LISTEN hybridsite_outbox")
    price = PriceFactory()

    def notified(payload: str | None = None) -> bool:
        listener.poll()
        return any(payload in (None, notify.payload) for notify in listener.notifies)

    # The factory commits several times; a marker committed after it arrives after all of its
    # notifications (they are delivered in commit order), so none of them is left to come.
    with writer.cursor() as cursor:
        cursor.execute("NOTIFY hybridsite_outbox, 'marker'")
    writer.commit()
    wait_for(lambda: notified("marker"), 10, 0.02, "the marker after the factory's notifications")
    listener.notifies.clear()
    with writer.cursor() as cursor:
        cursor.execute("UPDATE catalog_price SET amount = 2 WHERE id = %s", [price.pk])
    listener.poll()
    assert listener.notifies == []
    writer.commit()
    wait_for(notified, 10, 0.02, "notification")
    assert listener.notifies[0].channel == "hybridsite_outbox"
    assert listener.notifies[0].payload == "product"


def test_versions_follow_commit_order_not_start_order(raw_connect) -> None:
    """B starts first but commits second: it waits on the product row A locked through the price
    trigger, then gets the higher version. A start-time or insert-time version would invert them."""
    product = ProductFactory()
    eur = PriceFactory(product=product, currency="EUR")
    usd = PriceFactory(product=product, currency="USD")
    a, b = raw_connect(), raw_connect()
    after_id = _last_outbox_id()

    with b.cursor() as cursor:
        cursor.execute("SELECT now()")
        b_started = cursor.fetchone()[0]
    with a.cursor() as cursor:
        cursor.execute("SELECT now()")
        a_started = cursor.fetchone()[0]
        cursor.execute("UPDATE catalog_price SET amount = 1 WHERE id = %s", [eur.pk])
        cursor.execute("SELECT version FROM catalog_product WHERE id = %s", [product.pk])
        a_version = cursor.fetchone()[0]
    assert b_started < a_started

    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            with b.cursor() as cursor:
                cursor.execute("UPDATE catalog_price SET amount = 2 WHERE id = %s", [usd.pk])
            b.commit()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=second_writer)
    thread.start()

    def b_waits_on_a_lock() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [b.get_backend_pid()])
            row = cursor.fetchone()
        return row is not None and row[0] == "Lock"

    wait_for(b_waits_on_a_lock, 10, 0.02, "the second writer to block on the product row")
    a.commit()
    thread.join(10)
    assert not thread.is_alive() and errors == []

    b_version = version_of(product)
    assert b_version > a_version
    rows = list(
        OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=product.pk, id__gt=after_id)
        .order_by("id").values_list("version", flat=True)
    )
    assert rows == [a_version, b_version]


def test_recreated_sku_starts_above_the_deleted_products_final_version() -> None:
    category = CategoryFactory()
    old = ProductFactory(sku="REUSED-1", category=category)
    PriceFactory(product=old)
    old_id, last_live_version = old.pk, version_of(old)
    old.delete()
    delete_row = OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=old_id).latest("id")
    assert delete_row.version > last_live_version

    new = ProductFactory(sku="REUSED-1", category=category)
    assert new.pk != old_id
    assert version_of(new) > delete_row.version
