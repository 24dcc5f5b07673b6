"""What we rely on from the DynamoDB engine, proved over HTTP against the real one.

DynamoDB Local (AWS's emulator, the embedded default) behaves as AWS does where moto does not:
TTL deletes expired items, a transaction's ClientRequestToken makes a retry idempotent, a failed
transaction leaves stream readers working, and data is kept across restarts (-sharedDb -dbPath).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings
from django.utils import timezone
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from devtools import embedded
from devtools.net import NotReady, wait_for
from hybridsite.dynamodb import connection as table_connection
from projections.tables import ProductDocument


def client(service: str = "dynamodb", endpoint: str | None = None) -> Any:
    """A boto3 client for the suite's engine (or another endpoint), as the app's models connect."""
    return boto3.client(
        service,
        endpoint_url=endpoint or settings.DYNAMODB_ENDPOINT or None,
        region_name=settings.AWS_REGION,
        aws_access_key_id=settings.AWS_ACCESS_KEY_ID or None,
        aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY or None,
        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=10),
    )


def gone(sku: str) -> bool:
    try:
        ProductDocument.get(sku, consistent_read=True)
    except DoesNotExist:
        return True
    return False


def document(sku: str, version: int, **extra: Any) -> ProductDocument:
    return ProductDocument(pk=sku, owner=f"product:{sku}", version=version, body="{}", **extra)


@pytest.mark.aws_engine(reason="moto never expires TTL items")
def test_ttl_deletes_expired_items(dynamodb) -> None:
    """Tombstones and idempotency records rely on TTL to go away; only expired items go."""
    document("TTL-EXPIRED", 1, expires_at=timezone.now() - timedelta(minutes=1)).save()
    document("TTL-LATER", 1, expires_at=timedelta(days=1)).save()
    document("TTL-NEVER", 1).save()

    # DynamoDB Local sweeps expired items in the background, as AWS does: seconds usually, never promised.
    wait_for(lambda: gone("TTL-EXPIRED"), timeout=240, interval=0.5, what="the expired item to be deleted by TTL")

    assert not gone("TTL-LATER")
    assert not gone("TTL-NEVER")


@pytest.mark.aws_engine(reason="moto ignores ClientRequestToken")
def test_transaction_retried_with_its_client_request_token_is_applied_once(dynamodb) -> None:
    """A retried TransactWriteItems (same token, same body) must not apply twice: the write in
    between survives the retry; the same token with another body is refused."""
    connection = table_connection(ProductDocument)
    token = uuid.uuid4().hex

    def transaction(version: int) -> None:
        with TransactWrite(connection=connection, client_request_token=token) as write:
            write.save(document("TXN-1", version))

    transaction(1)
    document("TXN-1", 2).save()  # a later write, outside the transaction

    transaction(1)  # the retry: acknowledged, not applied again
    assert ProductDocument.get("TXN-1", consistent_read=True).version == 2

    with pytest.raises(TransactWriteError) as raised:
        transaction(3)
    assert raised.value.cause_response_code == "IdempotentParameterMismatchException"
    assert ProductDocument.get("TXN-1", consistent_read=True).version == 2


@pytest.fixture
def stream_table() -> Iterator[str]:
    """A table of this test's own with a NEW_AND_OLD_IMAGES stream, as write-back will read."""
    ddb = client()
    name = f"{settings.DYNAMODB_TABLE_PREFIX}engine-stream-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    yield name
    ddb.delete_table(TableName=name)


def read_stream_until(streams: Any, iterator: str, key: str, timeout: float = 30) -> tuple[list[str], str]:
    """The keys of the records read until ``key`` shows up, and the iterator to go on with.

    A GetRecords call may return nothing although records are there (on AWS too): read on,
    within a bounded wait."""
    keys: list[str] = []

    def read() -> bool:
        nonlocal iterator
        response = streams.get_records(ShardIterator=iterator)
        keys.extend(record["dynamodb"]["Keys"]["pk"]["S"] for record in response["Records"])
        iterator = response["NextShardIterator"]
        return key in keys

    try:
        wait_for(read, timeout=timeout, interval=0.2, what=f"{key!r} in the stream")
    except NotReady as error:
        raise NotReady(f"{error}; read {keys}") from None
    return keys, iterator


def first_shard(streams: Any, arn: str) -> str:
    """The stream's first shard, once it has one (a new table's stream may not have it yet)."""
    shards: list[dict[str, Any]] = []

    def listed() -> bool:
        shards[:] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        return bool(shards)

    wait_for(listed, timeout=30, interval=0.2, what="a shard in the new stream")
    return shards[0]["ShardId"]


@pytest.mark.aws_engine(reason="a failed transaction breaks moto's live stream iterators (its writes show instead)")
def test_stream_reader_goes_on_after_a_failed_transaction(stream_table: str) -> None:
    ddb, streams = client(), client("dynamodbstreams")
    arn = ddb.describe_table(TableName=stream_table)["Table"]["LatestStreamArn"]
    shard = first_shard(streams, arn)
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    ddb.put_item(TableName=stream_table, Item={"pk": {"S": "before"}})
    seen, iterator = read_stream_until(streams, iterator, "before")
    assert seen == ["before"]

    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": stream_table, "Item": {"pk": {"S": "lost"}}}},
            {"ConditionCheck": {
                "TableName": stream_table, "Key": {"pk": {"S": "before"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }},
        ])
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    ddb.put_item(TableName=stream_table, Item={"pk": {"S": "after"}})

    seen, _ = read_stream_until(streams, iterator, "after")
    assert seen == ["after"]  # the failed transaction's put is not in the stream


@pytest.fixture
def own_dynamodb_local(tmp_path: Path) -> Iterator[Path]:
    """A DynamoDB Local server of this test's own on a temporary dbPath (the shared one stays up)."""
    missing = embedded.dynamodb_local_missing()
    if missing:
        pytest.skip(f"DynamoDB Local cannot run here: {missing}")
    directory = tmp_path / "dynamodb"
    yield directory
    embedded.stop_dynamodb_local(directory)


def test_dynamodb_local_keeps_its_data_across_a_restart(own_dynamodb_local: Path) -> None:
    """`make run` twice must find the tables and items of the first run (no backfill again)."""
    first = embedded.start_dynamodb_local(own_dynamodb_local)["DYNAMODB_ENDPOINT"]
    ddb = client(endpoint=first)
    ddb.create_table(
        TableName="kept",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="kept", Item={"pk": {"S": "a"}, "n": {"N": "7"}})

    embedded.stop_dynamodb_local(own_dynamodb_local)
    assert not embedded.dynamodb_healthy(first)
    second = embedded.start_dynamodb_local(own_dynamodb_local)["DYNAMODB_ENDPOINT"]

    ddb = client(endpoint=second)
    assert "kept" in ddb.list_tables()["TableNames"]
    item = ddb.get_item(TableName="kept", Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
    assert item["n"] == {"N": "7"}
