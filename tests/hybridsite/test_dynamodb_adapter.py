"""``projections_setup`` (through the DynamoDB adapter) brings tables an older release made up to date."""

from __future__ import annotations

import time

from pynamodb.attributes import UnicodeAttribute

from hybridsite import dynamodb
from hybridsite.dynamodb import table_meta
from projections.projector import owned_items
from projections.tables import ProjectedItem


class OlderNames(ProjectedItem):
    """A throwaway table, made below as a release before the owner index made it."""

    Meta = table_meta("test-throwaway-older")
    pk = UnicodeAttribute(hash_key=True)


def test_an_existing_table_without_the_owner_index_is_given_it(dynamodb_tables):
    client = dynamodb.client(OlderNames)
    if OlderNames.exists():
        OlderNames.delete_table()
    client.create_table(
        TableName=OlderNames.Meta.table_name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    try:
        assert dynamodb.table_ensure(OlderNames).startswith("updated")
        description = client.describe_table(TableName=OlderNames.Meta.table_name)["Table"]
        [index] = description["GlobalSecondaryIndexes"]
        assert index["IndexName"] == "owner-keys-index"
        assert index["KeySchema"] == [{"AttributeName": "owner", "KeyType": "HASH"}]
        assert index["Projection"]["ProjectionType"] == "KEYS_ONLY"
        assert dynamodb.table_ensure(OlderNames) == "ok"
    finally:
        OlderNames.delete_table()


def test_the_owner_index_of_an_older_release_is_replaced_by_the_keys_only_one(dynamodb_tables):
    """DynamoDB changes no index's projection in place: a new index under a new name, then the
    retired one dropped once the new one is active (at once on an emulator)."""
    client = dynamodb.client(OlderNames)
    if OlderNames.exists():
        OlderNames.delete_table()
    client.create_table(
        TableName=OlderNames.Meta.table_name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "owner", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "owner-index", "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )
    try:
        OlderNames(pk="A-1", owner="product#1", version=3, body="{}").save()
        assert dynamodb.table_ensure(OlderNames).startswith("updated")
        for _ in range(20):  # an engine may build the new index for a while (DynamoDB Local: minutes)
            action = dynamodb.table_ensure(OlderNames)
            if action == "ok":
                break
            time.sleep(0.5)

        def indexes() -> dict[str, tuple[str, str]]:
            described = client.describe_table(TableName=OlderNames.Meta.table_name)["Table"]
            return {i["IndexName"]: (i["Projection"]["ProjectionType"], i["IndexStatus"])
                    for i in described["GlobalSecondaryIndexes"]}

        found = indexes()
        assert found["owner-keys-index"][0] == "KEYS_ONLY"
        if found["owner-keys-index"][1] == "ACTIVE":  # then the retired one is gone
            assert set(found) == {"owner-keys-index"}
            [item] = owned_items(OlderNames, "product#1")  # found through the new index, read from the table
            assert (item.pk, item.version, item.body) == ("A-1", 3, "{}")
        else:  # still being built: the retired one stays, and the command says so
            assert found["owner-index"] == ("ALL", "ACTIVE")
            assert action == "ok; owner-index kept until its replacement is active"
    finally:
        OlderNames.delete_table()
