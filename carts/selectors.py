"""Reads of carts: from DynamoDB, where carts live, with strongly consistent reads (a customer sees
their own last write; checkout reads the cart it is about to clear). The admin's reports read the
Postgres copy the write-back consumer keeps instead (:func:`abandoned_carts`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from catalog.models import Price, Product
from hybridsite.dynamodb import get_item

from .models import CartCopy
from .tables import Cart


@dataclass(frozen=True)
class CartState:
    """A cart as one read saw it. ``version`` 0: the customer has no cart yet."""

    user_id: int
    version: int
    lines: dict[str, int] = field(default_factory=dict)
    updated_at: datetime | None = None
    expires_at: datetime | None = None


def lines_of(item: Any) -> dict[str, int]:
    """The lines of a cart item, quantities as ints (the map holds DynamoDB numbers)."""
    raw = item.lines.as_dict() if hasattr(item.lines, "as_dict") else dict(item.lines or {})
    return {str(sku): int(quantity) for sku, quantity in raw.items()}


def state_of(item: Cart) -> CartState:
    """A stored item as a cart. An item whose idle time ran out is empty even before DynamoDB's TTL
    (which lags) deletes it; its version continues, so an old ETag never matches a new cart."""
    expired = item.expires_at is not None and item.expires_at <= datetime.now(UTC)
    return CartState(
        user_id=int(item.user_id),
        version=int(item.version),
        lines={} if expired else lines_of(item),
        updated_at=item.updated_at,
        expires_at=None if expired else item.expires_at,
    )


def cart_get(*, user_id: int) -> CartState:
    """The customer's cart (version 0 and no lines when there is none), read consistently."""
    item = get_item(Cart, {"user_id": str(user_id)})
    return CartState(user_id=user_id, version=0) if item is None else state_of(item)


# --- the reports' reads, of the Postgres copy ----------------------------------------------------


@dataclass(frozen=True)
class AbandonedCart:
    user_id: int
    username: str
    email: str
    lines: int
    units: int
    unavailable: int  # lines of products no longer on sale (left out of the value)
    value: dict[str, Decimal]  # currency -> sum of price x quantity, see abandoned_carts
    updated_at: datetime


@dataclass(frozen=True)
class AbandonedCarts:
    carts: list[AbandonedCart]  # the longest idle first, at most ``limit``
    count: int  # every cart idle that long (the totals are over all of them)
    lines: int
    units: int
    value: dict[str, Decimal]


# Each idle cart's value per currency from Postgres prices, for the currencies that every line of
# a product still on sale is priced in (a currency some line lacks would give a partial sum).
_CART_VALUES_SQL = """
    WITH on_sale AS (
        SELECT cart.user_id, line.value::bigint AS quantity, product.id AS product_id
        FROM {carts} AS cart
        CROSS JOIN LATERAL jsonb_each_text(cart.lines) AS line
        JOIN {products} AS product ON product.sku = line.key AND product.is_active
        WHERE cart.user_id = ANY(%s)
    )
    SELECT on_sale.user_id, price.currency, sum(on_sale.quantity * price.amount)
    FROM on_sale JOIN {prices} AS price ON price.product_id = on_sale.product_id
    GROUP BY on_sale.user_id, price.currency
    HAVING count(*) = (SELECT count(*) FROM on_sale AS line WHERE line.user_id = on_sale.user_id)
"""


def abandoned_carts(*, idle: timedelta, now: datetime, limit: int) -> AbandonedCarts:
    """Carts with lines, unchanged for longer than ``idle`` at ``now`` and not past their own idle
    time (such a cart reads as empty: its customer has lost it), from the carts' Postgres copy,
    valued at today's Postgres prices. Three queries, whatever the number of carts."""
    rows = list(
        CartCopy.objects.filter(status=CartCopy.Status.ACTIVE, updated_at__lt=now - idle)
        .exclude(expires_at__lte=now).exclude(lines={})
        .order_by("updated_at", "user_id")
        .values_list("user_id", "user__username", "user__email", "lines", "updated_at")
    )
    skus = {sku for _, _, _, lines, _ in rows for sku in lines}
    on_sale = set(Product.objects.filter(sku__in=skus, is_active=True).values_list("sku", flat=True))
    values: dict[int, dict[str, Decimal]] = {}
    if rows:
        sql = _CART_VALUES_SQL.format(
            carts=CartCopy._meta.db_table, products=Product._meta.db_table, prices=Price._meta.db_table
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [[user_id for user_id, *_ in rows]])
            for user_id, currency, amount in cursor.fetchall():
                values.setdefault(user_id, {})[currency] = amount
    carts = [
        AbandonedCart(
            user_id=user_id, username=username, email=email, lines=len(lines), units=sum(lines.values()),
            unavailable=sum(1 for sku in lines if sku not in on_sale),
            value=dict(sorted(values.get(user_id, {}).items())), updated_at=updated_at,
        )
        for user_id, username, email, lines, updated_at in rows
    ]
    totals: dict[str, Decimal] = {}
    for cart in carts:
        for currency, amount in cart.value.items():
            totals[currency] = totals.get(currency, Decimal(0)) + amount
    return AbandonedCarts(
        carts=carts[:limit], count=len(carts), lines=sum(cart.lines for cart in carts),
        units=sum(cart.units for cart in carts), value=dict(sorted(totals.items())),
    )
