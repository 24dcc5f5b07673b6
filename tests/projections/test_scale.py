"""The data model at size: no item grows with the catalog, and the answers stay the same."""

from __future__ import annotations

import orjson
import pytest
from django.utils import timezone

from catalog.models import Category, OutboxEvent
from projections import cache_keys, documents
from projections.drift import check
from projections.projector import project, put_document
from projections.registry import TREE_CACHE_NAME, stored_category_tree
from projections.relay import drain
from projections.tables import CategoryTreeDocument

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
