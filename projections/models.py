"""DynamoDB tables holding the materialized views (PynamoDB models).

Every projected item has the same envelope: its key, the ``owner`` aggregate that produced it
(indexed, so that the projector finds the items an aggregate no longer wants), the aggregate's
``version`` (the write condition), ``deleted`` for tombstones, and ``body``: the document as
rendered JSON, so that the read path stores and returns bytes without serializer work.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from pynamodb.attributes import BooleanAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model


def table_meta(name: str, **extra: object) -> type:
    """A PynamoDB ``Meta`` whose connection and table name come from settings."""
    attrs = {
        "table_name": f"{settings.DYNAMODB_TABLE_PREFIX}{name}",
        "region": settings.AWS_REGION,
        "host": settings.DYNAMODB_ENDPOINT or None,
        "connect_timeout_seconds": settings.DYNAMODB_TIMEOUT_SECONDS,
        "read_timeout_seconds": settings.DYNAMODB_TIMEOUT_SECONDS,
        "max_retry_attempts": 1,
        "billing_mode": "PAY_PER_REQUEST",
        **extra,
    }
    if settings.AWS_ACCESS_KEY_ID:
        attrs["aws_access_key_id"] = settings.AWS_ACCESS_KEY_ID
        attrs["aws_secret_access_key"] = settings.AWS_SECRET_ACCESS_KEY
    return type("Meta", (), attrs)


class OwnerIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "owner-index"
        projection = AllProjection()

    owner = UnicodeAttribute(hash_key=True)


class ProjectedItem(Model):
    """Shared envelope; concrete tables add their keys and ``Meta``."""

    owner = UnicodeAttribute()
    version = NumberAttribute()
    deleted = BooleanAttribute(default=False)
    body = UnicodeAttribute(null=True)
    source_committed_at = UnicodeAttribute(null=True)
    projected_at = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    owner_index = OwnerIndex()


class ProductDocument(ProjectedItem):
    Meta = table_meta("products")
    pk = UnicodeAttribute(hash_key=True)  # the SKU


class CategoryListingItem(ProjectedItem):
    """One product's summary under its category: a listing page is one Query on ``pk``."""

    Meta = table_meta("category-listing")
    pk = UnicodeAttribute(hash_key=True)  # CATEGORY#<slug>
    sk = UnicodeAttribute(range_key=True)  # the SKU


class CategoryTreeDocument(ProjectedItem):
    Meta = table_meta("category-tree")
    pk = UnicodeAttribute(hash_key=True)  # TREE


TABLES: tuple[type[ProjectedItem], ...] = (ProductDocument, CategoryListingItem, CategoryTreeDocument)


class OwnerManifest(models.Model):
    """The keys each aggregate has written, per DynamoDB table.

    The projector finds the items an aggregate no longer wants (a moved or renamed product) here:
    a strongly consistent read under the aggregate's lock, cheaper than a DynamoDB call, and
    unlike the owner index never behind.
    """

    owner = models.CharField(max_length=100, primary_key=True)
    version = models.BigIntegerField()
    keys = models.JSONField(default=dict)  # {table name: [[key values], ...]}

    def __str__(self) -> str:
        return self.owner


class BackfillCheckpoint(models.Model):
    """Postgres row recording how far a backfill got, so that ``--resume`` continues after a crash."""

    aggregate_type = models.CharField(max_length=32, unique=True)
    last_id = models.BigIntegerField(default=0)
    projected = models.BigIntegerField(default=0)
    finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.aggregate_type} after #{self.last_id}"
