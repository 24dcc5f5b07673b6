"""What the read path writes and reads back: listing cursors (signed, handed to clients) and cache
entries (``<version> <status>\\n<body>`` in Redis, parsed by the Lua scripts too)."""

from __future__ import annotations

import pytest
from django.core import signing
from pytest_django.fixtures import Settings

from projections import cache, cursors
from projections.cursors import CURSOR_MAX_LENGTH, BadCursor, decode_cursor, encode_cursor

# --- cursors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sku", ["SKU-1", "a", "X" * 64, "9.b_c-D"])
def test_a_cursor_gives_back_its_sku(sku: str) -> None:
    assert decode_cursor(encode_cursor(sku)) == sku


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor("") == ""


def test_a_tampered_cursor_is_refused() -> None:
    cursor = encode_cursor("SKU-1")
    payload, signature = cursor.rsplit(":", 1)
    other_payload = encode_cursor("SKU-2").rsplit(":", 1)[0]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for forged in (f"{other_payload}:{signature}", f"{payload}:{flipped}", payload, cursor + "x"):
        with pytest.raises(BadCursor):
            decode_cursor(forged)


def test_a_cursor_signed_with_another_key_or_salt_is_refused(settings: Settings) -> None:
    other_salt = signing.Signer(salt="another-purpose", algorithm="sha256").sign_object({"after": "SKU-1"})
    with pytest.raises(BadCursor):
        decode_cursor(other_salt)
    cursor = encode_cursor("SKU-1")
    settings.SECRET_KEY = "another-deployment"
    with pytest.raises(BadCursor):
        decode_cursor(cursor)


@pytest.mark.parametrize("cursor", [
    "garbage", ":", "::::", "a:b", "%00", "é:ü", "x" * (CURSOR_MAX_LENGTH + 1),
])
def test_malformed_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(cursor)


@pytest.mark.parametrize("content", [
    {"after": "not a sku"}, {"after": "-leading-dash"}, {"after": "X" * 65}, {"after": 7}, {"after": None},
    {}, ["SKU-1"], "SKU-1",
])
def test_our_signature_on_something_that_is_no_position_is_refused(content: object) -> None:
    """Defence in depth: a signed value that is not a SKU never reaches a key or a query."""
    with pytest.raises(BadCursor):
        decode_cursor(cursors._cursor_signer().sign_object(content))


def test_an_overlong_cursor_is_refused_before_its_signature_is_checked() -> None:
    cursor = encode_cursor("X" * 64)
    assert len(cursor) <= CURSOR_MAX_LENGTH  # every SKU fits
    with pytest.raises(BadCursor):
        decode_cursor(cursor + "=" * (CURSOR_MAX_LENGTH - len(cursor) + 1))


# --- cache entries ----------------------------------------------------------------------------


@pytest.mark.parametrize("entry", [
    cache.Entry(version=1, status=200, body=b'{"sku":"SKU-1"}'),
    cache.Entry(version=2**63 - 1, status=200, body=b'{"text":"two\\nlines"}\n\n'),
    cache.Entry(version=1_732_300_000_000_123, status=200, body=b"7 200\n a body that looks like a header"),
    cache.Entry(version=5, status=404, body=b""),
    cache.Entry(version=0, status=404, body=b""),
])
def test_an_entry_gives_back_its_version_status_and_bytes(entry: cache.Entry) -> None:
    assert cache.decode(cache.encode(entry.version, entry.status, entry.body)) == entry


def test_the_entry_starts_with_its_version_as_the_lua_scripts_read_it() -> None:
    """The store script compares versions with ``string.match(current, '^(%d+)')``."""
    assert cache.encode(42, 200, b"{}") == b"42 200\n{}"
    assert cache.encode(42, 404, b"") == b"42 404\n"
