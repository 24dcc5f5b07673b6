"""Operator screens for the catalog, and the internal stock report.

Admin saves go through ``Model.save()``; the triggers capture them like any other write, and
``Product.version`` is never part of a form because the triggers own it. Admins that annotate
aggregates repeat the model's ordering: Django drops ``Meta.ordering`` from GROUP BY queries, and
autocomplete pages would come out in no stable order.

The report lives under the product admin's URLs (``admin:catalog_report``) because the default
site is not ours to subclass; the index links to it through ``index_template``, since an app's
``admin/index.html`` cannot shadow the admin app's own, which comes first in INSTALLED_APPS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, cast

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from .models import Category, Price, Product, StockLevel, Warehouse
from .selectors import catalog_totals, low_stock_products, products_per_category_rolled_up, stock_by_warehouse

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


# What the admins' querysets annotate, for the type checker.
class _ProductCount(TypedDict):
    product_count: int


class _TotalStock(TypedDict):
    total_stock: int


class _WarehouseTotals(TypedDict):
    product_count: int
    total_quantity: int


LOW_STOCK_REPORT_LIMIT = 100
LOW_STOCK_CHART_LIMIT = 20

admin.site.index_template = "admin/catalog/index.html"


class StockFilter(admin.SimpleListFilter):
    """Total stock across warehouses, with the same threshold as the low-stock report."""

    title = "stock"
    parameter_name = "stock"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("out", "Out of stock"),
            ("low", f"Low (≤ {settings.LOW_STOCK_THRESHOLD})"),
            ("available", f"Above {settings.LOW_STOCK_THRESHOLD}"),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[WithAnnotations[Product, _TotalStock]]
    ) -> QuerySet[WithAnnotations[Product, _TotalStock]]:
        threshold = settings.LOW_STOCK_THRESHOLD
        match self.value():
            case "out":
                return queryset.filter(total_stock=0)
            case "low":
                return queryset.filter(total_stock__lte=threshold)
            case "available":
                return queryset.filter(total_stock__gt=threshold)
        return queryset


class ReadOnlyModeAware:
    """No add, change or delete while read-only mode is on (``request.read_only``, set by the
    project's middleware for admin pages): the forms show read-only and saves are refused."""

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return not getattr(request, "read_only", False) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return not getattr(request, "read_only", False) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return not getattr(request, "read_only", False) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class PriceInline(ReadOnlyModeAware, admin.TabularInline):
    model = Price
    extra = 0


class StockLevelInline(ReadOnlyModeAware, admin.TabularInline):
    model = StockLevel
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[StockLevel]:
        """Each row is labelled "<sku> at <warehouse>": one join, not two queries per row."""
        return super().get_queryset(request).select_related("product", "warehouse")


@admin.register(Category)
class CategoryAdmin(ReadOnlyModeAware, admin.ModelAdmin):
    list_display = ["name", "slug", "parent", "product_count"]
    ordering = ["slug"]
    list_select_related = ["parent"]
    list_filter = [("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "slug"]
    autocomplete_fields = ["parent"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).annotate(product_count=Count("products"))

    @admin.display(description="products", ordering="product_count")
    def product_count(self, category: WithAnnotations[Category, _ProductCount]) -> int:
        return category.product_count


@admin.register(Product)
class ProductAdmin(ReadOnlyModeAware, admin.ModelAdmin):
    list_display = ["sku", "name", "category", "is_active", "total_stock", "version", "updated_at"]
    ordering = ["sku"]
    list_select_related = ["category"]
    list_filter = ["is_active", StockFilter, "category"]
    search_fields = ["sku", "name"]
    autocomplete_fields = ["category"]
    readonly_fields = ["version", "created_at", "updated_at"]
    inlines = [PriceInline, StockLevelInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).annotate(total_stock=Coalesce(Sum("stock_levels__quantity"), 0))

    @admin.display(description="total stock", ordering="total_stock")
    def total_stock(self, product: WithAnnotations[Product, _TotalStock]) -> int:
        return product.total_stock

    def get_urls(self) -> list[URLPattern]:
        report = path("report/", self.admin_site.admin_view(self.report_view), name="catalog_report")
        return [report, *super().get_urls()]

    def report_view(self, request: HttpRequest) -> TemplateResponse:
        """Where stock is, what is about to run out, and how the catalog is spread."""
        threshold = settings.LOW_STOCK_THRESHOLD
        warehouses = cast("list[WithAnnotations[Warehouse, _WarehouseTotals]]", list(stock_by_warehouse()))
        low_stock = cast(
            "list[WithAnnotations[Product, _TotalStock]]",
            list(low_stock_products(threshold=threshold, limit=LOW_STOCK_REPORT_LIMIT)),
        )
        categories = products_per_category_rolled_up()
        roots = [category for category in categories if category.parent_id is None]
        context = {
            **self.admin_site.each_context(request),
            "title": "Stock and catalog report",
            "opts": self.model._meta,
            "totals": catalog_totals(threshold=threshold),
            "warehouses": warehouses,
            "threshold": threshold,
            "low_stock": low_stock,
            "low_stock_limit": LOW_STOCK_REPORT_LIMIT,
            "categories": categories,
            # Bar charts: (label, value) rows and the longest bar's value.
            "warehouse_bars": _bars([(w.code, w.total_quantity or 0) for w in warehouses]),
            "low_stock_bars": _bars(
                [(p.sku, p.total_stock) for p in low_stock[:LOW_STOCK_CHART_LIMIT]], at_least=threshold
            ),
            "category_bars": _bars([(c.name, c.total_count) for c in roots]),
        }
        return TemplateResponse(request, "admin/catalog/report.html", context)


def _bars(rows: list[tuple[str, int]], at_least: int = 0) -> dict[str, object]:
    """What ``charts/bars.html`` draws: the rows, and the value of a full-width bar."""
    return {"rows": rows, "max": max([at_least, 1, *(value for _, value in rows)])}


@admin.register(Price)
class PriceAdmin(ReadOnlyModeAware, admin.ModelAdmin):
    list_display = ["product", "currency", "amount"]
    list_select_related = ["product"]
    list_filter = ["currency"]
    search_fields = ["product__sku", "product__name"]
    autocomplete_fields = ["product"]


@admin.register(Warehouse)
class WarehouseAdmin(ReadOnlyModeAware, admin.ModelAdmin):
    list_display = ["code", "name", "product_count", "total_quantity"]
    ordering = ["code"]
    search_fields = ["code", "name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Warehouse]:
        return super().get_queryset(request).annotate(
            product_count=Count("stock_levels"), total_quantity=Coalesce(Sum("stock_levels__quantity"), 0)
        )

    @admin.display(description="products", ordering="product_count")
    def product_count(self, warehouse: WithAnnotations[Warehouse, _WarehouseTotals]) -> int:
        return warehouse.product_count

    @admin.display(description="total quantity", ordering="total_quantity")
    def total_quantity(self, warehouse: WithAnnotations[Warehouse, _WarehouseTotals]) -> int:
        return warehouse.total_quantity


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyModeAware, admin.ModelAdmin):
    list_display = ["product", "warehouse", "quantity"]
    list_select_related = ["product", "warehouse"]
    list_filter = ["warehouse"]
    search_fields = ["product__sku", "product__name", "warehouse__code"]
    autocomplete_fields = ["product", "warehouse"]
