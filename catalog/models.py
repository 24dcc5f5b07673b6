"""The authoritative catalog, with its change capture.

Every change to a product aggregate (the product row, its prices, its stock levels, the name or
place of its category, the code of a warehouse holding it) bumps ``Product.version`` in the same
transaction and writes an ``OutboxEvent`` row, by Postgres triggers. Triggers, not signals, so that
``QuerySet.update()``, ``bulk_create`` and raw SQL from other programs are caught too.

Product versions are a hybrid logical clock: ``GREATEST(old + 1, now in microseconds)``. Writers
to one product serialize on its row lock, so versions rise in commit order per product even when
the clock steps back; a product created after another with the same SKU was deleted starts above
that one's final version as long as the clock has not stepped back in between. A write that
changes nothing changes no version. The category tree's version is kept in one row
(``CategoryTreeVersion``), counted the same way under its lock.
``TRUNCATE`` of a catalog table is captured like the deletes it stands for.
"""

from __future__ import annotations

from decimal import Decimal

import pgtrigger
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from .currencies import validate_currency

SKU_MAX_LENGTH = 64
SKU_PATTERN = "[A-Za-z0-9][A-Za-z0-9._-]*"
"""What a SKU may be: the model validates it, URLs and cursors refuse anything else at the edge."""
SLUG_MAX_LENGTH = 100
SEARCH_CONFIG = "english"
"""The text search configuration of the products' search vector, and of every query against it."""
MAX_STOCK_QUANTITY = 2_147_483_647
"""The ``integer`` column's ceiling: stock adjustments beyond it are refused, not a database error."""

NOW_US = "(extract(epoch from clock_timestamp()) * 1000000)::bigint"
NOTIFY_CHANNEL = "hybridsite_outbox"
OUTBOX_COLUMNS = (
    "aggregate_type, aggregate_id, version, created_at, status, attempts, available_at, last_error, traceparent"
)
# The context of the change's trace, when the writer set it for its transaction (hybridsite.tracing).
TRACEPARENT = "NULLIF(current_setting('hybridsite.traceparent', true), '')"

# A row of a child table whose data changed (``n``/``o``: its new and old image, joined on id).
CHANGED_ROWS = "new_rows n JOIN old_rows o ON o.id = n.id WHERE n IS DISTINCT FROM o"


def _touch_products(where: str) -> str:
    """SQL that asks the products matched by ``where`` for a new version (their BEFORE UPDATE
    trigger gives it): a change of a child row is a change of the product."""
    return f"UPDATE catalog_product SET version = version + 1 WHERE {where};"


def emit_outbox(aggregate: str, source: str, aggregate_id: str = "id", version: str = "version") -> str:
    """SQL that writes one outbox row per row of ``source`` and wakes the relay at commit."""
    return (
        f"INSERT INTO catalog_outboxevent ({OUTBOX_COLUMNS})"
        f" SELECT '{aggregate}', {aggregate_id}, {version}, clock_timestamp(), 'pending', 0, now(), '', {TRACEPARENT}"
        f" FROM {source};"
        f" PERFORM pg_notify('{NOTIFY_CHANNEL}', '{aggregate}');"
    )


def statement_triggers(
    name: str, insert: str | None, update: str | None, delete: str | None, truncate: str | None = None,
    truncate_when: pgtrigger.When = pgtrigger.Before,
) -> list:
    """One AFTER ... FOR EACH STATEMENT trigger per operation (transition tables allow only one),
    and a TRUNCATE one: TRUNCATE has no transition table, but before it the rows are there."""
    triggers = []
    if insert:
        triggers.append(pgtrigger.Trigger(
            name=f"{name}_ins", when=pgtrigger.After, operation=pgtrigger.Insert, level=pgtrigger.Statement,
            referencing=pgtrigger.Referencing(new="new_rows"), func=insert + " RETURN NULL;",
        ))
    if update:
        triggers.append(pgtrigger.Trigger(
            name=f"{name}_upd", when=pgtrigger.After, operation=pgtrigger.Update, level=pgtrigger.Statement,
            referencing=pgtrigger.Referencing(old="old_rows", new="new_rows"), func=update + " RETURN NULL;",
        ))
    if delete:
        triggers.append(pgtrigger.Trigger(
            name=f"{name}_del", when=pgtrigger.After, operation=pgtrigger.Delete, level=pgtrigger.Statement,
            referencing=pgtrigger.Referencing(old="old_rows"), func=delete + " RETURN NULL;",
        ))
    if truncate:
        triggers.append(pgtrigger.Trigger(
            name=f"{name}_trunc", when=truncate_when, operation=pgtrigger.Truncate, level=pgtrigger.Statement,
            func=truncate + " RETURN NULL;",
        ))
    return triggers


