"""How orders are projected: the document a customer reads, the snapshot it is built from, and the
``"order"`` entry that orders register with the projection registry (``OrdersConfig.ready``).

Projections know no order: the relay, projector, backfill and drift check take orders up through
this entry, as the write-back consumer takes carts up through theirs. The order's keys and table
(``projections.registry.order_key``, ``projections.tables.CustomerOrder``) stay with the other
projected views.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Prefetch

from projections.registry import (
    GONE,
    Aggregate,
    Item,
    Projection,
    Snapshot,
    customer_of,
    ids_of,
    order_cache_name,
    order_id_of,
    order_key,
    order_owner,
    order_owner_id,
    orders_listing,
)
from projections.tables import CustomerOrder

from .models import Order, OrderLine


def order_document(order: Order) -> dict[str, Any]:
    """An order as its customer reads it (lines prefetched, by SKU); also checkout's answer."""
    return {
        "id": order.pk,
        "created_at": order.created_at.isoformat(),
        "currency": order.currency,
        "total": f"{order.total:.2f}",
        "note": order.note,
        "lines": [
            {"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": f"{line.unit_price:.2f}"}
            for line in order.lines.all()
        ],
        "version": order.version,
    }


def load_orders(order_ids: list[int]) -> dict[int, Snapshot]:
    """Orders with their lines, two queries. An order's version is the clock of its last write in
    microseconds (a hybrid logical clock), so it also tells when that write committed."""
    lines = Prefetch("lines", queryset=OrderLine.objects.order_by("sku"))
    snapshots = dict.fromkeys(order_ids, GONE)
    for order in Order.objects.filter(pk__in=order_ids).prefetch_related(lines):
        committed_at = datetime.fromtimestamp(order.version / 1_000_000, UTC).isoformat()
        snapshots[order.pk] = Snapshot(state=order, version=order.version, committed_at=committed_at)
    return snapshots


def build_order(snapshot: Snapshot, projected_at: datetime) -> list[Item]:
    order = snapshot.state
    if order is None:
        return []
    return [Item(key=order_key(order.user_id, order.pk), body=order_document(order))]


ORDER_AGGREGATE = Aggregate(
    name="order",
    load_many=load_orders,
    owner=order_owner,
    owner_id=order_owner_id,
    ids=ids_of(Order),
    projections=(
        Projection(
            CustomerOrder, build_order,
            cache_name=lambda key: order_cache_name(customer_of(key), order_id_of(key["sk"])),
            listing=lambda key: orders_listing(customer_of(key)),
        ),
    ),
)
