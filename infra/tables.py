"""The DynamoDB tables as the code declares them: every installed app's PynamoDB models, read
through :mod:`hybridsite.dynamodb` (the list ``projections_setup`` creates), turned into plain
specifications for the CDK stack. A new model is a new table here with no edit of the infra."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from pynamodb.models import Model

from hybridsite.dynamodb import all_tables, schema, table_name, ttl_attribute


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # S | N | B, DynamoDB's attribute type


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: Key
    sort_key: Key | None
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    name: str
    """Without the deployment's prefix (``DYNAMODB_TABLE_PREFIX``): ``products``, ``carts``."""
    partition_key: Key
    sort_key: Key | None
    global_indexes: tuple[Index, ...]
    local_indexes: tuple[Index, ...]
    stream_view_type: str | None  # NEW_AND_OLD_IMAGES, ... or None: no stream
    ttl_attribute: str | None
    retired_indexes: tuple[Index, ...] = ()
    """Indexes older releases made (the model's ``retired_indexes``), as they made them: the
    replacement's keys, all attributes projected. The stack keeps those its config retains."""


def _keys(key_schema: Sequence[Mapping[str, Any]], types: dict[str, str]) -> tuple[Key, Key | None]:
    by_role = {entry["KeyType"]: entry["AttributeName"] for entry in key_schema}
    sort = by_role.get("RANGE")
    return Key(by_role["HASH"], types[by_role["HASH"]]), (Key(sort, types[sort]) if sort else None)


def _index(raw: Mapping[str, Any], types: dict[str, str]) -> Index:
    partition, sort = _keys(raw["key_schema"], types)
    projection = raw["projection"]
    return Index(
        name=raw["index_name"], partition_key=partition, sort_key=sort, projection=projection["ProjectionType"],
        non_key_attributes=tuple(projection.get("NonKeyAttributes", ())),
    )


def base_name(model: type[Model]) -> str:
    """The table's name without the deployment's prefix."""
    full_name = table_name(model)
    if not full_name.startswith(settings.DYNAMODB_TABLE_PREFIX):
        raise ValueError(f"{full_name} is not named with DYNAMODB_TABLE_PREFIX {settings.DYNAMODB_TABLE_PREFIX!r}")
    return full_name.removeprefix(settings.DYNAMODB_TABLE_PREFIX)


def table_spec(model: type[Model]) -> TableSpec:
    """One model's table: keys, indexes, stream and TTL, as ``projections_setup`` creates them."""
    raw = schema(model)
    # PynamoDB's schema holds attribute definitions and key schemas in DynamoDB's own shape.
    types = {d["AttributeName"]: d["AttributeType"] for d in raw["attribute_definitions"]}
    partition, sort = _keys(raw["key_schema"], types)
    global_indexes = tuple(_index(i, types) for i in raw.get("global_secondary_indexes", []))
    by_name = {index.name: index for index in global_indexes}
    return TableSpec(
        name=base_name(model),
        partition_key=partition,
        sort_key=sort,
        global_indexes=global_indexes,
        local_indexes=tuple(_index(i, types) for i in raw.get("local_secondary_indexes", [])),
        stream_view_type=getattr(model.Meta, "stream_view_type", None),
        ttl_attribute=ttl_attribute(model),
        retired_indexes=tuple(
            replace(by_name[new], name=old, projection="ALL", non_key_attributes=())
            for old, new in getattr(model, "retired_indexes", {}).items()
        ),
    )


def table_specs() -> list[TableSpec]:
    return [table_spec(model) for model in all_tables()]
