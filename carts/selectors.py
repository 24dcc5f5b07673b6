"""Reads of carts: from DynamoDB, where carts live, with strongly consistent reads (a customer sees
their own last write; checkout reads the cart it is about to clear)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hybridsite.dynamodb import get_item

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
