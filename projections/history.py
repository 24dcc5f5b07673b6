"""A product's history: the versions the projector appended to the ``history`` table (append-only,
each kept ``HISTORY_DAYS``), newest first, each with what changed since the version before it.

Staff read it (internal API, admin) to answer "what did this product look like, and when did it
change"; Postgres keeps only the current state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .registry import product_version_number
from .tables import ProductVersion

FIELDS = ("name", "category", "stock_band", "is_active")
"""The fields compared between versions, besides the prices (compared per currency)."""


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Version:
    version: int
    committed_at: str
    document: dict[str, Any]
    changes: list[Change] | None
    """What changed since the version before; None when that version is not kept (the oldest)."""


@dataclass(frozen=True)
class HistoryPage:
    versions: list[Version]
    before: str | None
    """The sort key the next (older) page continues before; None on the last page."""


def changes_between(older: dict[str, Any], newer: dict[str, Any]) -> list[Change]:
    """The fields a customer sees that differ, prices per currency ("price EUR")."""
    found = [Change(name, older.get(name), newer.get(name)) for name in FIELDS if older.get(name) != newer.get(name)]
    old_prices, new_prices = older.get("prices", {}), newer.get("prices", {})
    for currency in sorted(old_prices.keys() | new_prices.keys()):
        if old_prices.get(currency) != new_prices.get(currency):
            found.append(Change(f"price {currency}", old_prices.get(currency), new_prices.get(currency)))
    return found


def product_history(*, sku: str, limit: int, before: str = "") -> HistoryPage:
    """Up to ``limit`` versions of the product older than the sort key ``before`` (newest first):
    one Query, one item more than the page to know what the page's oldest changed."""
    items = ProductVersion.query(
        sku, ProductVersion.sk < before if before else None, scan_index_forward=False,
        limit=limit + 1, page_size=limit + 1, consistent_read=True,
    )
    kept = [(item.sk, orjson.loads(item.body)) for item in items]
    versions = [
        Version(
            version=product_version_number({"sk": sort_key}),
            committed_at=document["committed_at"],
            document=document,
            changes=changes_between(kept[index + 1][1], document) if index + 1 < len(kept) else None,
        )
        for index, (sort_key, document) in enumerate(kept[:limit])
    ]
    return HistoryPage(versions, kept[limit - 1][0] if len(kept) > limit else None)
