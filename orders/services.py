"""Placing orders: one Postgres transaction per order, exactly one per ``Idempotency-Key``."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from catalog.models import Price, Product
from catalog.services import InsufficientStock, stock_allocate

from . import selectors
from .exceptions import OutOfStock, ProductsUnavailable
from .models import Order, OrderAllocation, OrderLine


def order_create(
    *, user_id: int, idempotency_key: str, quantities: dict[str, int], cart_version: int, note: str = ""
) -> Order:
    """Order ``quantities`` (SKU -> units) at today's Postgres prices, taking them out of stock.

    All or nothing, once per key: the order row is inserted before anything else, so a second
    transaction with the same key waits on the unique index and then finds the first one's order.
    """
    try:
        return _order_create(
            user_id=user_id, idempotency_key=idempotency_key, quantities=quantities, cart_version=cart_version, note=note
        )
    except IntegrityError:
        existing = selectors.order_get_by_key(user_id=user_id, idempotency_key=idempotency_key)
        if existing is None:
            raise
        return existing


@transaction.atomic
def _order_create(*, user_id: int, idempotency_key: str, quantities: dict[str, int], cart_version: int, note: str) -> Order:
    currency = settings.ORDER_CURRENCY
    products = {p.sku: p for p in Product.objects.filter(sku__in=quantities, is_active=True).order_by("id")}
    prices = dict(
        Price.objects.filter(product__in=products.values(), currency=currency).values_list("product_id", "amount")
    )
    unavailable = sorted(sku for sku in quantities if sku not in products or products[sku].pk not in prices)
    if unavailable:
        raise ProductsUnavailable(unavailable)
    total = sum((prices[products[sku].pk] * count for sku, count in quantities.items()), Decimal("0"))
    order = Order.objects.create(
        user_id=user_id, idempotency_key=idempotency_key, currency=currency, total=total,
        note=note, cart_version=cart_version,
    )
    try:
        allocations = stock_allocate(quantities={products[sku]: count for sku, count in quantities.items()})
    except InsufficientStock as exc:
        raise OutOfStock(exc.available) from exc
    lines = OrderLine.objects.bulk_create(
        OrderLine(
            order=order, product=product, sku=sku, name=product.name,
            quantity=quantities[sku], unit_price=prices[product.pk],
        )
        for sku, product in products.items()
    )
    line_of = {line.product_id: line for line in lines}
    OrderAllocation.objects.bulk_create(
        OrderAllocation(line=line_of[a.product_id], warehouse_id=a.warehouse_id, quantity=a.quantity) for a in allocations
    )
    return order
