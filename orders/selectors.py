"""Reads of orders: always of one customer's own, so that no view can leak another's."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .models import Order, OrderLine


def order_list(*, user_id: int) -> QuerySet[Order]:
    """The customer's orders, newest first, with their lines (two queries a page)."""
    return Order.objects.filter(user_id=user_id).prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("sku"))
    ).order_by("-id")


def order_get(*, user_id: int, order_id: int) -> Order | None:
    return order_list(user_id=user_id).filter(pk=order_id).first()


def order_get_by_key(*, user_id: int, idempotency_key: str) -> Order | None:
    return order_list(user_id=user_id).filter(idempotency_key=idempotency_key).first()
