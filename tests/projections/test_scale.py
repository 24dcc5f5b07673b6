"""The data model at size: no item grows with the catalog, and the answers stay the same."""

from __future__ import annotations

import math

import orjson
import pytest
from django.utils import timezone

from catalog import services
from catalog.models import Category, OutboxEvent, Product
from hybridsite import cache_keys
from hybridsite.dynamodb import write_units
from projections import documents
from projections.backfill import backfill
from projections.drift import check
from projections.projector import project, put_document, put_tombstone
from projections.registry import TREE_CACHE_NAME, stored_category_tree
from projections.relay import drain
from projections.sizes import item_bytes, largest_items, write_units_per_projection
from projections.tables import (
    CategoryListingItem,
    CategoryTreeDocument,
    CustomerOrder,
    ProductDocument,
)

pytestmark = pytest.mark.django_db(transaction=True)

ROOTS, CHILDREN = 250, 199  # 50,000 categories on two levels
ITEM_BOUND = 100 * 1024
"""Far below DynamoDB's 400 KB: what no projected item may reach, whatever the catalog's size."""


def bulk_categories(roots: int, children: int) -> None:
    """Two levels of categories, names of about 40 characters, in two statements."""
    parents = Category.objects.bulk_create(
        Category(slug=f"root-{r:04d}", name=f"Department {r:04d} of the retail taxonomy") for r in range(roots)
    )
    Category.objects.bulk_create(
        Category(slug=f"cat-{r:04d}-{c:04d}", name=f"Category {c:04d} under department {r:04d}", parent=parent)
        for r, parent in enumerate(parents)
        for c in range(children)
    )


def tree_in_postgres() -> list[dict]:
    """The tree as the API has always shown it, built here from the rows: children by name, then slug."""
    children: dict[int | None, list[Category]] = {}
    for category in Category.objects.order_by("name", "slug"):
        children.setdefault(category.parent_id, []).append(category)

    def nodes(parent: int | None) -> list[dict]:
        return [{"slug": c.slug, "name": c.name, "children": nodes(c.pk)} for c in children.get(parent, [])]

    return nodes(None)


def item_sizes(model) -> list[int]:
    """The size of every live item's body (the envelope is far below a kilobyte)."""
    return [len(item.body.encode()) for item in model.scan() if not item.deleted]


def test_a_tree_of_fifty_thousand_categories_is_served_current_from_dynamodb(client, dynamodb, redis_clean):
    Category.objects.create(slug="first", name="First")
    drain(30)
    assert orjson.loads(client.get("/api/categories/").content)["categories"][0]["slug"] == "first"

    bulk_categories(ROOTS, CHILDREN)
    result = drain(120)

    assert (result.failed, result.dead) == (0, 0)
    assert not OutboxEvent.objects.exists()
    response = client.get("/api/categories/")
    assert response.status_code == 200 and response["X-Served-From"] == "cache"
    assert orjson.loads(response.content)["categories"] == tree_in_postgres()
    redis_clean.delete(cache_keys.document(TREE_CACHE_NAME))
    response = client.get("/api/categories/")
    assert response["X-Served-From"] == "dynamodb"
    assert orjson.loads(response.content)["categories"] == tree_in_postgres()
    sizes = item_sizes(CategoryTreeDocument)
    assert len(sizes) > 1 and max(sizes) < ITEM_BOUND
    pieces = len(sizes) - 1  # and the head
    assert check(aggregates=["category"]).clean

    Category.objects.filter(slug="cat-0123-0045").update(name="Category 0045, renamed")
    outcome = project("category", 0)
    assert (outcome.written, outcome.unchanged, outcome.tombstoned) == (2, pieces - 1, 1)  # one piece, the head
    assert orjson.loads(client.get("/api/categories/").content)["categories"] == tree_in_postgres()

    Category.objects.filter(parent__slug__gte="root-0100").delete()  # most of the tree goes
    Category.objects.filter(parent=None, slug__gte="root-0100").delete()
    assert drain(60).failed == 0
    response = client.get("/api/categories/")
    assert orjson.loads(response.content)["categories"] == tree_in_postgres()
    assert len(item_sizes(CategoryTreeDocument)) - 1 < pieces  # the pieces no longer used are tombstones
    assert check(aggregates=["category"]).clean


