"""Fixtures of the cart tests: one category and one priced product, nothing projected."""

from __future__ import annotations

import os
import random
from decimal import Decimal

import pytest

from catalog import services
from catalog.models import Category, Product


@pytest.fixture
def seed() -> int:
    """A new random seed each run, shown when the test fails; ``SEED=<n> make test ...`` replays it."""
    value = int(os.environ.get("SEED") or random.randrange(2**32))
    print(f"seed {value} (SEED={value} replays this run)")
    return value


@pytest.fixture
def tools(dynamodb, redis_clean) -> Category:
    return Category.objects.create(slug="tools", name="Tools")


@pytest.fixture
def product(tools) -> Product:
    """SKU-1, a hammer at EUR 9.99, as Postgres holds it now (``version`` included)."""
    product = services.product_create(sku="SKU-1", name="Hammer", category=tools)
    services.price_set(product=product, currency="EUR", amount=Decimal("9.99"))
    product.refresh_from_db()
    return product
