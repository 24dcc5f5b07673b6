"""Reads from the catalog (the authoritative ORM path)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict, cast

from django.contrib.postgres.aggregates import StringAgg
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum, TextField, Value
from django.db.models.functions import Cast, Coalesce, Concat

from .models import SEARCH_CONFIG, Category, Price, Product, StockLevel, Warehouse

if TYPE_CHECKING:  # the type checker's view of annotated rows; nothing at run time
    from django_stubs_ext import WithAnnotations


def product_aggregate_queryset() -> QuerySet[Product]:
    """A product with everything its documents need, in three queries."""
    return Product.objects.select_related("category").prefetch_related(
        Prefetch("prices", queryset=Price.objects.order_by("currency")),
        Prefetch("stock_levels", queryset=StockLevel.objects.select_related("warehouse").order_by("warehouse__code")),
    )


def product_get_aggregate(*, product_id: int) -> Product | None:
    return product_aggregate_queryset().filter(pk=product_id).first()


def products_get_aggregates(*, product_ids: list[int]) -> list[Product]:
    """Several products with everything their documents need, in the same three queries as one."""
    return list(product_aggregate_queryset().filter(pk__in=product_ids))


def category_paths(*, category_ids: set[int]) -> dict[int, list[Category]]:
    """Each category's path, root first, with every ancestor of them all read in one query."""
    found = {
        category.pk: category
        for category in Category.objects.raw(
            "WITH RECURSIVE up AS ("
            " SELECT * FROM catalog_category WHERE id = ANY(%s)"
            " UNION SELECT c.* FROM catalog_category c JOIN up ON c.id = up.parent_id"
            ") SELECT * FROM up",
            [sorted(category_ids)],
        )
    }
    paths: dict[int, list[Category]] = {}
    for category_id in category_ids:
        path: list[Category] = []
        current = found.get(category_id)
        while current is not None and current not in path:
            path.insert(0, current)
            current = found.get(current.parent_id) if current.parent_id is not None else None
        paths[category_id] = path
    return paths


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


class _CategoryCounts(TypedDict):
    product_count: int
    total_count: int


def products_per_category_rolled_up() -> list[WithAnnotations[Category, _CategoryCounts]]:
    """Every category with its own products (``product_count``) and, in ``total_count``, those of
    the categories below it too; most first. One query: categories are few, the tree is added up
    here (the database refuses cycles)."""
    categories = cast(
        "list[WithAnnotations[Category, _CategoryCounts]]", list(products_per_category().select_related("parent"))
    )
    children: dict[int | None, list[WithAnnotations[Category, _CategoryCounts]]] = {}
    for category in categories:
        children.setdefault(category.parent_id, []).append(category)

    def total(category: WithAnnotations[Category, _CategoryCounts]) -> int:
        category.total_count = category.product_count + sum(total(child) for child in children.get(category.pk, []))
        return category.total_count

    for root in children.get(None, []):
        total(root)
    return sorted(categories, key=lambda category: (-category.total_count, category.slug))


@dataclass(frozen=True)
class CatalogTotals:
    products: int
    active_products: int
    categories: int
    warehouses: int
    units_in_stock: int
    low_stock_products: int


def catalog_totals(*, threshold: int) -> CatalogTotals:
    """The report's headline numbers; low stock counts every active product at or below the
    threshold, not only the ones the report lists."""
    products = Product.objects.aggregate(total=Count("id"), active=Count("id", filter=Q(is_active=True)))
    return CatalogTotals(
        products=products["total"],
        active_products=products["active"],
        categories=Category.objects.count(),
        warehouses=Warehouse.objects.count(),
        units_in_stock=StockLevel.objects.aggregate(units=Coalesce(Sum("quantity"), 0))["units"],
        low_stock_products=(
            Product.objects.filter(is_active=True)
            .annotate(total_stock=Coalesce(Sum("stock_levels__quantity"), 0))
            .filter(total_stock__lte=threshold)
            .count()
        ),
    )


