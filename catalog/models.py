"""The authoritative catalog, with its change capture.

Every change to a product aggregate (the product row, its prices, its stock levels, the name or
place of its category, the code of a warehouse holding it) bumps ``Product.version`` in the same
transaction and writes an ``OutboxEvent`` row, by Postgres triggers. Triggers, not signals, so that
``QuerySet.update()``, ``bulk_create`` and raw SQL from other programs are caught too.

Versions are a hybrid logical clock: ``GREATEST(old + 1, now in microseconds)``. Writers to one
product serialize on its row lock, so versions rise in commit order per product, and a product
created after another with the same SKU was deleted starts above that one's final version.
"""

from __future__ import annotations

from decimal import Decimal

import pgtrigger
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

NOW_US = "(extract(epoch from clock_timestamp()) * 1000000)::bigint"
NOTIFY_CHANNEL = "hybridsite_outbox"


def _bump_products(where: str) -> str:
    """SQL that touches the products matched by ``where``; their BEFORE UPDATE trigger bumps them."""
    return f"UPDATE catalog_product SET version = version WHERE {where}; RETURN NULL;"


def _emit(aggregate: str, source: str, version: str) -> str:
    """SQL that writes one outbox row per row of ``source`` and wakes the relay at commit."""
    return (
        f"INSERT INTO catalog_outboxevent (aggregate_type, aggregate_id, version, created_at, status,"
        f" attempts, available_at, last_error)"
        f" SELECT '{aggregate}', id, {version}, clock_timestamp(), 'pending', 0, now(), '' FROM {source};"
        f" PERFORM pg_notify('{NOTIFY_CHANNEL}', '{aggregate}');"
        f" RETURN NULL;"
    )


def _statement_triggers(name: str, insert: str | None, update: str | None, delete: str | None) -> list:
    """One AFTER ... FOR EACH STATEMENT trigger per operation (transition tables allow only one)."""
    triggers = []
    if insert:
        triggers.append(pgtrigger.Trigger(
            name=f"{name}_ins", when=pgtrigger.After, operation=pgtrigger.Insert, level=pgtrigger.Statement,
            referencing=pgtrigger.Referencing(new="new_rows"), func=insert,
        ))
    if update:
        triggers.append(pgtrigger.Trigger(
            name=f"{name}_upd", when=pgtrigger.After, operation=pgtrigger.Update, level=pgtrigger.Statement,
            referencing=pgtrigger.Referencing(old="old_rows", new="new_rows"), func=update,
        ))
    if delete:
        triggers.append(pgtrigger.Trigger(
            name=f"{name}_del", when=pgtrigger.After, operation=pgtrigger.Delete, level=pgtrigger.Statement,
            referencing=pgtrigger.Referencing(old="old_rows"), func=delete,
        ))
    return triggers


def _child_bumps_product(name: str) -> list:
    """Triggers of a table with a ``product_id``: any change to its rows is a change of the product."""
    return _statement_triggers(
        name,
        insert=_bump_products("id IN (SELECT product_id FROM new_rows)"),
        update=_bump_products("id IN (SELECT product_id FROM new_rows UNION SELECT product_id FROM old_rows)"),
        delete=_bump_products("id IN (SELECT product_id FROM old_rows)"),
    )


