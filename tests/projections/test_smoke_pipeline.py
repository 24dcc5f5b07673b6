from decimal import Decimal

import pytest

from catalog.models import Category, Price, Product, Warehouse
from projections.checks import check
from tests.services import wait_for


@pytest.mark.integration
def test_orm_write_reaches_dynamodb(worker):
    category = Category.objects.create(slug="tools", name="Tools")
    product = Product.objects.create(sku="SKU-1", name="Hammer", category=category)
    Price.objects.create(product=product, currency="EUR", amount=Decimal("9.99"))
    Warehouse.objects.create(code="W1", name="Main")
    wait_for(lambda: check().clean and check().checked == 2, 30, 0.3, "projection")
