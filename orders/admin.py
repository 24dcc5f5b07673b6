"""Orders in the admin: read-only (checkout writes them, once), and the orders report (orders per
day; demand: products most often in carts against their stock).

The report lives under the order admin's URLs (``admin:orders_report``), as the catalog's does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from .models import Order, OrderAllocation, OrderLine
from .selectors import cart_demand, orders_per_day

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _LineCount(TypedDict):
    line_count: int


REPORT_DAYS = 30
DEMAND_LIMIT = 50


class ReadOnlyMixin:
    """Orders are records of what was sold: the admin shows them and never changes them."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class OrderLineInline(ReadOnlyMixin, admin.TabularInline):
    model = OrderLine
    fields = readonly_fields = ("sku", "name", "quantity", "unit_price", "shipped_from")
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderLine]:
        allocations = OrderAllocation.objects.select_related("warehouse").order_by("warehouse__code")
        return super().get_queryset(request).prefetch_related(Prefetch("allocations", queryset=allocations))

    @admin.display(description="shipped from")
    def shipped_from(self, line: OrderLine) -> str:
        """The warehouses the units were taken from, e.g. "AMS1 × 1, BER1 × 3"."""
        return ", ".join(f"{each.warehouse.code} × {each.quantity}" for each in line.allocations.all())


@admin.register(Order)
class OrderAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "user", "created_at", "line_count", "total", "currency"]
    list_select_related = ["user"]
    list_filter = ["created_at", "currency"]
    search_fields = ["=id", "user__username", "=idempotency_key", "lines__sku"]
    ordering = ["-id"]
    date_hierarchy = "created_at"
    readonly_fields = ["user", "idempotency_key", "currency", "total", "note", "cart_version", "created_at"]
    inlines = [OrderLineInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return super().get_queryset(request).annotate(line_count=Count("lines"))

    @admin.display(description="lines", ordering="line_count")
    def line_count(self, order: WithAnnotations[Order, _LineCount]) -> int:
        return order.line_count

    def get_urls(self) -> list[URLPattern]:
        report = path("report/", self.admin_site.admin_view(self.report_view), name="orders_report")
        return [report, *super().get_urls()]

    def report_view(self, request: HttpRequest) -> TemplateResponse:
        """What sold, day by day, and what customers are about to buy against what is in stock;
        for those who may view orders."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Orders report",
            "opts": self.model._meta,
            "days": REPORT_DAYS,
            "orders_per_day": orders_per_day(days=REPORT_DAYS),
            "demand_limit": DEMAND_LIMIT,
            "demand": cart_demand(limit=DEMAND_LIMIT),
        }
        return TemplateResponse(request, "admin/orders/report.html", context)

