"""Which aggregates are projected, how each is read, and the views built from it.

Adding a view is declarative: a ``Projection`` (table + pure builder) appended to an aggregate's
``projections``. The projector, relay, backfill, drift check and cache refresh work from here, and
each view's identity (its keys, cache name and owner) is spelled once, by the functions below.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db.models import Model

from catalog import selectors
from catalog.models import Category, CategoryTreeVersion, Product
from hybridsite.dynamodb import get_item

from . import documents, shapes
from .tables import (
    CategoryListingItem,
    CategoryTreeDocument,
    ProductDocument,
    ProductVersion,
    ProjectedItem,
)


@dataclass(frozen=True)
class Item:
    """One item an aggregate wants in a table: its key attributes and its document."""

    key: dict[str, str]
    body: dict[str, Any]
    expires_at: datetime | None = None
    """When DynamoDB's TTL removes it (append-only views); None: never."""


@dataclass(frozen=True)
class Snapshot:
    """An aggregate as one consistent read saw it; ``state`` is None when it is gone."""

    state: Any
    version: int
    committed_at: str | None


@dataclass(frozen=True)
class Projection:
    model: type[ProjectedItem]
    build: Callable[[Snapshot, datetime], list[Item]]
    cache_name: Callable[[dict[str, str]], str] | None = None
    """The cache name of an item's document, for the views the reader serves one item at a time."""

    listing: Callable[[dict[str, str]], str] | None = None
    """The listing an item belongs to, for views read as pages (cached per listing generation)."""

    assembled: Callable[[list[Item]], tuple[str, bytes]] | None = None
    """For a document stored as several items (pieces, so that no item grows with the catalog) and
    served whole: its cache name and rendered bytes, from the items the build made."""

    append_only: bool = False
    """Each item is written once (``attribute_not_exists``) and never replaced nor tombstoned, and
    its key is not kept in the owner's manifest: a log of versions, such as a product's history."""


@dataclass(frozen=True)
class Aggregate:
    name: str
    load_many: Callable[[list[int]], dict[int, Snapshot]]
    """Snapshots of several aggregates by id, in a few queries whatever their number (the caller
    holds the transaction that makes them one consistent read)."""
    owner: Callable[[int], str]
    """The owner written on every item of an aggregate (``owner_id`` reads it back)."""
    owner_id: Callable[[str], int | None]
    ids: Callable[[int, int], Iterator[list[int]]]
    projections: tuple[Projection, ...]

    def load(self, aggregate_id: int) -> Snapshot:
        return self.load_many([aggregate_id])[aggregate_id]


# --- identities: one function (or constant) per data set, never a key built at a call site -------


def product_key(sku: str) -> dict[str, str]:
    """The product document's key in its table: the SKU."""
    return {"pk": sku}


def product_cache_name(sku: str) -> str:
    return f"product:{sku}"


def product_owner(product_id: int) -> str:
    return f"product#{product_id}"


def product_owner_id(owner: str) -> int | None:
    kind, _, tail = owner.partition("#")
    return int(tail) if kind == "product" and tail.isdigit() else None


LISTING_PREFIX = "CATEGORY#"


def listing_partitions(slug: str) -> list[str]:
    """A category listing's partitions, one per shard (``LISTING_SHARDS``; unsharded, the slug's
    alone): a page is one Query on each, merged in SKU order. Spread over shards, one category's
    writes stay under the 1,000 write units per second that DynamoDB allows a partition key."""
    if settings.LISTING_SHARDS == 1:
        return [f"{LISTING_PREFIX}{slug}"]
    return [f"{LISTING_PREFIX}{slug}#{shard}" for shard in range(settings.LISTING_SHARDS)]


def listing_key(slug: str, sku: str) -> dict[str, str]:
    """A listing item's key: its shard is computed from the SKU (the same in every process)."""
    partitions = listing_partitions(slug)
    return {"pk": partitions[zlib.crc32(sku.encode()) % len(partitions)], "sk": sku}


def listing_slug(key: dict[str, str]) -> str:
    """The listing (category slug) a listing item belongs to: its pages are cached per generation."""
    return key["pk"].removeprefix(LISTING_PREFIX).partition("#")[0]


def product_version_key(sku: str, version: int) -> dict[str, str]:
    """A product version's key in the history: the SKU, and the version zero-padded to sort."""
    return {"pk": sku, "sk": f"{version:019d}"}


def product_version_number(key: dict[str, str]) -> int:
    return int(key["sk"])


