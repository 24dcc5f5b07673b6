"""The products' search vector is kept by Postgres (a stored generated column): every write path
keeps it current, and it is no data of the product, so it makes no version or outbox row. The
search reads it through its GIN index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Category, OutboxEvent, Product
from catalog.selectors import ProductSearch, products_search
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _state(product: Product) -> tuple[int, int]:
    """The product's version and its outbox rows."""
    version = Product.objects.values_list("version", flat=True).get(pk=product.pk)
    return version, OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=product.pk).count()


def _vector(product: Product) -> str:
    return str(Product.objects.values_list("search_vector", flat=True).get(pk=product.pk))


def test_an_unchanged_save_and_update_bump_nothing() -> None:
    product = ProductFactory(name="Claw hammer")
    before = _state(product)
    product.save()
    Product.objects.filter(pk=product.pk).update(name="Claw hammer")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_product SET description = description WHERE id = %s", [product.pk])
    assert _state(product) == before


def test_a_change_makes_one_version_and_one_outbox_row_and_a_new_vector() -> None:
    product = ProductFactory(name="Claw hammer")
    version, rows = _state(product)
    assert "'hammer':" in _vector(product)
    Product.objects.filter(pk=product.pk).update(name="Sledge mallet")
    new_version, new_rows = _state(product)
    assert new_version > version and new_rows == rows + 1
    assert "'mallet':" in _vector(product) and "hammer" not in _vector(product)


def test_raw_sql_writes_keep_the_vector_current() -> None:
    product = ProductFactory(name="Claw hammer", description="")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_product SET description = 'forged steel head' WHERE id = %s", [product.pk])
    assert "'forg':" in _vector(product) and "'steel':" in _vector(product)


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.parametrize("sort", ["name", "relevance"])
def test_the_search_reads_the_gin_index_of_the_search_vector(sort: str) -> None:
    """Among 5,000 products, one matches: the plan of the query the search selector runs reads the
    ``product_search`` GIN index, and no product is read by a sequential scan. (Before the vacuum,
    with the new rows still in the index's pending list, Postgres plans a sequential scan.)"""
    bulk = Category.objects.create(slug="bulk", name="Bulk")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO catalog_product (sku, name, description, category_id, attributes)"
            " SELECT 'BULK-' || g, 'Widget ' || g, 'A plain part', %s, '{}' FROM generate_series(1, 5000) g",
            [bulk.pk],
        )
    ProductFactory(sku="HAM-1", name="Claw hammer", category=bulk)
    with connection.cursor() as cursor:
        # As autovacuum leaves it: statistics, and the GIN index's pending list merged into it.
        cursor.execute("VACUUM ANALYZE catalog_product")
    with CaptureQueriesContext(connection) as captured:
        assert products_search(search=ProductSearch(text="hammer", sort=sort), limit=20, timeout_ms=5000) == ["HAM-1"]
    [sql] = [query["sql"] for query in captured.captured_queries if "@@" in query["sql"]]

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        [[plan]] = cursor.fetchall()
    nodes = list(_plan_nodes(plan[0]["Plan"]))  # JSON, decoded by the driver
    assert any(node.get("Index Name") == "product_search" for node in nodes), plan
    assert not any(
        node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "catalog_product" for node in nodes
    ), plan
