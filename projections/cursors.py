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
_SKU = re.compile(f"{SKU_PATTERN}")


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
