"""Fixtures of the checkout tests: priced products on sale (projected, so that carts accept them),
stock in two warehouses, customers with tokens, and carts filled through the cart services."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from carts.services import cart_line_set
from catalog import services
from catalog.models import Category, Product, Warehouse
from projections.projector import project


@dataclass
class Customer:
    client: Client
    user_id: int

    def fill(self, **quantities: int) -> None:
        """Put ``SKU=quantity`` lines in this customer's cart (underscores stand for dashes)."""
        for sku, quantity in quantities.items():
            cart_line_set(user_id=self.user_id, sku=sku.replace("_", "-"), quantity=quantity)

    def call(self, method: str, url: str, body: object = None, **headers: str):
        response = getattr(self.client, method)(
            url, data=json.dumps(body) if body is not None else None, content_type="application/json", **headers
        )
        return response, (orjson.loads(response.content) if response.content else None)

    def checkout(self, key: str | None, body: object = None):
        headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
        return self.call("post", "/api/orders/", {} if body is None else body, **headers)


def make_customer(name: str) -> Customer:
    user = get_user_model().objects.create_user(name, password="x")
    return Customer(Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}"), user.pk)


@pytest.fixture
def warehouses() -> tuple[Warehouse, Warehouse]:
    return Warehouse.objects.create(code="AMS1", name="Amsterdam"), Warehouse.objects.create(code="BER1", name="Berlin")


def on_sale(sku: str, name: str, price: str, category: Category, stock: dict[Warehouse, int]) -> Product:
    product = services.product_create(sku=sku, name=name, category=category)
    services.price_set(product=product, currency="EUR", amount=Decimal(price))
    for warehouse, quantity in stock.items():
        services.stock_adjust(product=product, warehouse=warehouse, delta=quantity)
    project("product", product.pk)
    return product


@pytest.fixture
def hammer(tools, warehouses) -> Product:
    """SKU-1 at EUR 9.99: 2 in Amsterdam, 3 in Berlin."""
    ams, ber = warehouses
    return on_sale("SKU-1", "Hammer", "9.99", tools, {ams: 2, ber: 3})


@pytest.fixture
def saw(tools, warehouses) -> Product:
    """SKU-2 at EUR 24.50: 10 in Amsterdam."""
    return on_sale("SKU-2", "Saw", "24.50", tools, {warehouses[0]: 10})


@pytest.fixture
def alice() -> Customer:
    return make_customer("alice")


@pytest.fixture
def bob() -> Customer:
    return make_customer("bob")
