"""Writes to the catalog. Each service is one transaction; the triggers capture the change."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from .models import MAX_STOCK_QUANTITY, Category, Price, Product, StockLevel, Warehouse


def _validated(instance: Any) -> Any:
    instance.full_clean()
    instance.save()
    return instance


@transaction.atomic
def product_create(
    *,
    sku: str,
    name: str,
    category: Category,
    description: str = "",
    attributes: dict[str, Any] | None = None,
    is_active: bool = True,
) -> Product:
    return _validated(
        Product(
            sku=sku, name=name, category=category, description=description,
            attributes=attributes or {}, is_active=is_active,
        )
    )


PRODUCT_UPDATABLE_FIELDS = {"name", "description", "category", "attributes", "is_active"}


@transaction.atomic
def product_update(*, product: Product, **changes: Any) -> Product:
    unknown = set(changes) - PRODUCT_UPDATABLE_FIELDS
    if unknown:
        raise ValidationError({name: "This field cannot be updated." for name in sorted(unknown)})
    product = Product.objects.select_for_update().get(pk=product.pk)
    for name, value in changes.items():
        setattr(product, name, value)
    return _validated(product)


@transaction.atomic
def price_set(*, product: Product, currency: str, amount: Decimal) -> Price:
    """Set the one current price of ``product`` in ``currency`` (insert or replace).

    A replacement writes the amount alone: the row was found by its product and currency and is
    locked, so the checks that would query for them (the product exists, no other row has both,
    the check constraints) have nothing to learn; the fields' own validators say what the
    constraints say. Two statements, where a full clean and save made ten: prices are the
    catalog's most frequent write.

    A first price in a currency locks the product's row first (as the price trigger would), then
    looks again: a writer that inserted it meanwhile has committed, and this one replaces its
    amount. Without the lock, two writers of one new currency both inserted, and the later one
    failed on the one-per-currency constraint."""
    price = Price.objects.select_for_update().filter(product=product, currency=currency).first()
    if price is None:
        list(Product.objects.select_for_update().filter(pk=product.pk).values_list("pk", flat=True))
        price = Price.objects.select_for_update().filter(product=product, currency=currency).first()
    if price is None:
        return _validated(Price(product=product, currency=currency, amount=amount))
    price.amount = amount
    price.full_clean(exclude=["product"], validate_unique=False, validate_constraints=False)
    price.save(update_fields=["amount"])
    return price


class StockOutOfRange(Exception):
    """The adjustment is well formed, but the stock it meets cannot take it (below zero or above
    ``MAX_STOCK_QUANTITY``); nothing was written."""


@transaction.atomic
def stock_adjust(*, product: Product, warehouse: Warehouse, delta: int) -> StockLevel:
    """Add ``delta`` (may be negative) to the stock; refused when it would go below zero or above
    ``MAX_STOCK_QUANTITY``. A zero delta writes nothing (no new version, no projection)."""
    if delta == 0:
        existing = StockLevel.objects.filter(product=product, warehouse=warehouse).first()
        return existing or StockLevel(product=product, warehouse=warehouse, quantity=0)
    level, _ = StockLevel.objects.select_for_update().get_or_create(product=product, warehouse=warehouse)
    if level.quantity + delta < 0:
        raise StockOutOfRange(f"Stock would go below zero (have {level.quantity}, delta {delta}).")
    if level.quantity + delta > MAX_STOCK_QUANTITY:
        raise StockOutOfRange(f"Stock would exceed {MAX_STOCK_QUANTITY:,} (have {level.quantity}).")
    StockLevel.objects.filter(pk=level.pk).update(quantity=F("quantity") + delta)
    level.refresh_from_db()
    return level



class InsufficientStock(Exception):
    """Raised by ``stock_allocate`` when a product lacks stock; nothing was written."""

    def __init__(self, available: dict[str, int]) -> None:
        self.available = available  # SKU -> what there is, for each product short of stock
        super().__init__("Not enough stock: " + ", ".join(f"{sku} ({n} left)" for sku, n in sorted(available.items())))


@dataclass(frozen=True)
class Allocation:
    product_id: int
    warehouse_id: int
    quantity: int


@transaction.atomic
def stock_allocate(*, quantities: dict[Product, int]) -> list[Allocation]:
    """Take ``quantities`` out of stock across warehouses, all or nothing; the fullest warehouse
    first, so that an order ships from as few places as possible.

    Every caller locks the stock rows in one order (product, warehouse): concurrent allocations
    queue instead of deadlocking, and each decides on quantities nobody can change before it
    commits. One UPDATE decrements every row it takes from, and the non-negative constraint has
    the last word on what it writes.
    """
    levels = list(
        StockLevel.objects.select_for_update()
        .filter(product__in=quantities, quantity__gt=0)
        .order_by("product_id", "warehouse_id")
    )
    available = {product: [level for level in levels if level.product_id == product.pk] for product in quantities}
    short = {
        product.sku: total
        for product, wanted in quantities.items()
        if (total := sum(level.quantity for level in available[product])) < wanted
    }
    if short:
        raise InsufficientStock(short)
    allocations: list[Allocation] = []
    taken: list[StockLevel] = []
    for product, wanted in quantities.items():
        for level in sorted(available[product], key=lambda level: (-level.quantity, level.warehouse_id)):
            take = min(wanted, level.quantity)
            if not take:
                break
            wanted -= take
            allocations.append(Allocation(product.pk, level.warehouse_id, take))
            level.quantity = F("quantity") - take
            taken.append(level)
    StockLevel.objects.bulk_update(taken, ["quantity"])
    return allocations
