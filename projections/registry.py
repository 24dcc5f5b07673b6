"""Which aggregates are projected, how each is read, and the views built from it.

Adding a view is declarative: a ``Projection`` (table + pure builder) appended to an aggregate's
``projections``. The projector, relay, backfill, drift check and cache refresh work from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from catalog import selectors
from catalog.models import Category, Product

from . import documents
from .models import CategoryListingItem, CategoryTreeDocument, ProductDocument, ProjectedItem

TREE_KEY = "TREE"


@dataclass(frozen=True)
class Item:
    """One item an aggregate wants in a table: its key attributes and its document."""

    key: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """An aggregate as one consistent read saw it; ``state`` is None when it is gone."""

    state: Any
    version: int
    committed_at: str | None


@dataclass(frozen=True)
class Projection:
    name: str
    model: type[ProjectedItem]
    build: Callable[[Snapshot, datetime], list[Item]]
    cache_key: Callable[[dict[str, str]], str] | None = None
    """Cache key of an item's document, for the views the reader serves one item at a time."""

    listing: Callable[[dict[str, str]], str] | None = None
    """The listing an item belongs to, for views read as pages (cached per listing generation)."""


@dataclass(frozen=True)
class Aggregate:
    name: str
    load: Callable[[int], Snapshot]
    owner: Callable[[int], str]
    ids: Callable[[int, int], Iterator[list[int]]]
    projections: tuple[Projection, ...]
    clock_versioned: bool = False
    """Versions come from the snapshot's clock, not from Postgres: the drift check compares content."""


def _db_clock_us() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint")
        return cursor.fetchone()[0]


# --- product ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductState:
    product: Product
    category_path: list[Category]


def load_product(product_id: int) -> Snapshot:
    product = selectors.product_get_aggregate(product_id=product_id)
    if product is None:
        return Snapshot(state=None, version=0, committed_at=None)
    state = ProductState(product=product, category_path=selectors.category_path(category=product.category))
    return Snapshot(state=state, version=product.version, committed_at=product.updated_at.isoformat())


def _visible(snapshot: Snapshot) -> ProductState | None:
    """Inactive products are projected as absent: the public API does not show them."""
    return snapshot.state if snapshot.state is not None and snapshot.state.product.is_active else None


def build_product_document(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    state = _visible(snapshot)
    if state is None:
        return []
    body = documents.product_document(state.product, state.category_path, projected_at)
    return [Item(key={"pk": state.product.sku}, body=body)]


def build_listing_item(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    state = _visible(snapshot)
    if state is None:
        return []
    key = {"pk": f"CATEGORY#{state.product.category.slug}", "sk": state.product.sku}
    return [Item(key=key, body=documents.listing_item(state.product))]


def product_ids(chunk: int, after: int = 0) -> Iterator[list[int]]:
    while True:
        ids = list(Product.objects.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:chunk])
        if not ids:
            return
        yield ids
        after = ids[-1]


# --- category tree (one document for all categories) ------------------------------------------


def load_category_tree(_: int) -> Snapshot:
    """Categories carry no version: under the projector's lock, the snapshot's clock orders them."""
    version = _db_clock_us()
    return Snapshot(state=list(Category.objects.all()), version=version, committed_at=None)


def build_category_tree(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    body = documents.category_tree_document(snapshot.state, snapshot.version, projected_at)
    return [Item(key={"pk": TREE_KEY}, body=body)]


def _tree_ids(chunk: int, after: int = 0) -> Iterator[list[int]]:
    if after == 0:
        yield [1]


AGGREGATES: dict[str, Aggregate] = {
    "product": Aggregate(
        name="product",
        load=load_product,
        owner=lambda product_id: f"product#{product_id}",
        ids=product_ids,
        projections=(
            Projection("product", ProductDocument, build_product_document, cache_key=lambda key: f"product:{key['pk']}"),
            Projection(
                "category_listing", CategoryListingItem, build_listing_item,
                listing=lambda key: key["pk"].removeprefix("CATEGORY#"),
            ),
        ),
    ),
    "category": Aggregate(
        name="category",
        load=load_category_tree,
        owner=lambda _: "category-tree",
        ids=_tree_ids,
        clock_versioned=True,
        projections=(
            Projection("category_tree", CategoryTreeDocument, build_category_tree, cache_key=lambda key: "category-tree"),
        ),
    ),
}
