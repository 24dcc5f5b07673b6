"""The internal write API: who may write what, and which values it refuses."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.authtoken.models import Token

from catalog import services
from catalog.models import Price, StockLevel
from tests.factories import PriceFactory, ProductFactory, StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def product():
    product = ProductFactory(sku="SKU-1")
    PriceFactory(product=product, currency="EUR", amount=Decimal("9.99"))
    WarehouseFactory(code="AMS1")
    return product


def token_client(username: str, *permissions: str, is_staff: bool = True) -> Client:
    user = get_user_model().objects.create_user(username, password="x", is_staff=is_staff)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="catalog", codename=codename))
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def put_price(client: Client, currency: str = "EUR", amount: str = "1.00", sku: str = "SKU-1"):
    return client.put(
        f"/api/internal/products/{sku}/price/", orjson.dumps({"currency": currency, "amount": amount}),
        content_type="application/json",
    )


def post_stock(client: Client, delta: int, warehouse: str = "AMS1", sku: str = "SKU-1"):
    return client.post(
        f"/api/internal/products/{sku}/stock/", {"warehouse": warehouse, "delta": delta},
        content_type="application/json",
    )


def test_staff_without_the_price_permission_cannot_change_prices(product):
    response = put_price(token_client("clerk"), amount="0.01")
    assert response.status_code == 403
    assert orjson.loads(response.content)["error"]["code"] == "permission_denied"
    assert Price.objects.get(product=product).amount == Decimal("9.99")


def test_staff_without_the_stock_permission_cannot_change_stock(product):
    response = post_stock(token_client("clerk", "change_price"), 5)
    assert response.status_code == 403
    assert not StockLevel.objects.filter(product=product).exists()


def test_each_permission_opens_its_own_endpoint(product):
    pricing = token_client("pricing", "change_price")
    assert put_price(pricing, amount="4.50").status_code == 200
    assert post_stock(pricing, 1).status_code == 403
    inventory = token_client("inventory", "change_stocklevel")
    assert post_stock(inventory, 3).status_code == 200
    assert put_price(inventory).status_code == 403


def test_a_permission_without_staff_is_not_enough(product):
    assert put_price(token_client("outsider", "change_price", is_staff=False)).status_code == 403


def test_stock_detail_is_for_staff_who_may_see_stock(product):
    StockLevelFactory(product=product, warehouse=WarehouseFactory(code="BER1"), quantity=7)
    url = "/api/internal/products/SKU-1/stock/"
    assert token_client("clerk").get(url).status_code == 403
    response = token_client("viewer", "view_stocklevel").get(url)
    assert response.status_code == 200
    assert orjson.loads(response.content) == {"sku": "SKU-1", "total": 7, "warehouses": {"BER1": 7}}


@pytest.mark.parametrize("currency", ["XYZ", "AAA", "XXX", "XTS"])
def test_unknown_currency_codes_are_refused(product, currency):
    response = put_price(token_client("pricing", "change_price"), currency=currency)
    assert response.status_code == 400
    assert "currency" in orjson.loads(response.content)["error"]["fields"]
    assert not Price.objects.filter(currency=currency).exists()


def test_the_service_refuses_unknown_currencies_too(product):
    """The admin and every other writer go through the model's validation."""
    with pytest.raises(ValidationError):
        services.price_set(product=product, currency="XYZ", amount=Decimal("1"))
    assert services.price_set(product=product, currency="CHF", amount=Decimal("1")).currency == "CHF"


def test_stock_cannot_overflow_its_column(product):
    level = StockLevelFactory(product=product, warehouse=WarehouseFactory(code="BIG1"), quantity=2_147_483_000)
    response = post_stock(token_client("inventory", "change_stocklevel"), 1_000_000, warehouse="BIG1")
    assert response.status_code == 409, response.content  # well formed; the stock it meets cannot take it
    assert orjson.loads(response.content)["error"]["code"] == "stock_out_of_range"
    level.refresh_from_db()
    assert level.quantity == 2_147_483_000


def test_the_currency_list_holds_codes_only():
    from catalog.currencies import ISO_4217_CURRENCIES

    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in ISO_4217_CURRENCIES)
    assert {"EUR", "USD", "GBP", "CHF", "JPY"} <= ISO_4217_CURRENCIES