MAX_ORDER_ID = 2**63 - 1  # order ids are Postgres bigints


CUSTOMER_PREFIX = "CUSTOMER#"


def customer_partition(user_id: int) -> str:
    """A customer's orders: one partition, a page of them is one Query on it."""
    return f"{CUSTOMER_PREFIX}{user_id}"


def order_key(user_id: int, order_id: int) -> dict[str, str]:
    """The order's key under its customer: the id inverted and zero-padded, so newest sorts first."""
    return {"pk": customer_partition(user_id), "sk": f"{MAX_ORDER_ID - order_id:019d}"}


def order_id_of(sort_key: str) -> int:
    return MAX_ORDER_ID - int(sort_key)


def order_cache_name(user_id: int, order_id: int) -> str:
    """Customer and order both: a key one customer can never share with another."""
    return f"order:{user_id}:{order_id}"


def orders_listing(user_id: int) -> str:
    """The listing of one customer's orders (its pages are cached per generation)."""
    return f"orders:{user_id}"


def customer_of(key: dict[str, str]) -> int:
    return int(key["pk"].removeprefix(CUSTOMER_PREFIX))


def order_owner(order_id: int) -> str:
    return f"order#{order_id}"


def order_owner_id(owner: str) -> int | None:
    kind, _, tail = owner.partition("#")
    return int(tail) if kind == "order" and tail.isdigit() else None


TREE_KEY = {"pk": "TREE"}
"""The tree's head: its version and how many pieces hold its nodes."""
TREE_CACHE_NAME = "category-tree"
TREE_OWNER = "category-tree"


def tree_piece_key(index: int) -> dict[str, str]:
    """A piece of the category tree: each its own partition, all fetched in one BatchGetItem."""
    return {"pk": f"TREE#{index}"}


@dataclass(frozen=True)
class Stored:
    """A document as DynamoDB holds it: ``body`` None for a tombstone."""

    version: int
    deleted: bool
    body: bytes | None


@dataclass(frozen=True)
class DocumentAddress:
    """Where a document the reader serves one at a time lives in each layer."""

    name: str
    """Its cache name."""
    model: type[ProjectedItem]
    key: dict[str, str]
    locate: Callable[[], tuple[str, int] | None]
    """The aggregate holding it in Postgres, or None when there is none."""
    fetch: Callable[[], Stored | None] | None = None
    """How to read it from DynamoDB when it is not the one item at ``key`` (a strongly consistent
    read; None: none, or none that is whole)."""

    def stored(self) -> Stored | None:
        if self.fetch is not None:
            return self.fetch()
        item = get_item(self.model, self.key)
        if item is None:
            return None
        return Stored(item.version, item.deleted, None if item.body is None else item.body.encode())


def product_document(sku: str) -> DocumentAddress:
    def locate() -> tuple[str, int] | None:
        product_id = Product.objects.filter(sku=sku).values_list("pk", flat=True).first()
        return None if product_id is None else ("product", product_id)

    return DocumentAddress(product_cache_name(sku), ProductDocument, product_key(sku), locate)


def category_tree_document() -> DocumentAddress:
    return DocumentAddress(
        TREE_CACHE_NAME, CategoryTreeDocument, TREE_KEY, lambda: ("category", 0), fetch=stored_category_tree
    )


def stored_category_tree() -> Stored | None:
    """The tree from its head and its pieces (one GetItem, one BatchGetItem), or None unless every
    piece the head names is there at the head's version: the projector writes the pieces before
    the head, so a tree read while a newer one is written is not whole (the reader then asks
    Postgres, as for a missing document)."""
    head = get_item(CategoryTreeDocument, TREE_KEY)
    if head is None or head.deleted or head.body is None:
        return None
    header = orjson.loads(head.body)
    if "pieces" not in header:  # stored by a release that kept the tree in one item
        return None
    keys = [tree_piece_key(index)["pk"] for index in range(header["pieces"])]
    found = {piece.pk: piece for piece in CategoryTreeDocument.batch_get(keys, consistent_read=True)}
    pieces = [found.get(key) for key in keys]
    if any(p is None or p.deleted or p.body is None or p.version != head.version for p in pieces):
        return None
    whole = documents.category_tree_assembled(header, [orjson.loads(p.body) for p in pieces if p and p.body])
    return Stored(head.version, False, orjson.dumps(whole))


# --- product ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductState:
    product: Product
    category_path: list[Category]


GONE = Snapshot(state=None, version=0, committed_at=None)


