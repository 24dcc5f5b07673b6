"""The read paths the bench measures, by name: the URL each reads for a SKU (run.py, suffering.py)."""

from __future__ import annotations

from collections.abc import Callable

PATHS = ("floor", "orm", "cachalot", "hit", "dynamodb", "cold")
URLS: dict[str, Callable[[str], str]] = {
    "floor": lambda sku: "/bench/floor/",
    "orm": lambda sku: f"/bench/orm/{sku}/",
    "cachalot": lambda sku: f"/bench/cachalot/{sku}/",
    "hit": lambda sku: f"/api/products/{sku}/",
    "dynamodb": lambda sku: f"/api/products/{sku}/",
    "cold": lambda sku: f"/api/products/{sku}/",
}
