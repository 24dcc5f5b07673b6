"""factory-boy factories for the catalog: plain rows with sequential, readable values.

Create through ``Model.save()``, so the triggers fill ``Product.version``; an instance's
``version`` is only current after ``refresh_from_db()``.
"""

from __future__ import annotations

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from catalog.models import Category, Price, Product, StockLevel, Warehouse


class CategoryFactory(DjangoModelFactory):
    class Meta:
        model = Category

    slug = factory.Sequence(lambda n: f"category-{n}")
    name = factory.Sequence(lambda n: f"Category {n}")
    parent = None


class WarehouseFactory(DjangoModelFactory):
    class Meta:
        model = Warehouse

    code = factory.Sequence(lambda n: f"WH{n:04d}")
    name = factory.Sequence(lambda n: f"Warehouse {n}")


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"TEST-{n:06d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    description = ""
    category = factory.SubFactory(CategoryFactory)
    attributes = factory.LazyFunction(dict)
    is_active = True


class PriceFactory(DjangoModelFactory):
    class Meta:
        model = Price

    product = factory.SubFactory(ProductFactory)
    currency = "EUR"
    amount = Decimal("9.99")


class StockLevelFactory(DjangoModelFactory):
    class Meta:
        model = StockLevel

    product = factory.SubFactory(ProductFactory)
    warehouse = factory.SubFactory(WarehouseFactory)
    quantity = 10
