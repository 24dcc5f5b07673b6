"""Placing orders: one Postgres transaction per order, exactly one per ``Idempotency-Key``."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from pynamodb.exceptions import PynamoDBException

from carts.selectors import cart_get
from carts.services import CartContended, CartVersionMismatch, cart_clear
from catalog.models import Price, Product
from catalog.services import InsufficientStock, stock_allocate

from . import selectors
from .exceptions import CartEmpty, CartUnavailable, OutOfStock, ProductsUnavailable
from .models import Order, OrderAllocation, OrderLine

logger = logging.getLogger(__name__)


def order_checkout(*, user_id: int, idempotency_key: str, note: str = "") -> Order:
    """Place an order from the customer's cart, then empty the cart it was placed from.

    The cart is cleared after the commit, and only if it is still at the version ordered: a cart
    the customer changed in the meantime is left as they wrote it, never emptied of lines the order
    does not hold.
    """
    existing = order_recover(user_id=user_id, idempotency_key=idempotency_key)
    if existing is not None:
        return existing
    try:
        cart = cart_get(user_id=user_id)
    except PynamoDBException as exc:
        raise CartUnavailable() from exc
    if not cart.lines:
        raise CartEmpty()
    order = order_create(
        user_id=user_id, idempotency_key=idempotency_key, quantities=cart.lines, cart_version=cart.version, note=note
    )
    _cart_clear(user_id=user_id, version=order.cart_version)
    return selectors.order_list(user_id=user_id).get(pk=order.pk)


def order_recover(*, user_id: int, idempotency_key: str) -> Order | None:
    """The order an earlier attempt with this key committed, if any (it may have died before
    answering, or before clearing the cart: that is finished here)."""
    order = selectors.order_get_by_key(user_id=user_id, idempotency_key=idempotency_key)
    if order is not None:
        _cart_clear(user_id=user_id, version=order.cart_version)
    return order


def _cart_clear(*, user_id: int, version: int) -> None:
    """Best effort: the order stands whatever happens to the cart."""
    try:
        cart_clear(user_id=user_id, version=version)
    except CartVersionMismatch:
        pass  # changed since it was ordered (or already cleared): the customer's newer lines stay
    except (CartContended, PynamoDBException) as exc:
        logger.warning("cart of user %s not cleared after its order: %s", user_id, exc)


def order_create(
    *, user_id: int, idempotency_key: str, quantities: dict[str, int], cart_version: int, note: str = ""
) -> Order:
    """Order ``quantities`` (SKU -> units) at today's Postgres prices, taking them out of stock.

    All or nothing, once per key: the order row is inserted before anything else, so a second
    transaction with the same key waits on the unique index and then finds the first one's order.
    """
    try:
        return _order_create(
            user_id=user_id, idempotency_key=idempotency_key, quantities=quantities,
            cart_version=cart_version, note=note,
        )
    except IntegrityError:
        existing = selectors.order_get_by_key(user_id=user_id, idempotency_key=idempotency_key)
        if existing is None:
            raise
        return existing


@transaction.atomic
def _order_create(
    *, user_id: int, idempotency_key: str, quantities: dict[str, int], cart_version: int, note: str
) -> Order:
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
        OrderAllocation(line=line_of[each.product_id], warehouse_id=each.warehouse_id, quantity=each.quantity)
        for each in allocations
    )
    return order
