"""The products' search vector is kept by Postgres (a stored generated column): every write path
keeps it current, and it is no data of the product, so it makes no version or outbox row."""

from __future__ import annotations

import pytest
from django.db import connection

from catalog.models import OutboxEvent, Product
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
