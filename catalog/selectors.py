"""Reads from the catalog (the authoritative ORM path)."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet, Sum
from django.db.models.functions import Coalesce

from .models import Category, Price, Product, StockLevel, Warehouse


def product_aggregate_queryset() -> QuerySet[Product]:
    """A product with everything its documents need, in three queries."""
    return Product.objects.select_related("category").prefetch_related(
        Prefetch("prices", queryset=Price.objects.order_by("currency")),
        Prefetch("stock_levels", queryset=StockLevel.objects.select_related("warehouse").order_by("warehouse__code")),
    )


def product_get_aggregate(*, product_id: int) -> Product | None:
    return product_aggregate_queryset().filter(pk=product_id).first()


def category_path(*, category: Category) -> list[Category]:
    """Root first. Categories are few; each step is a cached FK lookup at most."""
    path = [category]
    seen = {category.pk}
    while (parent := path[0].parent) is not None and parent.pk not in seen:
        seen.add(parent.pk)
        path.insert(0, parent)
    return path


def product_stock_by_warehouse(*, product: Product) -> dict[str, int]:
    """Quantity per warehouse code, for staff; the public documents only show a band."""
    levels = StockLevel.objects.filter(product=product).order_by("warehouse__code")
    return dict(levels.values_list("warehouse__code", "quantity"))


def stock_by_warehouse() -> QuerySet[Warehouse]:
    return Warehouse.objects.annotate(
        total_quantity=Sum("stock_levels__quantity"), product_count=Count("stock_levels")
    ).order_by("code")


def low_stock_products(*, threshold: int, limit: int = 100) -> QuerySet[Product]:
    return (
        Product.objects.filter(is_active=True)
        .annotate(total_stock=Coalesce(Sum("stock_levels__quantity"), 0))
        .filter(total_stock__lte=threshold)
        .select_related("category")
        .order_by("total_stock", "sku")[:limit]
    )


def products_per_category() -> QuerySet[Category]:
    return Category.objects.annotate(product_count=Count("products")).order_by("-product_count", "slug")
