"""URL converters that refuse a malformed key before any backend sees it.

A SKU with a NUL byte would reach psycopg2 (500) and an over-long one DynamoDB (a
ValidationException); a converter that does not match makes the URL resolver answer 404 without
touching Redis, DynamoDB or Postgres. Registered once, on import.
"""

from __future__ import annotations

from django.urls import register_converter

from .models import SKU_MAX_LENGTH, SLUG_MAX_LENGTH


class SkuConverter:
    regex = f"[A-Za-z0-9][A-Za-z0-9._-]{{0,{SKU_MAX_LENGTH - 1}}}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class CategorySlugConverter(SkuConverter):
    regex = f"[-a-zA-Z0-9_]{{1,{SLUG_MAX_LENGTH}}}"


register_converter(SkuConverter, "sku")
register_converter(CategorySlugConverter, "category_slug")
