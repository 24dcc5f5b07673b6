"""Reads of orders: always of one customer's own, so that no view can leak another's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Prefetch, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from carts.models import CartCopy
from catalog.models import Product

from .models import Order, OrderLine


def order_list(*, user_id: int) -> QuerySet[Order]:
    """The customer's orders, newest first, with their lines (two queries a page)."""
    return Order.objects.filter(user_id=user_id).prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("sku"))
    ).order_by("-id")


def order_get_by_key(*, user_id: int, idempotency_key: str) -> Order | None:
    return order_list(user_id=user_id).filter(idempotency_key=idempotency_key).first()


@dataclass(frozen=True)
class OrderDay:
    day: date
    orders: int
    units: int
    revenue: dict[str, Decimal]  # currency -> total


def orders_per_day(*, days: int) -> list[OrderDay]:
    """Orders, units and revenue per day (UTC) of the last ``days`` days, newest first; days
    without orders are left out. Two grouped queries, whatever the number of orders."""
    since = timezone.now() - timedelta(days=days)
    recent = Order.objects.filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
    revenue: dict[date, dict[str, Decimal]] = {}
    counts: dict[date, int] = {}
    for row in recent.values("day", "currency").annotate(orders=Count("id"), total=Sum("total")).order_by():
        revenue.setdefault(row["day"], {})[row["currency"]] = row["total"]
        counts[row["day"]] = counts.get(row["day"], 0) + row["orders"]
    units = dict(
        OrderLine.objects.filter(order__created_at__gte=since)
        .annotate(day=TruncDate("order__created_at")).values("day")
        .annotate(units=Sum("quantity")).order_by().values_list("day", "units")
    )
    return [OrderDay(day, counts[day], units.get(day, 0), revenue[day]) for day in sorted(counts, reverse=True)]


@dataclass(frozen=True)
class Demand:
    sku: str
    name: str
    carts: int  # active carts holding the product
    units: int  # units of it in those carts
    stock: int  # units in all warehouses now

    @property
    def short(self) -> int:
        """Units wanted in carts beyond the stock: what checkout would refuse if all came now."""
        return max(0, self.units - self.stock)


_CART_DEMAND_SQL = """
    SELECT line.key, count(*), sum(line.value::bigint)
    FROM {carts} AS cart CROSS JOIN LATERAL jsonb_each_text(cart.lines) AS line
    WHERE cart.status = %s AND (cart.expires_at IS NULL OR cart.expires_at > now())
    GROUP BY line.key
    ORDER BY count(*) DESC, sum(line.value::bigint) DESC, line.key
    LIMIT %s
"""


def cart_demand(*, limit: int) -> list[Demand]:
    """The products most often in customers' carts, against their stock: from the carts' Postgres
    copy (kept by the write-back consumer), carts that are active and not past their idle time."""
    with connection.cursor() as cursor:
        cursor.execute(_CART_DEMAND_SQL.format(carts=CartCopy._meta.db_table), [CartCopy.Status.ACTIVE, limit])
        rows = cursor.fetchall()
    products = {
        product.sku: product
        for product in Product.objects.filter(sku__in=[sku for sku, _, _ in rows])
        .annotate(total_stock=Coalesce(Sum("stock_levels__quantity"), 0))
        .order_by()
    }
    return [
        Demand(sku, products[sku].name if sku in products else "(no such product)", carts, int(units),
               products[sku].total_stock if sku in products else 0)
        for sku, carts, units in rows
    ]


ORDER_EXPORT_HEADER = (
    "order", "created_at", "customer", "currency", "order_total", "sku", "name", "quantity", "unit_price",
)


def order_lines_export_rows(*, orders: QuerySet[Order]) -> QuerySet[OrderLine, tuple]:
    """For staff audits, every customer's: one row per line of ``orders``, in
    ``ORDER_EXPORT_HEADER``'s order, oldest order first. In the order of the lines' unique index
    (order, product), so that Postgres streams them as it reads them, with no sort first."""
    return (
        OrderLine.objects.filter(order__in=orders).order_by("order_id", "product_id")
        .values_list(
            "order_id", "order__created_at", "order__user_id", "order__currency", "order__total",
            "sku", "name", "quantity", "unit_price",
        )
    )

