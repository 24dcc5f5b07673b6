"""Create or update the DynamoDB tables idempotently."""

from __future__ import annotations

from .models import TABLES, ProjectedItem


def _client(model: type[ProjectedItem]):
    return model._get_connection().connection.client


def table_ensure(model: type[ProjectedItem]) -> str:
    """Create the table, or add what an existing one lacks (indexes, TTL). Returns what it did."""
    meta = model.Meta
    if not model.exists():
        model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        action = "created"
    else:
        action = "ok"
        description = _client(model).describe_table(TableName=meta.table_name)["Table"]
        existing = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
        schema = model._get_schema()
        for index in schema.get("global_secondary_indexes", []):
            if index["index_name"] in existing:
                continue
            _client(model).update_table(
                TableName=meta.table_name,
                AttributeDefinitions=[
                    {"AttributeName": a["attribute_name"], "AttributeType": a["attribute_type"]}
                    for a in schema["attribute_definitions"]
                ],
                GlobalSecondaryIndexUpdates=[{"Create": {
                    "IndexName": index["index_name"],
                    "KeySchema": [{"AttributeName": k["attribute_name"], "KeyType": k["key_type"]} for k in index["key_schema"]],
                    "Projection": {"ProjectionType": index["projection"]["ProjectionType"]},
                }}],
            )
            action = "updated"
    ttl = _client(model).describe_time_to_live(TableName=meta.table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        _client(model).update_time_to_live(
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
