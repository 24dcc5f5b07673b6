from __future__ import annotations

from decimal import Decimal

import pytest

from catalog import services
from catalog.models import Category, Product, Warehouse
from projections.relay import drain


@pytest.fixture
def shop(dynamodb, redis_clean) -> dict[str, Product]:
    """Hand tools below tools, and power tools beside them; prices in EUR (one in USD too), stock in
    one warehouse; every product projected."""
    tools = Category.objects.create(slug="tools", name="Tools")
    hand = Category.objects.create(slug="hand-tools", name="Hand tools", parent=tools)
    power = Category.objects.create(slug="power-tools", name="Power tools")
    warehouse = Warehouse.objects.create(code="AMS1", name="Amsterdam")
    rows = [
        ("HAM-1", "Claw hammer", "A forged steel hammer", hand, "9.99", 5),
        ("HAM-2", "Sledge hammer", "Heavy hammer for demolition", hand, "29.50", 0),
        ("SAW-1", "Hand saw", "Cuts wood", hand, "15.00", 2),
        ("DRL-1", "Cordless drill", "Drills wood and steel", power, "89.00", 1),
        ("TOOL-1", "Tool box", "Holds a hammer and a saw", tools, "19.00", 3),
    ]
    products = {}
    for sku, name, description, category, amount, stock in rows:
        product = services.product_create(sku=sku, name=name, description=description, category=category)
        services.price_set(product=product, currency="EUR", amount=Decimal(amount))
        if stock:
            services.stock_adjust(product=product, warehouse=warehouse, delta=stock)
        products[sku] = product
    services.price_set(product=products["DRL-1"], currency="USD", amount=Decimal("95.00"))
    drain(5)
    return products
