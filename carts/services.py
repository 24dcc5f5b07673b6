"""Writes to carts: DynamoDB only (no Postgres query), each one conditional on the version read.

A write reads the cart consistently, changes it, and puts it back on condition that its version
is still the one read; a write that changes nothing writes nothing. With ``expected`` (the
client's If-Match, or checkout's version) a changed version is refused; without it the
read-change-put is retried, so concurrent writers of one cart lose no update either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from pynamodb.exceptions import PutError

from hybridsite.dynamodb import error_code, get_item, hash_key_attribute

from . import products
from .selectors import CartState, lines_of, state_of
from .tables import Cart

WRITE_ATTEMPTS = 5


class CartVersionMismatch(Exception):
    """The cart is not at the version the caller expected (a lost update was prevented)."""

    def __init__(self, current: CartState) -> None:
        super().__init__(f"cart is at version {current.version}")
        self.current = current


class CartContended(Exception):
    """Concurrent writers kept changing the cart between read and put; the caller may retry."""


class ProductNotOnSale(Exception):
    """The SKU names no product the hot path shows: there is nothing of it to put in a cart."""


class CartFull(Exception):
    """The cart already holds ``CART_MAX_LINES`` other lines."""


def _first_version() -> int:
    """A new cart's version starts at the clock (µs), not 1: a cart created after an expired one
    gets versions above the old one's, so ETags and the Postgres copy never see a version twice."""
    return time.time_ns() // 1000


def _write(*, user_id: int, expected: int | None, change: Callable[[dict[str, int]], dict[str, int]]) -> CartState:
    for _ in range(WRITE_ATTEMPTS):
        item = get_item(Cart, {"user_id": str(user_id)})
        current = CartState(user_id=user_id, version=0) if item is None else state_of(item)
        if expected is not None and expected != current.version:
            raise CartVersionMismatch(current)
        lines = change(dict(current.lines))
        if lines == current.lines:
            return current  # nothing to change: nothing written (an absent cart stays absent)
        now = datetime.now(UTC)
        new = Cart(
            str(user_id),
            version=_first_version() if item is None else current.version + 1,
            lines=lines,
            updated_at=now,
            expires_at=now + timedelta(seconds=settings.CART_IDLE_SECONDS),
        )
        condition = hash_key_attribute(Cart).does_not_exist() if item is None else (Cart.version == current.version)
        try:
            new.save(condition=condition)
        except PutError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            if expected is not None:
                latest = get_item(Cart, {"user_id": str(user_id)})
                current = CartState(user_id=user_id, version=0) if latest is None else state_of(latest)
                raise CartVersionMismatch(current) from None
            continue
        return CartState(user_id=user_id, version=int(new.version), lines=lines_of(new),
                         updated_at=now, expires_at=new.expires_at)
    raise CartContended(f"cart of user {user_id} changed {WRITE_ATTEMPTS} times while being written")


def cart_line_set(*, user_id: int, sku: str, quantity: int, expected: int | None = None) -> CartState:
    """Put ``quantity`` of ``sku`` in the cart (replacing the line). The SKU must be a product the
    hot path shows; quantity and line count are bounded by settings."""
    if not 1 <= quantity <= settings.CART_MAX_QUANTITY:
        raise ValidationError({"quantity": f"Must be an integer from 1 to {settings.CART_MAX_QUANTITY}."})
    if products.offer_get(sku=sku) is None:
        raise ProductNotOnSale(sku)

    def change(lines: dict[str, int]) -> dict[str, int]:
        if sku not in lines and len(lines) >= settings.CART_MAX_LINES:
            raise CartFull(f"A cart holds at most {settings.CART_MAX_LINES} lines.")
        return {**lines, sku: quantity}

    return _write(user_id=user_id, expected=expected, change=change)


def cart_line_remove(*, user_id: int, sku: str, expected: int | None = None) -> CartState:
    """Remove a line; removing a line that is not there writes nothing."""
    return _write(
        user_id=user_id, expected=expected,
        change=lambda lines: {name: quantity for name, quantity in lines.items() if name != sku},
    )


def cart_clear(*, user_id: int, version: int | None = None) -> CartState:
    """Empty the cart. With ``version`` (checkout clears the cart it ordered from) only if the cart
    is still at that version, else :class:`CartVersionMismatch`. The item stays, empty, so its
    version keeps counting; a customer without a cart stays without one."""
    return _write(user_id=user_id, expected=version, change=lambda lines: {})
