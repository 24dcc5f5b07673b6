"""Listing cursors: opaque, HMAC-signed positions, so a client can only send back positions this
API handed out (and one client cannot make the cache hold pages for made-up cursors)."""

from __future__ import annotations

import re
from typing import Any

from django.core import signing

from catalog.models import SKU_MAX_LENGTH, SKU_PATTERN


class BadCursor(ValueError):
    pass


CURSOR_MAX_LENGTH = 256
_SIGNATURE_LENGTH = 43  # an HMAC-SHA256 in unpadded URL-safe base64
# What a cursor looks like (the signed JSON, ":", the signature), or empty for the first page: the
# format the schema declares. Only a signature this API made makes one valid.
CURSOR_PATTERN = (
    f"^([A-Za-z0-9_-]{{1,{CURSOR_MAX_LENGTH - _SIGNATURE_LENGTH - 1}}}:[A-Za-z0-9_-]{{{_SIGNATURE_LENGTH}}})?$"
)
_SKU = re.compile(f"{SKU_PATTERN}")
_SORT_KEY = re.compile("[0-9]{19}")  # a zero-padded bigint: an inverted order id, a version


def _cursor_signer() -> signing.Signer:
    return signing.Signer(salt="projections.listing-cursor", algorithm="sha256")


def _unsign(signer: signing.Signer, cursor: str) -> Any:
    """What a cursor signed by ``signer`` holds; BadCursor for anything else."""
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise BadCursor("cursor is not one this API returned")
    try:
        return signer.unsign_object(cursor)
    except (signing.BadSignature, ValueError, TypeError):
        raise BadCursor("cursor is not one this API returned") from None


def encode_cursor(sku: str) -> str:
    """An opaque, HMAC-signed position: a client can only send back positions this API handed out."""
    return _cursor_signer().sign_object({"after": sku})


def decode_cursor(cursor: str) -> str:
    """The SKU a cursor continues after; anything not signed by us, or not a SKU, is refused."""
    if not cursor:
        return ""
    data = _unsign(_cursor_signer(), cursor)
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, str) or len(after) > SKU_MAX_LENGTH or not _SKU.fullmatch(after):
        raise BadCursor("cursor is not one this API returned")
    return after


# --- cursors bound to what they page (a customer's orders, a product's history) ----------------
# The position is a sort key; a cursor handed out for one customer (or SKU) is refused for another.


def _bound_signer(salt: str) -> signing.Signer:
    return signing.Signer(salt=salt, algorithm="sha256")


def _encode_bound(salt: str, bound_to: int | str, position: str) -> str:
    return _bound_signer(salt).sign_object({"to": bound_to, "at": position})


def _decode_bound(salt: str, cursor: str, bound_to: int | str) -> str:
    if not cursor:
        return ""
    data = _unsign(_bound_signer(salt), cursor)
    position = data.get("at") if isinstance(data, dict) and data.get("to") == bound_to else None
    if not isinstance(position, str) or not _SORT_KEY.fullmatch(position):
        raise BadCursor("cursor is not one this API returned")
    return position


ORDER_CURSOR_SALT = "projections.order-cursor"
HISTORY_CURSOR_SALT = "projections.history-cursor"


def encode_order_cursor(user_id: int, after: str) -> str:
    """A position in one customer's orders (the sort key it continues after)."""
    return _encode_bound(ORDER_CURSOR_SALT, user_id, after)


def decode_order_cursor(cursor: str, user_id: int) -> str:
    return _decode_bound(ORDER_CURSOR_SALT, cursor, user_id)


def encode_history_cursor(sku: str, before: str) -> str:
    """A position in one product's history (the sort key it continues before)."""
    return _encode_bound(HISTORY_CURSOR_SALT, sku, before)


def decode_history_cursor(cursor: str, sku: str) -> str:
    return _decode_bound(HISTORY_CURSOR_SALT, cursor, sku)


def _offset_signer() -> signing.Signer:
    return signing.Signer(salt="projections.search-cursor", algorithm="sha256")


def encode_offset(offset: int) -> str:
    """An opaque, signed position in a list of results (search pages)."""
    return _offset_signer().sign_object({"offset": offset})


def decode_offset(cursor: str, limit: int) -> int:
    """The position a search cursor continues at (0 for none), below ``limit``; anything not signed
    by us is refused."""
    if not cursor:
        return 0
    data = _unsign(_offset_signer(), cursor)
    offset = data.get("offset") if isinstance(data, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < limit:
        raise BadCursor("cursor is not one this API returned")
    return offset
