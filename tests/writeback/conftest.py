"""Fixtures of the write-back tests: products on sale, customers, and comparisons of the carts in
DynamoDB and in Postgres."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model

from carts.models import CartCopy
from carts.selectors import lines_of
from carts.tables import Cart
from catalog import services as catalog_services
from hybridsite.dynamodb import stream_arn, streams_client
from projections.projector import project
from writeback.consumer import Consumer
from writeback.records import normalized


@pytest.fixture
def on_sale(tools):
    skus = []
    for n in range(5):
        product = catalog_services.product_create(sku=f"SKU-{n}", name=f"Tool {n}", category=tools)
        project("product", product.pk)
        skus.append(product.sku)
    return skus


@pytest.fixture
def customers() -> Callable[[int], list[int]]:
    def make(count: int) -> list[int]:
        return [get_user_model().objects.create_user(f"customer{n}", password="x").pk for n in range(count)]

    return make


def dynamodb_carts() -> dict[int, tuple[int, dict[str, int]]]:
    return {int(item.user_id): (int(item.version), lines_of(item)) for item in Cart.scan(consistent_read=True)}


def postgres_carts() -> dict[int, tuple[int, dict[str, int]]]:
    return {
        row.user_id: (row.version, row.lines)
        for row in CartCopy.objects.filter(status=CartCopy.Status.ACTIVE)
    }


def drain(consumer: Consumer, until: Callable[[], bool], timeout: float = 30.0) -> None:
    """Step the consumer until ``until()`` holds (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the consumer did not catch up"
        if not consumer.step():
            time.sleep(0.05)


def stream_records() -> list[dict]:
    """Every record of the cart stream, from its start, in the Lambda event's shape."""
    client = streams_client()
    arn = stream_arn(Cart)
    records: list[dict] = []
    for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        iterator = iterator["ShardIterator"]
        while iterator:
            answer = client.get_records(ShardIterator=iterator)
            records += [normalized(record, arn) for record in answer["Records"]]
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
    return records
