"""Orders: written once by checkout in Postgres and never changed by the API; projected to the
customer's order history in DynamoDB (``projections.registry``).

The ``Idempotency-Key`` the customer sent is kept on the order row, unique per customer: whatever
happens to the key's record in DynamoDB, a second order for one key cannot commit, and a retry
after a crash finds the order the first attempt committed.

Change capture as in the catalog: triggers give an order a new version (a hybrid logical clock) on
every change of its row or its lines, by any write path, and write an outbox row in the same
transaction. Allocations are not part of the customer's view of an order: they change no version.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from catalog.models import (
    Product,
    Warehouse,
    child_triggers,
    root_triggers,
)

IDEMPOTENCY_KEY_MAX_LENGTH = 255
NOTE_MAX_LENGTH = 500


class Order(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="orders", on_delete=models.PROTECT)
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True, default="")
    cart_version = models.BigIntegerField(help_text="The version of the cart the order was placed from.")
    created_at = models.DateTimeField(db_default=Now())
    version = models.BigIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"], name="order_user_newest"), models.Index(fields=["created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="order_one_per_idempotency_key"),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
        ]
        triggers = root_triggers("order", "orders_order")

    def __str__(self) -> str:
        return f"order {self.pk}"


class OrderLine(models.Model):
    """What was bought, as it was then: SKU, name and price are copied, so that later catalog
    changes do not rewrite past orders."""

    order = models.ForeignKey(Order, related_name="lines", on_delete=models.CASCADE)
    product = models.ForeignKey(Product, related_name="order_lines", on_delete=models.PROTECT)
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["order_id", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="order_line_one_per_product"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
        ]
        triggers = child_triggers("order_line_bumps_order", "orders_order", "order_id")

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"


class OrderAllocation(models.Model):
    """Where a line's units were taken from: the warehouses that ship it."""

    line = models.ForeignKey(OrderLine, related_name="allocations", on_delete=models.CASCADE)
    warehouse = models.ForeignKey(Warehouse, related_name="order_allocations", on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["line_id", "warehouse_id"]
        constraints = [
            models.UniqueConstraint(fields=["line", "warehouse"], name="order_allocation_one_per_warehouse"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_allocation_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} from {self.warehouse_id}"
