"""Every write path reaches DynamoDB through the real pipeline: triggers, outbox, a Celery worker
process with beat, the conditional projector."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import orjson
import pgserver
import pytest

from catalog import services
from catalog.models import Category, OutboxEvent, Price, Product, StockLevel, Warehouse
from devtools.net import wait_for
from projections.drift import check
from projections.tables import CategoryListingItem, ProductDocument
from tests.services import database_url

pytestmark = pytest.mark.integration
PSQL = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"


def converged(expected_products: int) -> bool:
    if OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists():
        return False
    report = check()
    return report.clean and report.checked == expected_products + 1  # + the category tree


def document(sku: str) -> dict | None:
    try:
        item = ProductDocument.get(sku, consistent_read=True)
    except ProductDocument.DoesNotExist:
        return None
    return None if item.deleted else orjson.loads(item.body)


@pytest.fixture
def catalog(worker):
    """Five projected products in "tools", an empty "garden" category and one warehouse."""
    tools = Category.objects.create(slug="tools", name="Tools")
    garden = Category.objects.create(slug="garden", name="Garden")
    warehouse = Warehouse.objects.create(code="W1", name="Main")
    products = [
        services.product_create(sku=f"SKU-{n}", name=f"Product {n}", category=tools) for n in range(1, 6)
    ]
    for product in products:
        services.price_set(product=product, currency="EUR", amount=Decimal("10.00"))
        services.stock_adjust(product=product, warehouse=warehouse, delta=5)
    wait_for(lambda: converged(5), 30, 0.3, "initial projection")
    return {"tools": tools, "garden": garden, "warehouse": warehouse, "products": products}


def test_orm_services_and_saves(worker, catalog):
    product = catalog["products"][0]
    services.price_set(product=product, currency="USD", amount=Decimal("12.50"))
    services.product_update(product=product, name="Claw hammer")
    wait_for(lambda: converged(5), 30, 0.3, "convergence")
    doc = document("SKU-1")
    assert doc["name"] == "Claw hammer"
    assert doc["prices"] == {"EUR": "10.00", "USD": "12.50"}


def test_queryset_update_bulk_create_bulk_update_and_delete(worker, catalog):
    Price.objects.filter(currency="EUR").update(amount=Decimal("7.77"))
    Price.objects.bulk_create(
        [Price(product=p, currency="GBP", amount=Decimal("6.00")) for p in catalog["products"]]
    )
    levels = list(StockLevel.objects.all())
    for level in levels:
        level.quantity = 0
    StockLevel.objects.bulk_update(levels, ["quantity"])
    Product.objects.filter(sku="SKU-5").delete()
    wait_for(lambda: converged(4), 30, 0.3, "convergence")
    assert document("SKU-1")["prices"] == {"EUR": "7.77", "GBP": "6.00"}
    assert document("SKU-2")["in_stock"] is False
    assert document("SKU-5") is None
    assert ProductDocument.get("SKU-5").deleted is True


def test_category_move_and_rename(worker, catalog):
    Product.objects.filter(sku="SKU-1").update(category=catalog["garden"])
    Category.objects.filter(slug="tools").update(name="Hand tools")
    wait_for(lambda: converged(5), 30, 0.3, "convergence")
    assert document("SKU-1")["category"]["slug"] == "garden"
    assert document("SKU-2")["category"]["name"] == "Hand tools"
    live = {(i.pk, i.sk) for i in CategoryListingItem.scan() if not i.deleted}
    assert ("CATEGORY#garden", "SKU-1") in live
    assert ("CATEGORY#tools", "SKU-1") not in live


def test_raw_sql_from_another_program(worker, catalog):
    """psql is another process on another connection: no Django signal fires, the triggers do."""
    sql = "UPDATE catalog_price SET amount = amount + 1; UPDATE catalog_stocklevel SET quantity = 42"
    subprocess.run([str(PSQL), database_url(), "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)
    wait_for(lambda: converged(5), 30, 0.3, "convergence")
    for n in range(1, 6):
        doc = document(f"SKU-{n}")
        assert doc["prices"]["EUR"] == "11.00"
        assert (doc["in_stock"], doc["stock_band"]) == (True, "high")


def test_admin_bulk_delete_action(worker, catalog, admin_client):
    ids = [p.pk for p in catalog["products"][:2]]
    response = admin_client.post(
        "/admin/catalog/product/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert response.status_code == 302
    wait_for(lambda: converged(3), 30, 0.3, "convergence")
    assert document("SKU-1") is None and document("SKU-2") is None
    assert document("SKU-3") is not None


def test_notify_listener_wakes_the_relay_for_raw_sql(start_worker, start_listener, dynamodb):
    """Without beat, nothing but the LISTEN/NOTIFY kicker can start a relay after a psql write."""
    start_worker(beat=False)
    category = Category.objects.create(slug="tools", name="Tools")
    services.product_create(sku="SKU-1", name="Hammer", category=category)
    start_listener()
    wait_for(lambda: document("SKU-1") is not None, 30, 0.2, "first projection")
    sql = "UPDATE catalog_product SET name = 'Claw hammer' WHERE sku = 'SKU-1'"
    subprocess.run([str(PSQL), database_url(), "-c", sql], check=True, capture_output=True)
    wait_for(lambda: (document("SKU-1") or {}).get("name") == "Claw hammer", 30, 0.1, "raw SQL projected")


def test_the_listener_drains_when_no_relay_task_can_run(start_listener, broker, dynamodb):
    """Broker down and no worker: once rows have been due for OUTBOX_STALL_SECONDS, the listener
    projects them itself (Celery's worker can also stop consuming after losing its broker)."""
    broker.stop()
    try:
        category = Category.objects.create(slug="tools", name="Tools")
        services.product_create(sku="SKU-1", name="Hammer", category=category)
        start_listener(OUTBOX_STALL_SECONDS="1")
        wait_for(lambda: document("SKU-1") is not None, 30, 0.2, "projected without Celery")
        services.product_update(product=Product.objects.get(sku="SKU-1"), name="Claw hammer")
        wait_for(lambda: (document("SKU-1") or {}).get("name") == "Claw hammer", 30, 0.2, "update projected")
    finally:
        broker.start()
    wait_for(lambda: not OutboxEvent.objects.exists(), 30, 0.2, "outbox empty")