@dataclass(frozen=True)
class ProductSearch:
    """A search of the catalog, normalized: equal searches are equal values. ``currency`` qualifies
    the price bounds and the price orders only (None when neither is used)."""

    text: str = ""
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    currency: str | None = None
    in_stock: bool | None = None
    sort: str = "name"


SEARCH_SORTS = ("relevance", "name", "price_asc", "price_desc", "newest")


def category_subtree_ids(*, slug: str) -> list[int]:
    """The category ``slug`` and every category below it (none when there is no such slug)."""
    return [
        category.pk
        for category in Category.objects.raw(
            "WITH RECURSIVE down AS ("
            " SELECT id FROM catalog_category WHERE slug = %s"
            " UNION SELECT c.id FROM catalog_category c JOIN down ON c.parent_id = down.id"
            ") SELECT id FROM down",
            [slug],
        )
    ]


def products_search(*, search: ProductSearch, limit: int, timeout_ms: int) -> list[str]:
    """The SKUs of the active products matching ``search``, in its order, at most ``limit``: Postgres
    full-text search over the products' search vector (GIN index), with the filters as ``EXISTS``
    and price subqueries. The query is cancelled after ``timeout_ms`` (``SET LOCAL``: this
    transaction only), so that no search holds a connection for long."""
    products = Product.objects.filter(is_active=True)
    order: list = []
    if search.text:
        query = SearchQuery(search.text, search_type="websearch", config=SEARCH_CONFIG)
        products = products.filter(search_vector=query)
        if search.sort == "relevance":
            products = products.annotate(rank=SearchRank(F("search_vector"), query, cover_density=True))
            order = [F("rank").desc()]
    if search.category is not None:
        products = products.filter(category_id__in=category_subtree_ids(slug=search.category))
    if search.currency is not None:
        amount = Price.objects.filter(product=OuterRef("pk"), currency=search.currency).values("amount")[:1]
        products = products.annotate(price=Subquery(amount))
        if search.min_price is not None:
            products = products.filter(price__gte=search.min_price)
        if search.max_price is not None:
            products = products.filter(price__lte=search.max_price)
        if search.sort in ("price_asc", "price_desc"):
            price = F("price")
            order = [price.asc(nulls_last=True) if search.sort == "price_asc" else price.desc(nulls_last=True)]
    if search.in_stock is not None:
        stocked = Exists(StockLevel.objects.filter(product=OuterRef("pk"), quantity__gt=0))
        products = products.filter(stocked if search.in_stock else ~stocked)
    if search.sort == "name":
        order = [F("name").asc()]
    elif search.sort == "newest":
        order = [F("created_at").desc()]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
        return list(products.order_by(*order, "sku").values_list("sku", flat=True)[:limit])


PRODUCT_EXPORT_HEADER = ("sku", "name", "category", "active", "version", "updated_at", "prices", "stock")


def products_export_rows(*, products: QuerySet[Product]) -> QuerySet[Product, tuple]:
    """One row per product, in ``PRODUCT_EXPORT_HEADER``'s order: its prices ("EUR 9.99 USD 10.50")
    and total stock as subqueries, so that the rows stream from one server-side cursor."""
    prices = (
        Price.objects.filter(product=OuterRef("pk")).order_by().values("product")
        .annotate(listed=StringAgg(
            Concat("currency", Value(" "), Cast("amount", TextField()), output_field=TextField()), " ",
            order_by="currency",
        ))
        .values("listed")
    )
    stock = (
        StockLevel.objects.filter(product=OuterRef("pk")).order_by().values("product")
        .annotate(total=Sum("quantity")).values("total")
    )
    return (
        products.order_by("pk")
        .annotate(
            price_list=Coalesce(Subquery(prices), Value(""), output_field=TextField()),
            stock=Coalesce(Subquery(stock), 0),
        )
        .values_list("sku", "name", "category__slug", "is_active", "version", "updated_at", "price_list", "stock")
    )

