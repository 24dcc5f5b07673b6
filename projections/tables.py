"""DynamoDB tables holding the materialized views (PynamoDB models), and the one adapter to
PynamoDB's internals: the rest of the code calls the functions below, never a private attribute.

Every projected item has the same envelope: its key, the ``owner`` aggregate that produced it
(indexed, so that the projector finds the items an aggregate no longer wants), the aggregate's
``version`` (the write condition), ``deleted`` for tombstones, and ``body``: the document as
rendered JSON, so that the read path stores and returns bytes without serializer work.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from pynamodb._schema import ModelSchema
from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.constants import NUMBER
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import MetaProtocol, Model


def table_meta(name: str, **extra: object) -> MetaProtocol:
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
    return cast(MetaProtocol, type("Meta", (), attrs))  # a class with these attributes, as Model.Meta is


class VersionAttribute(Attribute[int]):
    """An aggregate's version: a DynamoDB number that is always an integer (a Postgres bigint), so
    typed ``int`` where PynamoDB's ``NumberAttribute`` says ``float``."""

    attr_type = NUMBER

    def serialize(self, value: int) -> str:
        return str(value)

    def deserialize(self, value: str) -> int:
        return int(value)


class OwnerIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "owner-index"
        projection = AllProjection()

    owner = UnicodeAttribute(hash_key=True)


class ProjectedItem(Model):
    """Shared envelope; concrete tables add their keys and ``Meta``."""

    owner = UnicodeAttribute()
    version = VersionAttribute()
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


# --- the adapter: PynamoDB's private API, in this one place --------------------------------------


def connection(model: type[ProjectedItem]) -> Any:
    """PynamoDB's low-level connection of a table (its host, its botocore client)."""
    return model._get_connection().connection


def client(model: type[ProjectedItem]) -> Any:
    """The botocore DynamoDB client a table's calls go through."""
    return connection(model).client


def reset_connection(model: type[ProjectedItem]) -> None:
    """Forget the cached connection, so that the next call builds one from ``Meta`` again."""
    model._connection = None


def key_names(model: type[ProjectedItem]) -> list[str]:
    """The table's key attribute names: the hash key, then the range key if there is one."""
    return [name for name in (model._hash_keyname, model._range_keyname) if name]


def get_item(model: type[ProjectedItem], key: dict[str, str]) -> ProjectedItem | None:
    """A strongly consistent read of one item by its key attributes; None when there is none."""
    hash_name, *range_name = key_names(model)
    try:
        return model.get(key[hash_name], key[range_name[0]] if range_name else None, consistent_read=True)
    except model.DoesNotExist:
        return None


def hash_key_attribute(model: type[ProjectedItem]) -> Any:
    """The hash key attribute, for conditions such as ``does_not_exist()``."""
    return getattr(model, key_names(model)[0])


def schema(model: type[ProjectedItem]) -> ModelSchema:
    return model._get_schema()


# --- creating the tables -------------------------------------------------------------------------


def table_ensure(model: type[ProjectedItem]) -> str:
    """Create the table, or add what an existing one lacks (indexes, TTL). Returns what it did."""
    meta = model.Meta
    if not model.exists():
        model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        action = "created"
    else:
        action = "ok"
        description = client(model).describe_table(TableName=meta.table_name)["Table"]
        existing = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
        table_schema = schema(model)
        for index in table_schema.get("global_secondary_indexes", []):
            if index["index_name"] in existing:
                continue
            # PynamoDB's schema holds attribute definitions and key schemas in DynamoDB's own shape.
            client(model).update_table(
                TableName=meta.table_name,
                AttributeDefinitions=table_schema["attribute_definitions"],
                GlobalSecondaryIndexUpdates=[{"Create": {
                    "IndexName": index["index_name"],
                    "KeySchema": index["key_schema"],
                    "Projection": {"ProjectionType": index["projection"]["ProjectionType"]},
                }}],
            )
            action = "updated"
    ttl = client(model).describe_time_to_live(TableName=meta.table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client(model).update_time_to_live(
            TableName=meta.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    return action


def tables_ensure() -> dict[str, str]:
    return {model.Meta.table_name: table_ensure(model) for model in TABLES}


def tables_drop() -> None:
    """Remove every table of this prefix (the benchmark starts from empty tables)."""
    for model in TABLES:
        if model.exists():
            model.delete_table()
