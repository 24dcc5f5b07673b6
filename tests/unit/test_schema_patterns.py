"""The formats the schema declares match what the server accepts, value for value: a text field's
pattern what DRF's CharField takes, a cursor's pattern every cursor the API hands out."""

from __future__ import annotations

import re

import pytest
from rest_framework import serializers

from catalog.apis import text_pattern
from projections.cursors import CURSOR_MAX_LENGTH, CURSOR_PATTERN, encode_cursor

WHITESPACE = [chr(code) for code in range(0x110000) if chr(code).isspace()]
SAMPLES = ["", "a", " a ", "\u3000", "a\x00", "\x00", "x" * 5, "\u00e9t\u00e9", "\x1c", *WHITESPACE,
           *(f"{space}b{space}" for space in WHITESPACE)]
FIELDS = {
    "required": serializers.CharField(max_length=200),
    "blank allowed": serializers.CharField(allow_blank=True),
    "untrimmed": serializers.CharField(trim_whitespace=False),
}


def accepted(field: serializers.CharField, value: str) -> bool:
    try:
        field.run_validation(value)
    except serializers.ValidationError:
        return False
    return True


@pytest.mark.parametrize("kind", FIELDS)
def test_a_text_fields_pattern_is_what_drf_accepts(kind: str) -> None:
    field = FIELDS[kind]
    pattern = text_pattern(field)
    assert {value: bool(re.fullmatch(pattern, value)) for value in SAMPLES} == {
        value: accepted(field, value) for value in SAMPLES
    }


@pytest.mark.parametrize("sku", ["S", "SKU-1", "X" * 64, "9.b_c-D"])
def test_every_cursor_the_api_hands_out_has_the_declared_format(sku: str) -> None:
    cursor = encode_cursor(sku)
    assert re.fullmatch(CURSOR_PATTERN, cursor) and len(cursor) <= CURSOR_MAX_LENGTH


def test_the_first_page_needs_no_cursor_and_a_malformed_one_is_out_of_format() -> None:
    assert re.fullmatch(CURSOR_PATTERN, "")
    assert not re.fullmatch(CURSOR_PATTERN, "not a cursor")
    assert not re.fullmatch(CURSOR_PATTERN, encode_cursor("SKU-1") + "=")