def load_products(product_ids: list[int]) -> dict[int, Snapshot]:
    products = selectors.products_get_aggregates(product_ids=product_ids)
    paths = selectors.category_paths(category_ids={product.category_id for product in products})
    snapshots = dict.fromkeys(product_ids, GONE)
    for product in products:
        state = ProductState(product=product, category_path=paths[product.category_id])
        committed_at = product.updated_at.isoformat()
        snapshots[product.pk] = Snapshot(state=state, version=product.version, committed_at=committed_at)
    return snapshots


def _visible(snapshot: Snapshot) -> ProductState | None:
    """Inactive products are projected as absent: the public API does not show them."""
    return snapshot.state if snapshot.state is not None and snapshot.state.product.is_active else None


def build_product_document(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    state = _visible(snapshot)
    if state is None:
        return []
    body = documents.product_document(state.product, state.category_path, projected_at, shapes.write_shape())
    return [Item(key=product_key(state.product.sku), body=body)]


def build_listing_item(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    state = _visible(snapshot)
    if state is None:
        return []
    key = listing_key(state.product.category.slug, state.product.sku)
    return [Item(key=key, body=documents.listing_item(state.product))]


def build_product_version(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    """Every version of a product, active or not, for its history (a gone product adds none)."""
    state = snapshot.state
    if state is None:
        return []
    product = state.product
    return [Item(
        key=product_version_key(product.sku, product.version),
        body=documents.product_version(product, state.category_path),
        expires_at=product.updated_at + timedelta(days=settings.HISTORY_DAYS),
    )]


def ids_of(model: type[Model]) -> Callable[[int, int], Iterator[list[int]]]:
    """Every id of ``model``'s rows in chunks, after ``after``: an aggregate's ``ids`` for a backfill."""
    def ids(chunk: int, after: int = 0) -> Iterator[list[int]]:
        while True:
            rows = model._default_manager.filter(pk__gt=after).order_by("pk")
            found = list(rows.values_list("pk", flat=True)[:chunk])
            if not found:
                return
            yield found
            after = found[-1]

    return ids


product_ids = ids_of(Product)


# --- category tree (one document for all categories) ------------------------------------------


def load_category_tree(ids: list[int]) -> dict[int, Snapshot]:
    """The tree's version is counted in Postgres by the category triggers, in commit order."""
    version = CategoryTreeVersion.objects.values_list("version", flat=True).first() or 0
    snapshot = Snapshot(state=list(Category.objects.all()), version=version, committed_at=None)
    return dict.fromkeys(ids, snapshot)


def build_category_tree(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    """The pieces first, the head last: the projector writes items in order, so a head is never
    stored before the pieces it names."""
    head, pieces = documents.category_tree_pieces(snapshot.state, snapshot.version, projected_at)
    return [*(Item(key=tree_piece_key(i), body=piece) for i, piece in enumerate(pieces)), Item(key=TREE_KEY, body=head)]


def assembled_category_tree(items: list[Item]) -> tuple[str, bytes]:
    *pieces, head = items
    return TREE_CACHE_NAME, orjson.dumps(documents.category_tree_assembled(head.body, [p.body for p in pieces]))


def _tree_ids(chunk: int, after: int = 0) -> Iterator[list[int]]:
    """The tree is one aggregate, id 0 as in its outbox rows (a resumed backfill redoes it)."""
    if after == 0:
        yield [0]


AGGREGATES: dict[str, Aggregate] = {
    "product": Aggregate(
        name="product",
        load_many=load_products,
        owner=product_owner,
        owner_id=product_owner_id,
        ids=product_ids,
        projections=(
            Projection(ProductDocument, build_product_document, cache_name=lambda key: product_cache_name(key["pk"])),
            Projection(CategoryListingItem, build_listing_item, listing=listing_slug),
            Projection(ProductVersion, build_product_version, append_only=True),
        ),
    ),
    "category": Aggregate(
        name="category",
        load_many=load_category_tree,
        owner=lambda _: TREE_OWNER,
        owner_id=lambda owner: 0 if owner == TREE_OWNER else None,
        ids=_tree_ids,
        projections=(
            Projection(CategoryTreeDocument, build_category_tree, assembled=assembled_category_tree),
        ),
    ),
}


def register(aggregate: Aggregate) -> None:
    """Add an aggregate another app projects (its ``AppConfig.ready``): the projections know the
    catalog, whose views they are built around; an app above them, such as orders, plugs in."""
    AGGREGATES[aggregate.name] = aggregate
