"""Listing cursors: opaque, HMAC-signed positions, so a client can only send back positions this
API handed out (and one client cannot make the cache hold pages for made-up cursors)."""

from __future__ import annotations

import re

from django.core import signing

from catalog.models import SKU_MAX_LENGTH, SKU_PATTERN


class BadCursor(ValueError):
    pass


CURSOR_MAX_LENGTH = 256
_SKU = re.compile(f"{SKU_PATTERN}")
_SORT_KEY = re.compile("[0-9]{19}")  # a zero-padded bigint: an inverted order id, a version


def _cursor_signer() -> signing.Signer:
    return signing.Signer(salt="projections.listing-cursor", algorithm="sha256")


def encode_cursor(sku: str) -> str:
    """An opaque, HMAC-signed position: a client can only send back positions this API handed out."""
    return _cursor_signer().sign_object({"after": sku})


def _unsigned(signer: signing.Signer, cursor: str) -> object:
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise BadCursor("cursor is not one this API returned")
    try:
        return signer.unsign_object(cursor)
    except (signing.BadSignature, ValueError, TypeError):
        raise BadCursor("cursor is not one this API returned") from None


def decode_cursor(cursor: str) -> str:
    """The SKU a cursor continues after; anything not signed by us, or not a SKU, is refused."""
    if not cursor:
        return ""
    data = _unsigned(_cursor_signer(), cursor)
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, str) or len(after) > SKU_MAX_LENGTH or not _SKU.fullmatch(after):
        raise BadCursor("cursor is not one this API returned")
    return after


# --- a customer's order pages: the position is bound to the customer it was handed to ------------



def _order_cursor_signer() -> signing.Signer:
    return signing.Signer(salt="projections.order-cursor", algorithm="sha256")


def encode_order_cursor(user_id: int, after: str) -> str:
    """A position in one customer's orders (a sort key), signed with the customer's id."""
    return _order_cursor_signer().sign_object({"customer": user_id, "after": after})


def decode_order_cursor(cursor: str, user_id: int) -> str:
    """The sort key a customer's cursor continues after; another customer's cursor is refused."""
    if not cursor:
        return ""
    data = _unsigned(_order_cursor_signer(), cursor)
    if not isinstance(data, dict) or data.get("customer") != user_id:
        raise BadCursor("cursor is not one this API returned")
    after = data.get("after")
    if not isinstance(after, str) or not _SORT_KEY.fullmatch(after):
        raise BadCursor("cursor is not one this API returned")
    return after


# --- a product's history: the position is bound to the SKU it was handed for --------------------


def _history_cursor_signer() -> signing.Signer:
    return signing.Signer(salt="projections.history-cursor", algorithm="sha256")


def encode_history_cursor(sku: str, before: str) -> str:
    """A position in one product's history (a version's sort key)."""
    return _history_cursor_signer().sign_object({"sku": sku, "before": before})


def decode_history_cursor(cursor: str, sku: str) -> str:
    """The sort key a history page continues before; a cursor of another SKU is refused."""
    if not cursor:
        return ""
    data = _unsigned(_history_cursor_signer(), cursor)
    if not isinstance(data, dict) or data.get("sku") != sku:
        raise BadCursor("cursor is not one this API returned")
    before = data.get("before")
    if not isinstance(before, str) or not _SORT_KEY.fullmatch(before):
        raise BadCursor("cursor is not one this API returned")
    return before
