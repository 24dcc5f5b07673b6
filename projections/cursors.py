"""Listing cursors: opaque, HMAC-signed positions, so a client can only send back positions this
API handed out (and one client cannot make the cache hold pages for made-up cursors)."""

from __future__ import annotations

import re

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


def _cursor_signer() -> signing.Signer:
    return signing.Signer(salt="projections.listing-cursor", algorithm="sha256")


def encode_cursor(sku: str) -> str:
    """An opaque, HMAC-signed position: a client can only send back positions this API handed out."""
    return _cursor_signer().sign_object({"after": sku})


def decode_cursor(cursor: str) -> str:
    """The SKU a cursor continues after; anything not signed by us, or not a SKU, is refused."""
    if not cursor:
        return ""
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise BadCursor("cursor is not one this API returned")
    try:
        data = _cursor_signer().unsign_object(cursor)
    except (signing.BadSignature, ValueError, TypeError):
        raise BadCursor("cursor is not one this API returned") from None
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, str) or len(after) > SKU_MAX_LENGTH or not _SKU.fullmatch(after):
        raise BadCursor("cursor is not one this API returned")
    return after
