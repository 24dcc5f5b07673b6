"""Pure functions: an aggregate read from Postgres -> the documents stored in DynamoDB.

No I/O here: the projector reads the aggregate in one snapshot and passes it in, so these are
deterministic and the drift check can rebuild a document to compare it with the stored one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from catalog.models import Category, Product

VOLATILE_FIELDS = ("projected_at",)


def _category_ref(path: list[Category]) -> dict[str, Any]:
    leaf = path[-1]
    return {"slug": leaf.slug, "name": leaf.name, "path": [{"slug": c.slug, "name": c.name} for c in path]}


def _prices(product: Product) -> dict[str, str]:
    return {price.currency: f"{price.amount:.2f}" for price in product.prices.all()}


# Customers see a band, not quantities per warehouse: stock levels and warehouse codes are the
# business's own (staff read them through the internal API). Upper bounds, inclusive.
STOCK_BANDS: tuple[tuple[int, str], ...] = ((0, "none"), (5, "low"), (20, "medium"))
STOCK_BAND_ABOVE = "high"


def stock_band(total: int) -> str:
    for upper, band in STOCK_BANDS:
        if total <= upper:
            return band
    return STOCK_BAND_ABOVE


def _total_stock(product: Product) -> int:
    return sum(level.quantity for level in product.stock_levels.all())


def product_document(
    product: Product, category_path: list[Category], projected_at: datetime, shape: int = 1
) -> dict[str, Any]:
    """The product document in ``shape`` 1 or 2 (see :func:`product_in_shape`)."""
    total = _total_stock(product)
    document = {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "attributes": product.attributes,
        "category": _category_ref(category_path),
        "prices": _prices(product),
        "in_stock": total > 0,
        "stock_band": stock_band(total),
        "version": product.version,
        "source_committed_at": product.updated_at.isoformat(),
        "projected_at": projected_at.isoformat(),
    }
    return document if shape == 1 else _product_v2(document)


# --- product document shapes ------------------------------------------------------------------
# Shape 1 (no "schema_version"): "prices" maps currency -> amount. Shape 2 begins with
# "schema_version": 2 and lists prices as [{"currency", "amount"}] ordered by currency, a form that
# can grow per-price fields. Every reader accepts both; which one is written and which one is
# served are two switches (projections/shapes.py), so a shape rolls out without a deploy.

PRODUCT_SHAPES = (1, 2)
_SHAPE_2_PREFIX = b'{"schema_version":2,'


def _product_v2(document: dict[str, Any]) -> dict[str, Any]:
    prices = [{"currency": currency, "amount": amount} for currency, amount in sorted(document["prices"].items())]
    return {"schema_version": 2, **document, "prices": prices}


def _product_v1(document: dict[str, Any]) -> dict[str, Any]:
    prices = {price["currency"]: price["amount"] for price in document["prices"]}
    return {**{k: v for k, v in document.items() if k != "schema_version"}, "prices": prices}


def product_shape(body: bytes) -> int:
    """The shape of rendered document bytes, without parsing them (shape 2 and later begin with
    their ``schema_version``)."""
    return 2 if body.startswith(_SHAPE_2_PREFIX) else 1


def product_in_shape(body: bytes, shape: int) -> bytes:
    """Rendered document bytes in ``shape``: as they are when they already have it."""
    if product_shape(body) == shape:
        return body
    document = orjson.loads(body)
    return orjson.dumps(_product_v2(document) if shape == 2 else _product_v1(document))


def listing_item(product: Product) -> dict[str, Any]:
    """The summary a category page shows for one product."""
    total = _total_stock(product)
    return {
        "sku": product.sku,
        "name": product.name,
        "prices": _prices(product),
        "in_stock": total > 0,
        "version": product.version,
    }


def product_version(product: Product, category_path: list[Category]) -> dict[str, Any]:
    """What a product's history keeps of one of its versions: what a customer saw change."""
    total = _total_stock(product)
    return {
        "sku": product.sku,
        "version": product.version,
        "name": product.name,
        "category": _category_ref(category_path)["slug"],
        "prices": _prices(product),
        "stock_band": stock_band(total),
        "is_active": product.is_active,
        "committed_at": product.updated_at.isoformat(),
    }


TREE_PIECE_BYTES = 64 * 1024
"""What one piece of the category tree holds at most (and one node more): a tree of any size is
stored as pieces this small, and a reader fetches a 50,000-category tree in one BatchGetItem."""


def _tree_roots(categories: list[Category]) -> list[dict[str, Any]]:
    """The tree as the API serves it: roots and every node's children sorted by name, then slug."""
    nodes: dict[int, dict[str, Any]] = {c.pk: {"slug": c.slug, "name": c.name, "children": []} for c in categories}
    roots: list[dict[str, Any]] = []
    for category in sorted(categories, key=lambda c: (c.name, c.slug)):
        siblings = nodes[category.parent_id]["children"] if category.parent_id in nodes else roots
        siblings.append(nodes[category.pk])
    return roots


def category_tree_pieces(
    categories: list[Category], version: int, projected_at: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tree as a head and its pieces: the nodes in depth-first order (the order the API shows
    them), each as ``[depth, slug, name]``, cut into pieces of at most ``TREE_PIECE_BYTES``. The head
    says how many pieces there are; no item grows with the number of categories but their count."""
    flat: list[list[Any]] = []
    stack = [(0, node) for node in reversed(_tree_roots(categories))]
    while stack:
        depth, node = stack.pop()
        flat.append([depth, node["slug"], node["name"]])
        stack.extend((depth + 1, child) for child in reversed(node["children"]))
    pieces: list[dict[str, Any]] = []
    size = TREE_PIECE_BYTES
    for entry in flat:
        if size >= TREE_PIECE_BYTES:
            pieces.append({"nodes": []})
            size = 0
        pieces[-1]["nodes"].append(entry)
        size += len(orjson.dumps(entry)) + 1
    head = {"pieces": len(pieces), "version": version, "projected_at": projected_at.isoformat()}
    return head, pieces


def category_tree_assembled(head: dict[str, Any], pieces: list[dict[str, Any]]) -> dict[str, Any]:
    """The tree document the API serves, from the head and its pieces in order."""
    roots: list[dict[str, Any]] = []
    path: list[dict[str, Any]] = []  # the node last seen at each depth
    for piece in pieces:
        for depth, slug, name in piece["nodes"]:
            node = {"slug": slug, "name": name, "children": []}
            (path[depth - 1]["children"] if depth else roots).append(node)
            del path[depth:]
            path.append(node)
    return {"categories": roots, "version": head["version"], "projected_at": head["projected_at"]}


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """The document without fields that differ between two projections of the same version, and
    in one shape (a product document stored in its older shape is not drift)."""
    if document.get("schema_version") == 2:
        document = _product_v1(document)
    return {key: value for key, value in document.items() if key not in VOLATILE_FIELDS}