class Category(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, related_name="children", on_delete=models.PROTECT)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["slug"]
        constraints = [models.CheckConstraint(condition=~Q(parent=models.F("id")), name="category_not_own_parent")]
        triggers = _statement_triggers(
            "category_outbox",
            insert=_emit("category", "new_rows", "0"),
            update=(
                # The product documents carry the category's name and path: renaming or moving a
                # category re-projects the products below it.
                "WITH RECURSIVE tree AS ("
                " SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id"
                "  WHERE (n.name, n.slug, n.parent_id) IS DISTINCT FROM (o.name, o.slug, o.parent_id)"
                " UNION SELECT c.id FROM catalog_category c JOIN tree t ON c.parent_id = t.id)"
                " UPDATE catalog_product SET version = version WHERE category_id IN (SELECT id FROM tree);"
                + _emit("category", "new_rows", "0")
            ),
            delete=_emit("category", "old_rows", "0"),
        )

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField(
        max_length=64, unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "Use letters, digits, '.', '_' and '-'.")],
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    category = models.ForeignKey(Category, related_name="products", on_delete=models.PROTECT)
    attributes = models.JSONField(blank=True, default=dict)
    is_active = models.BooleanField(default=True, db_default=True)
    version = models.BigIntegerField(default=0, db_default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        ordering = ["sku"]
        indexes = [models.Index(fields=["category", "sku"])]
        constraints = [models.CheckConstraint(condition=~Q(sku=""), name="product_sku_not_empty")]
        triggers = [
            pgtrigger.Trigger(
                name="product_version_insert", when=pgtrigger.Before, operation=pgtrigger.Insert,
                func=f"NEW.version := {NOW_US}; NEW.updated_at := clock_timestamp(); RETURN NEW;",
            ),
            pgtrigger.Trigger(
                name="product_version_update", when=pgtrigger.Before, operation=pgtrigger.Update,
                func=(
                    f"NEW.version := GREATEST(OLD.version + 1, {NOW_US});"
                    " NEW.updated_at := clock_timestamp(); RETURN NEW;"
                ),
            ),
            *_statement_triggers(
                "product_outbox",
                insert=_emit("product", "new_rows", "version"),
                update=_emit("product", "new_rows", "version"),
                delete=_emit("product", "old_rows", f"GREATEST(version + 1, {NOW_US})"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class Price(models.Model):
    product = models.ForeignKey(Product, related_name="prices", on_delete=models.CASCADE)
    currency = models.CharField(
        max_length=3, validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO-4217 code such as EUR.")]
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])

    class Meta:
        ordering = ["product_id", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["product", "currency"], name="price_one_per_currency"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="price_amount_not_negative"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="price_currency_iso4217"),
        ]
        triggers = _child_bumps_product("price_bumps_product")

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class Warehouse(models.Model):
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["code"]
        triggers = _statement_triggers(
            "warehouse_bumps_product",
            insert=None,
            update=_bump_products(
                "id IN (SELECT s.product_id FROM catalog_stocklevel s JOIN new_rows n ON n.id = s.warehouse_id"
                " JOIN old_rows o ON o.id = n.id WHERE n.code IS DISTINCT FROM o.code)"
            ),
            delete=None,
        )

    def __str__(self) -> str:
        return self.code


class StockLevel(models.Model):
    product = models.ForeignKey(Product, related_name="stock_levels", on_delete=models.CASCADE)
    warehouse = models.ForeignKey(Warehouse, related_name="stock_levels", on_delete=models.PROTECT)
    quantity = models.IntegerField(default=0, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["product_id", "warehouse_id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "warehouse"], name="stock_one_per_warehouse"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="stock_quantity_not_negative"),
        ]
        triggers = _child_bumps_product("stock_bumps_product")

    def __str__(self) -> str:
        return f"{self.product_id}@{self.warehouse_id}: {self.quantity}"


class OutboxEvent(models.Model):
    """A change to project, written by the triggers above in the changing transaction.

    Rows are deleted once projected. A row that keeps failing for a reason that retrying cannot
    fix becomes ``dead`` with its error, and waits for an operator (admin action "retry").
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DEAD = "dead"

    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.BigIntegerField()
    version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_default="pending")
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    available_at = models.DateTimeField(db_default=Now())
    last_error = models.TextField(blank=True, default="", db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["status", "available_at", "id"], name="outbox_pending"),
            models.Index(fields=["aggregate_type", "aggregate_id"], name="outbox_aggregate"),
        ]

    def __str__(self) -> str:
        return f"{self.aggregate_type}#{self.aggregate_id} ({self.status})"
