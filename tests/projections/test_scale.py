"""The data model at size: no item grows with the catalog, and the answers stay the same."""

from __future__ import annotations

import orjson
import pytest
from django.utils import timezone

from catalog import services
from catalog.models import Category, OutboxEvent, Product
from hybridsite import cache_keys
from projections import documents
from projections.backfill import backfill
from projections.drift import check
from projections.projector import project, put_document
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


@pytest.mark.proof  # a minute of Postgres and projection work, the engine's part plain puts and reads: once in CI
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

    Category.objects.filter(parent__slug__gte="root-0100").delete()  # most of the tree goes
    Category.objects.filter(parent=None, slug__gte="root-0100").delete()
    assert drain(60).failed == 0
    response = client.get("/api/categories/")
    assert orjson.loads(response.content)["categories"] == tree_in_postgres()
    assert len(item_sizes(CategoryTreeDocument)) - 1 < pieces  # the pieces no longer used are tombstones
    assert check(aggregates=["category"]).clean


def test_a_tree_whose_pieces_are_not_all_at_its_heads_version_is_read_from_postgres(
    client, dynamodb, redis_clean, monkeypatch
):
    """As while a newer tree is being written: its pieces go first, its head last."""
    monkeypatch.setattr(documents, "TREE_PIECE_BYTES", 256)
    bulk_categories(4, 5)
    outcome = project("category", 0)
    head = CategoryTreeDocument.get("TREE")
    assert orjson.loads(head.body)["pieces"] > 2
    assert orjson.loads(stored_category_tree().body)["categories"] == tree_in_postgres()
    piece = CategoryTreeDocument.get("TREE#1")
    assert put_document(
        CategoryTreeDocument, {"pk": "TREE#1"}, owner=piece.owner, version=outcome.version + 1,
        body=piece.body.encode(), committed_at=None, projected_at=timezone.now(),
    )

    assert stored_category_tree() is None
    redis_clean.delete(cache_keys.document(TREE_CACHE_NAME))
    response = client.get("/api/categories/")
    assert response["X-Served-From"] == "postgres"
    assert orjson.loads(response.content)["categories"] == tree_in_postgres()


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
        assert size <= small[table] + 16, table  # a digit more here and there, never more items' worth
        assert size < ITEM_BOUND, table
    assert large_units == small_units
    assert set(small_units) == {ProductDocument.Meta.table_name, CategoryListingItem.Meta.table_name}


@pytest.mark.aws_engine(reason="moto reports one capacity unit per write, whatever the item's size")
def test_write_units_are_counted_per_kilobyte_in_the_table_and_its_owner_index(dynamodb, redis_clean):
    bulk_categories(20, 150)
    project("category", 0)
    items = [item for item in CategoryTreeDocument.scan() if not item.deleted]
    kilobytes = sum(item_bytes(item) for item in items) / 1024
    units = write_units_per_projection("category", [0])[CategoryTreeDocument.Meta.table_name]
    assert len(items) > 2 and 2 * kilobytes <= units <= 2 * (kilobytes + len(items))