def tree_items() -> dict[str, CategoryTreeDocument]:
    return {item.pk: item for item in CategoryTreeDocument.scan() if not item.deleted}


def test_a_rename_in_a_large_tree_writes_only_the_piece_holding_it_and_the_head(client, dynamodb, redis_clean):
    bulk_categories(100, 99)  # 10,000 categories
    project("category", 0)
    before = tree_items()
    assert len(before) > 20
    renamed = Category.objects.get(slug="cat-0042-0017")
    Category.objects.filter(pk=renamed.pk).update(name="Renamed category under department 0042")
    units = dynamodb_units()

    outcome = project("category", 0)

    spent = dynamodb_units() - units
    after = tree_items()
    head = after["TREE"]
    [piece] = set(after) - set(before)  # a new key: its content changed
    [old] = set(before) - set(after)  # now a tombstone
    assert (outcome.written, outcome.unchanged, outcome.tombstoned) == (2, len(before) - 2, 1)
    assert head.version == outcome.version > before["TREE"].version
    assert after[piece].version == outcome.version
    assert all(after[key].version == before[key].version < head.version for key in set(after) - {"TREE", piece})
    # The piece, the head, the old piece's tombstone (a write costs the larger of the item it
    # replaces and the new one: the old piece's size) and the new piece's owner index entry.
    kilobytes = [math.ceil(item_bytes(item) / 1024) for item in (after[piece], head, before[old])]
    assert spent <= sum(kilobytes) + 3
    assert check(aggregates=["category"]).clean
    assert orjson.loads(stored_category_tree().body)["categories"] == tree_in_postgres()
    response = client.get("/api/categories/")
    assert orjson.loads(response.content)["version"] == outcome.version
    assert orjson.loads(response.content)["categories"] == tree_in_postgres()

    Category.objects.filter(pk=renamed.pk).update(name=renamed.name)  # back: the old piece comes back
    outcome = project("category", 0)
    assert (outcome.written, outcome.tombstoned) == (2, 1)
    assert set(tree_items()) == set(before)
    assert check(aggregates=["category"]).clean


def dynamodb_units() -> float:
    return write_units().get(CategoryTreeDocument.Meta.table_name, 0.0)


def test_a_tree_whose_head_names_a_piece_not_there_as_named_is_read_from_postgres(
    client, dynamodb, redis_clean, monkeypatch
):
    """As while a newer tree is being written: its pieces go first, its head next, and the pieces
    no head names any more become tombstones last."""
    monkeypatch.setattr(documents, "TREE_PIECE_CATEGORIES", 4)
    bulk_categories(4, 5)
    outcome = project("category", 0)
    head = CategoryTreeDocument.get("TREE")
    keys = orjson.loads(head.body)["piece_keys"]
    assert len(keys) > 2
    assert orjson.loads(stored_category_tree().body)["categories"] == tree_in_postgres()
    other = CategoryTreeDocument.get(keys[2])

    # A piece under another's key (content its key does not name): not whole.
    assert put_document(
        CategoryTreeDocument, {"pk": keys[1]}, owner=other.owner, version=outcome.version,
        body=other.body.encode(), committed_at=None, projected_at=timezone.now(), repair=True,
    )
    assert stored_category_tree() is None
    redis_clean.delete(cache_keys.document(TREE_CACHE_NAME))
    response = client.get("/api/categories/")
    assert response["X-Served-From"] == "postgres"
    assert orjson.loads(response.content)["categories"] == tree_in_postgres()
    assert not check(aggregates=["category"]).clean

    # A piece tombstoned (by a newer tree's projection, after its own head): not whole either.
    project("category", 0, repair=True)
    assert orjson.loads(stored_category_tree().body)["categories"] == tree_in_postgres()
    assert put_tombstone(
        CategoryTreeDocument, {"pk": keys[2]}, owner=other.owner, version=outcome.version,
        projected_at=timezone.now(), repair=True,
    )
    assert stored_category_tree() is None
    assert not check(aggregates=["category"]).clean
    project("category", 0, repair=True)
    assert check(aggregates=["category"]).clean
    assert orjson.loads(stored_category_tree().body)["categories"] == tree_in_postgres()