def root_triggers(aggregate: str, table: str, stamp: str | None = None, derived: tuple[str, ...] = ()) -> list:
    """The triggers of an aggregate's root table: BEFORE ones that give each row its version (a new
    one when asked for one, a touch: version + 1, or when data changed; writing the same values
    again changes nothing), and statement ones that write an outbox row per changed version. A
    deleted or truncated row's outbox row carries a version above its last (its children go with it,
    by CASCADE). ``stamp``: a column that takes the time of each new version; ``derived``: columns
    Postgres computes from the others, never a change of their own."""
    stamped = f" NEW.{stamp} := clock_timestamp();" if stamp else ""
    ignored = " - ".join(f"'{column}'" for column in ("version", *([stamp] if stamp else []), *derived))
    kept = f" ELSE NEW.{stamp} := OLD.{stamp};" if stamp else ""
    gone = f"GREATEST(version + 1, {NOW_US})"
    return [
        pgtrigger.Trigger(
            name=f"{aggregate}_version_insert", when=pgtrigger.Before, operation=pgtrigger.Insert,
            func=f"NEW.version := {NOW_US};{stamped} RETURN NEW;",
        ),
        pgtrigger.Trigger(
            name=f"{aggregate}_version_update", when=pgtrigger.Before, operation=pgtrigger.Update,
            func=(
                f"IF NEW.version IS DISTINCT FROM OLD.version OR (to_jsonb(NEW) - {ignored})"
                f" IS DISTINCT FROM (to_jsonb(OLD) - {ignored}) THEN"
                f" NEW.version := GREATEST(OLD.version + 1, {NOW_US});{stamped}{kept} END IF; RETURN NEW;"
            ),
        ),
        *statement_triggers(
            f"{aggregate}_outbox",
            insert=emit_outbox(aggregate, "new_rows"),
            update=emit_outbox(
                aggregate, "new_rows n JOIN old_rows o ON o.id = n.id WHERE n.version <> o.version",
                aggregate_id="n.id", version="n.version",
            ),
            delete=emit_outbox(aggregate, "old_rows", version=gone),
            truncate=emit_outbox(aggregate, table, version=gone),
        ),
    ]


def child_triggers(name: str, root_table: str, key: str) -> list:
    """Triggers of a table whose rows belong to an aggregate (``key`` names the row of its root
    table): any real change to its rows is a change of the aggregate; a statement that changes
    nothing (same values written again) changes no version."""

    def touch(where: str) -> str:
        """A new version for the root rows matched (their BEFORE UPDATE trigger gives it)."""
        return f"UPDATE {root_table} SET version = version + 1 WHERE {where};"

    return statement_triggers(
        name,
        insert=touch(f"id IN (SELECT {key} FROM new_rows)"),
        update=touch(f"id IN (SELECT n.{key} FROM {CHANGED_ROWS} UNION SELECT o.{key} FROM {CHANGED_ROWS})"),
        delete=touch(f"id IN (SELECT {key} FROM old_rows)"),
        # After the TRUNCATE, every root row that is left may have lost rows. (Before it, updating
        # root rows that the same statement truncates would break its deferred key checks.)
        truncate=touch("true"),
        truncate_when=pgtrigger.After,
    )


class CategoryTreeVersion(models.Model):
    """The version of the category tree: one row, counted up by every change of a category.

    Counted like a product's version, ``GREATEST(old + 1, now in µs)``, under this row's lock: commit
    order whatever the clock does.
    """

    version = models.BigIntegerField()

    def __str__(self) -> str:
        return f"category tree v{self.version}"


# Every change of categories: refuse cycles, count the tree's version up, emit one outbox row for
# the tree (aggregate id 0: the tree is one aggregate).
_CATEGORY_CYCLE_CHECK = (
    # Parent changes are serialized, so that two transactions cannot close a cycle between them.
    "PERFORM pg_advisory_xact_lock(hashtext('catalog_category_tree'));"
    " IF EXISTS (WITH RECURSIVE up(start, cur) AS ("
    "  SELECT id, parent_id FROM new_rows WHERE parent_id IS NOT NULL"
    "  UNION SELECT up.start, c.parent_id FROM up JOIN catalog_category c ON c.id = up.cur"
    "   WHERE c.parent_id IS NOT NULL)"
    " SELECT 1 FROM up WHERE cur = start) THEN"
    "  RAISE EXCEPTION 'a category cannot be placed below itself' USING ERRCODE = 'check_violation';"
    " END IF;"
)
_CATEGORY_TREE_CHANGED = (
    # Like a product's: GREATEST(old + 1, now) under the row lock, so commit order whatever the clock
    # does, and never below a clock-stamped version an older release wrote. An upsert, so that a
    # truncated version table starts again instead of counting nothing.
    f"INSERT INTO catalog_categorytreeversion (id, version) VALUES (1, {NOW_US})"
    f" ON CONFLICT (id) DO UPDATE SET version = GREATEST(catalog_categorytreeversion.version + 1, {NOW_US});"
    + emit_outbox("category", "catalog_categorytreeversion", aggregate_id="0")
)
_CATEGORY_ROW_CHANGED = "(n.name, n.slug, n.parent_id) IS DISTINCT FROM (o.name, o.slug, o.parent_id)"


