"""The database refuses bad rows on every path; the services refuse them before writing anything;
and every change to a product aggregate moves the product's version forward."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from catalog.models import Category, OutboxEvent, Price, Product, StockLevel
from catalog.services import StockOutOfRange, price_set, product_create, product_update, stock_adjust
from tests.factories import (
    CategoryFactory,
    PriceFactory,
    ProductFactory,
    StockLevelFactory,
    WarehouseFactory,
)

pytestmark = pytest.mark.django_db


def refused(constraint: str) -> pytest.RaisesExc:
    """The named constraint (or unique index) rejects the write; the savepoint keeps the test usable."""
    return pytest.raises(IntegrityError, match=constraint)


class TestDatabaseConstraints:
    def test_negative_stock_on_insert(self) -> None:
        with refused("stock_quantity_not_negative"), transaction.atomic():
            StockLevelFactory(quantity=-1)

    def test_negative_stock_on_queryset_update(self) -> None:
        level = StockLevelFactory(quantity=3)
        with refused("stock_quantity_not_negative"), transaction.atomic():
            StockLevel.objects.filter(pk=level.pk).update(quantity=-1)
        level.refresh_from_db()
        assert level.quantity == 3

    def test_duplicate_sku(self) -> None:
        ProductFactory(sku="DUP-1")
        with refused("sku"), transaction.atomic():
            ProductFactory(sku="DUP-1")
        assert Product.objects.filter(sku="DUP-1").count() == 1

    def test_empty_sku(self) -> None:
        with refused("product_sku_not_empty"), transaction.atomic():
            ProductFactory(sku="")

    def test_negative_price_on_insert(self) -> None:
        with refused("price_amount_not_negative"), transaction.atomic():
            PriceFactory(amount=Decimal("-0.01"))

    def test_negative_price_on_queryset_update(self) -> None:
        price = PriceFactory(amount=Decimal("5.00"))
        with refused("price_amount_not_negative"), transaction.atomic():
            Price.objects.filter(pk=price.pk).update(amount=Decimal("-1"))
        price.refresh_from_db()
        assert price.amount == Decimal("5.00")

    @pytest.mark.parametrize("currency", ["eur", "E1R", "EU"])
    def test_bad_currency_code(self, currency: str) -> None:
        with refused("price_currency_iso4217"), transaction.atomic():
            PriceFactory(currency=currency)

    def test_duplicate_price_currency(self) -> None:
        price = PriceFactory(currency="USD")
        with refused("price_one_per_currency"), transaction.atomic():
            PriceFactory(product=price.product, currency="USD")
        assert price.product.prices.count() == 1

    def test_duplicate_stock_warehouse(self) -> None:
        level = StockLevelFactory()
        with refused("stock_one_per_warehouse"), transaction.atomic():
            StockLevelFactory(product=level.product, warehouse=level.warehouse)
        assert level.product.stock_levels.count() == 1

    def test_category_cannot_be_its_own_parent(self) -> None:
        category = CategoryFactory()
        with refused("category_not_own_parent"), transaction.atomic():
            Category.objects.filter(pk=category.pk).update(parent=category)


class TestServicesRefuseBadInput:
    """A refused service call leaves no row and no outbox event behind."""

    def test_stock_adjust_below_zero_keeps_quantity(self) -> None:
        level = StockLevelFactory(quantity=2)
        outbox_before = OutboxEvent.objects.count()
        with pytest.raises(StockOutOfRange, match="below zero"):
            stock_adjust(product=level.product, warehouse=level.warehouse, delta=-3)
        level.refresh_from_db()
        assert level.quantity == 2
        assert OutboxEvent.objects.count() == outbox_before

    def test_stock_adjust_below_zero_creates_no_row(self) -> None:
        product, warehouse = ProductFactory(), WarehouseFactory()
        outbox_before = OutboxEvent.objects.count()
        with pytest.raises(StockOutOfRange):
            stock_adjust(product=product, warehouse=warehouse, delta=-1)
        assert not StockLevel.objects.filter(product=product, warehouse=warehouse).exists()
        assert OutboxEvent.objects.count() == outbox_before

    def test_stock_adjust_to_exactly_zero_is_allowed(self) -> None:
        level = StockLevelFactory(quantity=2)
        assert stock_adjust(product=level.product, warehouse=level.warehouse, delta=-2).quantity == 0

    @pytest.mark.parametrize(
        ("currency", "amount", "field"),
        [("EUR", Decimal("-1.00"), "amount"), ("eur", Decimal("1.00"), "currency"), ("EURO", Decimal("1"), "currency")],
    )
    def test_price_set_refuses_bad_price(self, currency: str, amount: Decimal, field: str) -> None:
        product = ProductFactory()
        outbox_before = OutboxEvent.objects.count()
        with pytest.raises(ValidationError) as error:
            price_set(product=product, currency=currency, amount=amount)
        assert field in error.value.message_dict
        assert not Price.objects.filter(product=product).exists()
        assert OutboxEvent.objects.count() == outbox_before

    @pytest.mark.parametrize("amount", [Decimal("-4.50"), Decimal("1.005"), Decimal("10000000000")])
    def test_price_set_refusal_keeps_existing_price(self, amount: Decimal) -> None:
        price = PriceFactory(currency="EUR", amount=Decimal("4.50"))
        with pytest.raises(ValidationError) as error:
            price_set(product=price.product, currency="EUR", amount=amount)
        assert set(error.value.message_dict) == {"amount"}
        price.refresh_from_db()
        assert price.amount == Decimal("4.50")

    def test_replacing_a_price_locks_and_updates_its_row_and_queries_nothing_else(self) -> None:
        price = PriceFactory(currency="EUR", amount=Decimal("4.50"))
        with CaptureQueriesContext(connection) as queries:
            replaced = price_set(product=price.product, currency="EUR", amount=Decimal("5.25"))
        statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
        assert len(statements) == 2, statements
        assert statements[0].startswith("SELECT") and statements[0].endswith("FOR UPDATE")
        assert statements[1].startswith('UPDATE "catalog_price" SET "amount" = ')
        price.refresh_from_db()
        assert replaced.pk == price.pk and price.amount == Decimal("5.25")

    @pytest.mark.parametrize("sku", ["has space", "-leading-dash", "TAKEN-1"])
    def test_product_create_refuses_bad_sku(self, sku: str) -> None:
        category = CategoryFactory()
        ProductFactory(sku="TAKEN-1")
        products_before, outbox_before = Product.objects.count(), OutboxEvent.objects.count()
        with pytest.raises(ValidationError) as error:
            product_create(sku=sku, name="Kettle", category=category)
        assert "sku" in error.value.message_dict
        assert (Product.objects.count(), OutboxEvent.objects.count()) == (products_before, outbox_before)

    def test_product_update_refuses_version_and_sku(self) -> None:
        product = ProductFactory(name="Before")
        with pytest.raises(ValidationError) as error:
            product_update(product=product, name="After", version=1, sku="NEW")
        assert set(error.value.message_dict) == {"sku", "version"}
        product.refresh_from_db()
        assert product.name == "Before"


class TestVersionBumps:
    """Triggers bump ``Product.version`` for changes to the product's prices and stock."""

    @pytest.fixture
    def product(self) -> Product:
        product = ProductFactory()
        product.refresh_from_db()
        return product

    def assert_bumped(self, product: Product) -> None:
        before = product.version
        product.refresh_from_db()
        assert product.version > before

    def test_insert_sets_a_version(self, product: Product) -> None:
        assert product.version > 0

    def test_price_set_insert_and_update(self, product: Product) -> None:
        price_set(product=product, currency="EUR", amount=Decimal("10.00"))
        self.assert_bumped(product)
        price_set(product=product, currency="EUR", amount=Decimal("11.00"))
        self.assert_bumped(product)

    def test_price_delete(self, product: Product) -> None:
        price = PriceFactory(product=product)
        product.refresh_from_db()
        price.delete()
        self.assert_bumped(product)

    def test_stock_adjust(self, product: Product) -> None:
        warehouse = WarehouseFactory()
        stock_adjust(product=product, warehouse=warehouse, delta=5)
        self.assert_bumped(product)
        stock_adjust(product=product, warehouse=warehouse, delta=-1)
        self.assert_bumped(product)

    def test_stock_queryset_update(self, product: Product) -> None:
        level = StockLevelFactory(product=product, quantity=1)
        product.refresh_from_db()
        StockLevel.objects.filter(pk=level.pk).update(quantity=7)
        self.assert_bumped(product)

    def test_stock_change_leaves_other_products_alone(self, product: Product) -> None:
        other = ProductFactory()
        other.refresh_from_db()
        StockLevelFactory(product=product)
        version = other.version
        other.refresh_from_db()
        assert other.version == version

    def test_warehouse_code_change(self, product: Product) -> None:
        level = StockLevelFactory(product=product)
        product.refresh_from_db()
        level.warehouse.code = "RENAMED"
        level.warehouse.save()
        self.assert_bumped(product)