def all_pages(client, slug: str, limit: int) -> tuple[list[dict], list[str | None]]:
    """Every item of a category's listing, page after page, and the cursors handed out."""
    items: list[dict] = []
    cursors: list[str | None] = []
    cursor = ""
    while True:
        response = client.get(f"/api/categories/{slug}/products/?limit={limit}&cursor={cursor}")
        assert response.status_code == 200, response.content
        page = orjson.loads(response.content)
        items += page["items"]
        cursors.append(page["next_cursor"])
        if page["next_cursor"] is None:
            return items, cursors
        cursor = page["next_cursor"]


def test_a_listing_sharded_over_partitions_pages_in_the_same_order(client, tools, settings):
    for n in range(57):
        services.product_create(sku=f"SKU-{(n * 37) % 101:03d}", name=f"Product {n}", category=tools)
    drain(30)
    unsharded = all_pages(client, "tools", 10)
    assert len(unsharded[0]) == 57

    settings.LISTING_SHARDS = 4
    # A new shard count is a rewriting backfill: each item moves to its shard at the same version.
    assert backfill("product", reshape=True) == 57
    assert check().clean

    partitions = {item.pk for item in CategoryListingItem.scan() if not item.deleted}
    assert partitions == {f"CATEGORY#tools#{shard}" for shard in range(4)}
    assert all_pages(client, "tools", 10) == unsharded
    assert all_pages(client, "tools", 7)[0] == unsharded[0]
    forged = client.get("/api/categories/tools/products/?cursor=" + unsharded[1][0][:-2] + "xx")
    assert forged.status_code == 400


def test_no_item_grows_with_the_number_of_products_or_categories(tools, redis_clean):
    """Nor what a product's projection costs in write units, as DynamoDB reports them."""

    def grow(products: range, roots: range) -> tuple[dict[str, int], dict[str, float]]:
        for n in products:
            services.product_create(sku=f"SKU-{n:06d}", name=f"Product {n:06d}", category=tools)
        Category.objects.bulk_create(
            Category(slug=f"root-{r:05d}", name=f"Department {r:05d} of the retail taxonomy") for r in roots
        )
        assert drain(120).failed == 0
        product = Product.objects.get(sku=f"SKU-{products[-1]:06d}")
        units = write_units_per_projection("product", [product.pk])
        return {largest.table: largest.bytes for largest in largest_items()}, units

    small, small_units = grow(range(5), range(3_000))
    large, large_units = grow(range(5, 305), range(3_000, 30_000))

    # Every table holds items, but the orders (a customer's, which this catalog does not grow).
    assert set(large) == set(small)
    assert all(size for table, size in small.items() if table != CustomerOrder.Meta.table_name), small
    for table, size in large.items():
        # A digit more here and there, never more items' worth (a piece of the tree: a digit more
        # in some of its categories' ids).
        digits = documents.TREE_PIECE_CATEGORIES if table == CategoryTreeDocument.Meta.table_name else 16
        assert size <= small[table] + digits, table
        assert size < ITEM_BOUND, table
    assert large_units == small_units
    assert set(small_units) == {ProductDocument.Meta.table_name, CategoryListingItem.Meta.table_name}


@pytest.mark.aws_engine(reason="moto reports one capacity unit per write, whatever the item's size")
def test_write_units_are_counted_per_kilobyte_in_the_table_and_one_at_most_in_its_owner_index(
    dynamodb, redis_clean
):
    """The owner index projects keys only: its entry costs one unit, not the document's size again."""
    bulk_categories(20, 150)
    project("category", 0)
    items = [item for item in CategoryTreeDocument.scan() if not item.deleted]
    kilobytes = sum(item_bytes(item) for item in items) / 1024
    units = write_units_per_projection("category", [0])[CategoryTreeDocument.Meta.table_name]
    assert len(items) > 2 and kilobytes <= units <= kilobytes + 2 * len(items)
