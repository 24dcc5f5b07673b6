"""seed_demo: the counts it reports are the rows it wrote, and the same seed gives the same data."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db.models import Sum

from catalog.management.commands.seed_demo import CATEGORY_TREE, WAREHOUSES
from catalog.models import Category, Price, Product, StockLevel, Warehouse

pytestmark = pytest.mark.django_db

SUMMARY = re.compile(
    r"seeded (\d+) products, (\d+) categories, (\d+) warehouses, (\d+) prices, (\d+) stock levels in [\d.]+s"
)


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def summary(output: str) -> tuple[int, ...]:
    match = SUMMARY.search(output)
    assert match, output
    return tuple(int(group) for group in match.groups())


def snapshot() -> list[tuple]:
    """Everything seeded per product, keyed by SKU (database ids differ between runs)."""
    return [
        (
            product.sku, product.name, product.description, product.attributes, product.is_active,
            product.category.slug,
            sorted((price.currency, price.amount) for price in product.prices.all()),
            sorted((level.warehouse.code, level.quantity) for level in product.stock_levels.all()),
        )
        for product in Product.objects.select_related("category").prefetch_related(
            "prices", "stock_levels__warehouse"
        )
    ]


def test_counts_match_the_summary_and_the_tree() -> None:
    output = seed("--products", "50")
    leaf_count = sum(len(children) for children in CATEGORY_TREE.values())
    assert summary(output) == (
        50, len(CATEGORY_TREE) + leaf_count, len(WAREHOUSES), Price.objects.count(), StockLevel.objects.count()
    )
    assert Product.objects.count() == 50
    assert Category.objects.filter(parent=None).count() == len(CATEGORY_TREE)
    assert set(Warehouse.objects.values_list("code", flat=True)) == set(WAREHOUSES)
    assert [p.sku for p in Product.objects.order_by("sku")] == [f"SKU-{n:06d}" for n in range(1, 51)]


def test_products_are_realistic() -> None:
    seed("--products", "200")
    assert not Product.objects.filter(category__parent=None).exists(), "products sit in leaf categories"
    assert not Product.objects.exclude(prices__currency="EUR").exists(), "every product has a EUR price"
    assert Price.objects.filter(currency="USD").exists() and Price.objects.filter(currency="GBP").exists()
    assert Price.objects.filter(amount__lte=0).count() == 0
    assert all(p.description and {"brand", "color", "material"} <= set(p.attributes) for p in Product.objects.all())
    totals = dict(Product.objects.annotate(total=Sum("stock_levels__quantity")).values_list("sku", "total"))
    assert None in totals.values(), "some products have no stock rows"
    assert 0 in totals.values(), "some products are out of stock"
    assert any(total and total <= 5 for total in totals.values()), "some products are low on stock"
    assert Product.objects.filter(is_active=False).exists()


def test_same_seed_same_data_and_different_seed_different_data() -> None:
    seed("--products", "50", "--seed", "7")
    first = snapshot()
    Product.objects.all().delete()
    seed("--products", "50", "--seed", "7")
    assert snapshot() == first
    Product.objects.all().delete()
    seed("--products", "50", "--seed", "8")
    other = snapshot()
    assert [row[0] for row in other] == [row[0] for row in first]
    assert [row[1:] for row in other] != [row[1:] for row in first]


def test_if_empty_is_a_no_op_when_products_exist() -> None:
    seed("--products", "30", "--if-empty")
    before = (Product.objects.count(), Price.objects.count(), StockLevel.objects.count(), Category.objects.count())
    output = seed("--products", "30", "--if-empty")
    assert "nothing seeded" in output
    after = (Product.objects.count(), Price.objects.count(), StockLevel.objects.count(), Category.objects.count())
    assert after == before == (30, *before[1:])


def test_second_run_adds_more_after_the_highest_sku() -> None:
    seed("--products", "20")
    first = snapshot()
    output = seed("--products", "20")
    assert summary(output)[:3] == (20, 0, 0), "categories and warehouses are reused"
    assert [p.sku for p in Product.objects.order_by("sku")] == [f"SKU-{n:06d}" for n in range(1, 41)]
    assert snapshot()[:20] == first