class Category(models.Model):
    slug = models.SlugField(max_length=SLUG_MAX_LENGTH, unique=True)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, related_name="children", on_delete=models.PROTECT)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["slug"]
        constraints = [models.CheckConstraint(condition=~Q(parent=models.F("id")), name="category_not_own_parent")]
        triggers = statement_triggers(
            "category_outbox",
            insert=_CATEGORY_CYCLE_CHECK + _CATEGORY_TREE_CHANGED,
            update=(
                f"IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE {_CATEGORY_ROW_CHANGED})"
                f" THEN {_CATEGORY_CYCLE_CHECK}"
                # The product documents carry the category's name and path: renaming or moving a
                # category re-projects the products below it.
                " WITH RECURSIVE tree AS ("
                f"  SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE {_CATEGORY_ROW_CHANGED}"
                "  UNION SELECT c.id FROM catalog_category c JOIN tree t ON c.parent_id = t.id)"
                f" {_touch_products('category_id IN (SELECT id FROM tree)')}"
                f" {_CATEGORY_TREE_CHANGED}"
                " END IF;"
            ),
            delete=_CATEGORY_TREE_CHANGED,
            truncate=_CATEGORY_TREE_CHANGED,
        )

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField(
        max_length=SKU_MAX_LENGTH, unique=True,
        validators=[RegexValidator(f"^{SKU_PATTERN}$", "Use letters, digits, '.', '_' and '-'.")],
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    category = models.ForeignKey(Category, related_name="products", on_delete=models.PROTECT)
    attributes = models.JSONField(blank=True, default=dict)
    is_active = models.BooleanField(default=True, db_default=True)
    version = models.BigIntegerField(default=0, db_default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())
    # Kept by Postgres itself (a stored generated column), so every write path keeps it current; it
    # is no data of the product: the version trigger leaves it out of its comparison.
    search_vector = models.GeneratedField(
        expression=SearchVector("sku", "name", weight="A", config=SEARCH_CONFIG)
        + SearchVector("description", weight="B", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["sku"]
        indexes = [models.Index(fields=["category", "sku"]), GinIndex(fields=["search_vector"], name="product_search")]
        constraints = [models.CheckConstraint(condition=~Q(sku=""), name="product_sku_not_empty")]
        # The search vector is derived by Postgres (and not computed yet before the row is written):
        # never a change of its own.
        triggers = root_triggers("product", "catalog_product", stamp="updated_at", derived=("search_vector",))

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class Price(models.Model):
    product = models.ForeignKey(Product, related_name="prices", on_delete=models.CASCADE)
    currency = models.CharField(
        max_length=3, validators=[validate_currency]
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])

    class Meta:
        ordering = ["product_id", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["product", "currency"], name="price_one_per_currency"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="price_amount_not_negative"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="price_currency_iso4217"),
        ]
        triggers = child_triggers("price_bumps_product", "catalog_product", "product_id")

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class Warehouse(models.Model):
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["code"]
        triggers = statement_triggers(
            "warehouse_bumps_product",
            insert=None,
            update=_touch_products(
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
        triggers = child_triggers("stock_bumps_product", "catalog_product", "product_id")

    def __str__(self) -> str:
        """What the admin shows for a row ("SKU-000001 at AMS1"); querysets that list levels
        select the product and warehouse along."""
        return f"{self.product.sku} at {self.warehouse.code}"


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
    attempts = models.PositiveIntegerField(default=0, db_default=0)  # every failure: the backoff
    permanent_failures = models.PositiveIntegerField(default=0, db_default=0)  # toward dead-lettering
    available_at = models.DateTimeField(db_default=Now())
    last_error = models.TextField(blank=True, default="", db_default="")
    traceparent = models.CharField(
        max_length=55, null=True, blank=True, help_text="W3C trace context of the change that wrote the row, if traced."
    )

    class Meta:
        indexes = [
            models.Index(fields=["status", "available_at", "id"], name="outbox_pending"),
            models.Index(fields=["aggregate_type", "aggregate_id"], name="outbox_aggregate"),
        ]

    def __str__(self) -> str:
        return f"{self.aggregate_type}#{self.aggregate_id} ({self.status})"
