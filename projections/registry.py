"""Which aggregates are projected, how each is read, and the views built from it.

Adding a view is declarative: a ``Projection`` (table + pure builder) appended to an aggregate's
``projections``. The projector, relay, backfill, drift check and cache refresh work from here, and
each view's identity (its keys, cache name and owner) is spelled once, by the functions below.
"""

from __future__ import annotations

import hashlib
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
from hybridsite.dynamodb import get_item, regional_table

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
    content_keyed: bool = False
    """Its key names its content (a digest of the body is part of it): while later versions still
    want it, it stays as the version that wrote it left it, so its version may be older than its
    aggregate's (the drift check does not call it stale)."""


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

    published: Callable[[], set[tuple[str, ...]]] | None = None
    """For a document stored as content-keyed pieces: the keys of the pieces its stored head names
    (a strongly consistent read). Those are live and hold what their keys say, so the projector
    does not write them again: a change writes the pieces that changed and the head."""

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
"""The tree's head: its version and the keys of the pieces that hold its nodes."""
TREE_CACHE_NAME = "category-tree"
TREE_OWNER = "category-tree"


def _digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=8).hexdigest()


def tree_piece_key(index: int, piece: dict[str, Any]) -> dict[str, str]:
    """A piece of the category tree, ``TREE#<k>#<digest of its body>``: each its own partition,
    all fetched in one BatchGetItem (100 keys a call). A piece whose nodes change gets a new key;
    an unchanged one keeps its key, and its item is not written again."""
    return {"pk": f"TREE#{index}#{_digest(orjson.dumps(piece))}"}


def _names_its_body(key: str, body: bytes) -> bool:
    return key.rpartition("#")[2] == _digest(body)


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
    fetch: Callable[[str | None], Stored | None] | None = None
    """How to read it from a region's DynamoDB (None: this region's) when it is not the one item at
    ``key`` (a strongly consistent read; None: none, or none that is whole)."""

    def stored(self, region: str | None = None) -> Stored | None:
        """The document as ``region``'s DynamoDB holds it (None: this region's)."""
        if self.fetch is not None:
            return self.fetch(region)
        item = get_item(regional_table(self.model, region), self.key)
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


def document_address(name: str) -> DocumentAddress | None:
    """The document a cache name stands for (the inverse of the ``*_cache_name`` functions); None
    for a name that is no document's."""
    if name == TREE_CACHE_NAME:
        return category_tree_document()
    kind, _, rest = name.partition(":")
    if kind == "product" and rest:
        return product_document(rest)
    named = ADDRESSES_BY_KIND.get(kind)
    return named(rest) if named and rest else None


def stored_category_tree(region: str | None = None) -> Stored | None:
    """The tree from its head and the pieces it names (one GetItem, one BatchGetItem) in
    ``region``'s DynamoDB (None: this region's), or None unless each of them is there, live, with
    the content its key names: the projector writes the pieces before the head and tombstones the
    pieces no head names any more after it, so a tree read while a newer one is written may miss one
    (the reader then asks Postgres, as for a missing document). A piece is never read with another
    version's content: its key names it."""
    table = regional_table(CategoryTreeDocument, region)
    head = get_item(table, TREE_KEY)
    if head is None or head.deleted or head.body is None:
        return None
    header = orjson.loads(head.body)
    if "piece_keys" not in header:  # stored by a release that kept the tree in one item, or cut by size
        return None
    keys = header["piece_keys"]
    found = {piece.pk: piece for piece in table.batch_get(keys, consistent_read=True)}
    bodies: list[bytes] = []
    for key in keys:
        piece = found.get(key)
        body = None if piece is None or piece.deleted or piece.body is None else piece.body.encode()
        if body is None or not _names_its_body(key, body):
            return None
        bodies.append(body)
    whole = documents.category_tree_assembled(header, [orjson.loads(body) for body in bodies])
    return Stored(head.version, False, orjson.dumps(whole))


def published_tree_pieces() -> set[tuple[str, ...]]:
    """The keys of the pieces the stored head names (none if it names none, or is from an older
    release): written before that head was, and tombstoned only once a later head names others."""
    head = get_item(CategoryTreeDocument, TREE_KEY)
    if head is None or head.deleted or head.body is None:
        return set()
    return {(key,) for key in orjson.loads(head.body).get("piece_keys", [])}


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


# --- category tree (one document for all categories, stored in pieces) ---------------------------


def load_category_tree(ids: list[int]) -> dict[int, Snapshot]:
    """The tree's version is counted in Postgres by the category triggers, in commit order."""
    version = CategoryTreeVersion.objects.values_list("version", flat=True).first() or 0
    snapshot = Snapshot(state=list(Category.objects.all()), version=version, committed_at=None)
    return dict.fromkeys(ids, snapshot)


def build_category_tree(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    """The pieces first, the head last: the projector writes items in order, so a head is never
    stored before the pieces it names."""
    pieces = [
        Item(key=tree_piece_key(index, piece), body=piece, content_keyed=True)
        for index, piece in documents.category_tree_pieces(snapshot.state)
    ]
    head = documents.category_tree_head([piece.key["pk"] for piece in pieces], snapshot.version, projected_at)
    return [*pieces, Item(key=TREE_KEY, body=head)]


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
            Projection(
                CategoryTreeDocument, build_category_tree,
                assembled=assembled_category_tree, published=published_tree_pieces,
            ),
        ),
    ),
}


ADDRESSES_BY_KIND: dict[str, Callable[[str], DocumentAddress | None]] = {}
"""For a cache name ``<kind>:<rest>`` of an app that plugs in: the document it stands for."""


def register(aggregate: Aggregate, addresses: dict[str, Callable[[str], DocumentAddress | None]] | None = None) -> None:
    """Add an aggregate another app projects (its ``AppConfig.ready``): the projections know the
    catalog, whose views they are built around; an app above them, such as orders, plugs in, with
    the documents its cache names stand for (``document_address``)."""
    AGGREGATES[aggregate.name] = aggregate
    ADDRESSES_BY_KIND.update(addresses or {})
