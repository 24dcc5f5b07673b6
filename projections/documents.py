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


TREE_PIECE_CATEGORIES = 256
"""How many category ids one piece of the tree covers: piece ``k`` holds the categories whose id is
in ``[256 k, 256 k + 256)``. A change of one category (a rename, a move, a new or deleted one)
changes the one piece that holds its id and no other, whatever the tree's size; a new category
goes to the last piece or starts one. A piece holds at most 256 nodes of at most about 1.3 KB each
(two ids, a 100-character slug, a 200-character name of 4-byte characters): 340 KB, under
DynamoDB's 400 KB; about 20 KB with names of 40 characters."""


def _tree_roots(nodes: list[list[Any]]) -> list[dict[str, Any]]:
    """The tree as the API serves it, from ``[id, parent_id, slug, name]`` nodes: roots and every
    node's children sorted by name, then slug."""
    found = {node[0]: {"slug": node[2], "name": node[3], "children": []} for node in nodes}
    parents = {node[0]: node[1] for node in nodes}
    roots: list[dict[str, Any]] = []
    for category_id, node in sorted(found.items(), key=lambda pair: (pair[1]["name"], pair[1]["slug"])):
        parent = parents[category_id]
        (found[parent]["children"] if parent in found else roots).append(node)
    return roots


def category_tree_pieces(categories: list[Category]) -> list[tuple[int, dict[str, Any]]]:
    """The tree's nodes cut into pieces by id (``TREE_PIECE_CATEGORIES``), each node as
    ``[id, parent_id, slug, name]`` in id order: ``(k, piece)`` for every piece ``k`` holding one.
    Nothing in a piece depends on another piece, nor on the tree's version: an unchanged piece
    renders to the same bytes in every version."""
    pieces: dict[int, list[list[Any]]] = {}
    for category in sorted(categories, key=lambda c: c.pk):
        nodes = pieces.setdefault(category.pk // TREE_PIECE_CATEGORIES, [])
        nodes.append([category.pk, category.parent_id, category.slug, category.name])
    return [(index, {"nodes": nodes}) for index, nodes in sorted(pieces.items())]


def category_tree_head(piece_keys: list[str], version: int, projected_at: datetime) -> dict[str, Any]:
    """The tree's head: the keys of the pieces that make this version, in order. A piece's key
    names its content, so a piece the head names is that content whichever version wrote it."""
    return {"piece_keys": piece_keys, "version": version, "projected_at": projected_at.isoformat()}


def category_tree_assembled(head: dict[str, Any], pieces: list[dict[str, Any]]) -> dict[str, Any]:
    """The tree document the API serves, from the head and the pieces it names."""
    roots = _tree_roots([node for piece in pieces for node in piece["nodes"]])
    return {"categories": roots, "version": head["version"], "projected_at": head["projected_at"]}


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """The document without fields that differ between two projections of the same version, and
    in one shape (a product document stored in its older shape is not drift)."""
    if document.get("schema_version") == 2:
        document = _product_v1(document)
    return {key: value for key, value in document.items() if key not in VOLATILE_FIELDS}
