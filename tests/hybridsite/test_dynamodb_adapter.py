"""``projections_setup`` (through the DynamoDB adapter) brings tables an older release made up to date."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute

from hybridsite import dynamodb
from hybridsite.dynamodb import table_meta
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
        assert dynamodb.table_ensure(OlderNames) == "updated"
        description = client.describe_table(TableName=OlderNames.Meta.table_name)["Table"]
        [index] = description["GlobalSecondaryIndexes"]
        assert index["IndexName"] == "owner-index"
        assert index["KeySchema"] == [{"AttributeName": "owner", "KeyType": "HASH"}]
        assert dynamodb.table_ensure(OlderNames) == "ok"
    finally:
        OlderNames.delete_table()
