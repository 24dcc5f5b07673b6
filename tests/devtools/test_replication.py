"""The replication stand-in (devtools/replication.py) behaves as global tables (MREC) do between two
DynamoDB Local processes: asynchronous, per-item order, last writer wins by the write's stamp,
deletions, pause and resume, and no echo."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from devtools.net import wait_for
from devtools.replication import STAMP, Replicator, Side, clients, fill
from tests.regions.conftest import second_dynamodb_local  # noqa: F401  (the fixture replica_endpoint)
from tests.services import TcpProxy

pytestmark = [
    pytest.mark.dynamodb,
    pytest.mark.aws_engine(reason="the stand-in replicates between two DynamoDB Local processes (Java)"),
]

HOME, REPLICA = "eu-west-1", "us-east-1"
TABLE = "items"


@contextmanager
def replicated(home_endpoint: str, replica_endpoint: str) -> Iterator[Replicator]:
    """One table (``pk``) of a prefix of the test's own on both sides, replicated."""
    prefix = f"{settings.DYNAMODB_TABLE_PREFIX}replication-{uuid.uuid4().hex[:8]}-"
    stand_in = Replicator({HOME: home_endpoint, REPLICA: replica_endpoint}, prefix=prefix)
    for side in stand_in.sides:
        side.dynamodb.create_table(
            TableName=prefix + TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.stop()
        for side in stand_in.sides:
            side.dynamodb.delete_table(TableName=prefix + TABLE)


@pytest.fixture
def replicator(replica_endpoint) -> Iterator[Replicator]:
    with replicated(settings.DYNAMODB_ENDPOINT, replica_endpoint) as stand_in:
        yield stand_in


def put(stand_in: Replicator, side: str, pk: str, value: str) -> None:
    stand_in.side(side).dynamodb.put_item(
        TableName=stand_in.prefix + TABLE, Item={"pk": {"S": pk}, "value": {"S": value}}
    )


def delete(stand_in: Replicator, side: str, pk: str) -> None:
    stand_in.side(side).dynamodb.delete_item(TableName=stand_in.prefix + TABLE, Key={"pk": {"S": pk}})


def get(stand_in: Replicator, side: str, pk: str) -> dict[str, Any] | None:
    return stand_in.side(side).dynamodb.get_item(
        TableName=stand_in.prefix + TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True
    ).get("Item")


def items(stand_in: Replicator, side: str) -> dict[str, dict[str, Any]]:
    scanned = stand_in.side(side).dynamodb.scan(TableName=stand_in.prefix + TABLE, ConsistentRead=True)
    return {item["pk"]["S"]: item for item in scanned["Items"]}


def stamped(stand_in: Replicator, side: str, pk: str, value: str) -> None:
    """Wait until the write of ``value`` is dated on its side (the stand-in stamps writes even while
    replication is paused)."""
    wait_for(
        lambda: (item := get(stand_in, side, pk)) is not None and item["value"]["S"] == value and STAMP in item,
        10, 0.02, f"{pk}={value} stamped on {side}",
    )


def deletion_read(side: Side, seen: int) -> None:
    wait_for(lambda: side.counts.deletes_read > seen, 10, 0.02, f"the delete read on {side.name}")


def values_written(side: Side, table: str, pk: str) -> list[str]:
    """The values the item took on this side, in the order of its stream (from its start)."""
    stream = side.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    values = []
    for shard in side.streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"]:
        iterator = side.streams.get_shard_iterator(
            StreamArn=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = side.streams.get_records(ShardIterator=iterator)
            values += [
                r["dynamodb"]["NewImage"]["value"]["S"] for r in page["Records"]
                if r["dynamodb"]["Keys"]["pk"]["S"] == pk and "NewImage" in r["dynamodb"]
            ]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return values


def test_writes_reach_the_other_side_in_order_once_without_echo(replicator) -> None:
    home, replica = replicator.sides
    for n in range(30):
        put(replicator, HOME, "a", f"{n:02}")
        put(replicator, HOME, "b", f"{n:02}")
    put(replicator, REPLICA, "c", "from the replica")
    replicator.settle()  # it would not, were writes echoed back and forth

    assert items(replicator, HOME) == items(replicator, REPLICA)
    assert items(replicator, REPLICA)["a"]["value"]["S"] == "29"
    for pk in ("a", "b"):
        seen = values_written(replica, replicator.prefix + TABLE, pk)
        assert seen == sorted(set(seen)) and seen[-1] == "29", seen  # every copy newer than the last
    # each stamped write crossed once, none came back
    assert (replica.counts.applied, replica.counts.dropped) == (home.counts.stamped, 0)
    assert (home.counts.applied, home.counts.dropped) == (replica.counts.stamped, 0) == (1, 0)
    assert home.counts.echoes_skipped == 1 and replica.counts.echoes_skipped == home.counts.stamped


@pytest.mark.parametrize("first, last", [(HOME, REPLICA), (REPLICA, HOME)])
def test_last_writer_wins_on_both_sides(replicator, first: str, last: str) -> None:
    put(replicator, HOME, "x", "before")
    replicator.settle()
    replicator.pause()
    put(replicator, first, "x", f"written first, in {first}")
    stamped(replicator, first, "x", f"written first, in {first}")
    put(replicator, last, "x", f"written last, in {last}")
    stamped(replicator, last, "x", f"written last, in {last}")
    replicator.resume()
    replicator.settle()

    winner = get(replicator, HOME, "x")
    assert winner == get(replicator, REPLICA, "x")
    assert winner is not None and winner["value"]["S"] == f"written last, in {last}"
    assert replicator.side(last).counts.dropped == 1  # the first write, older than the copy there


def test_concurrent_writes_of_the_same_items_on_both_sides_converge(replicator, seed) -> None:
    def write(side: str, rng: random.Random) -> None:
        for n in range(60):
            put(replicator, side, f"item-{rng.randrange(6)}", f"{side} #{n}")

    writers = [
        threading.Thread(target=write, args=(side, random.Random(seed + i))) for i, side in enumerate((HOME, REPLICA))
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    replicator.settle()

    home, replica = items(replicator, HOME), items(replicator, REPLICA)
    assert home == replica  # values, stamps and tokens
    assert all(STAMP in item for item in home.values())


def test_a_delete_replicates_and_stays_deleted(replicator) -> None:
    put(replicator, HOME, "x", "v1")
    replicator.settle()
    assert get(replicator, REPLICA, "x") is not None
    delete(replicator, REPLICA, "x")
    replicator.settle()
    assert get(replicator, HOME, "x") is None and get(replicator, REPLICA, "x") is None


@pytest.mark.parametrize("last", ["delete", "write"])
def test_a_delete_and_a_concurrent_write_the_later_wins(replicator, last: str) -> None:
    home, replica = replicator.sides
    put(replicator, HOME, "x", "v1")
    replicator.settle()
    replicator.pause()
    if last == "delete":
        put(replicator, HOME, "x", "v2")
        stamped(replicator, HOME, "x", "v2")
    seen = replica.counts.deletes_read
    delete(replicator, REPLICA, "x")
    deletion_read(replica, seen)
    if last == "write":
        put(replicator, HOME, "x", "v2")
        stamped(replicator, HOME, "x", "v2")
    replicator.resume()
    replicator.settle()

    expected = None if last == "delete" else "v2"
    for side in (HOME, REPLICA):
        item = get(replicator, side, "x")
        assert (item and item["value"]["S"]) == expected


def test_an_older_copy_that_lands_after_a_delete_is_deleted_again(replicator) -> None:
    """The home side deletes x after the replica wrote it: the replica's older write reaches the
    home side, where x is absent, and lands (DynamoDB keeps no tombstone here): its record in the
    home stream shows it older than the delete, and it is deleted again."""
    home, _ = replicator.sides
    put(replicator, HOME, "x", "v1")
    replicator.settle()
    replicator.pause()
    put(replicator, REPLICA, "x", "older")
    stamped(replicator, REPLICA, "x", "older")
    seen = home.counts.deletes_read
    delete(replicator, HOME, "x")
    deletion_read(home, seen)
    replicator.resume()
    replicator.settle()

    assert get(replicator, HOME, "x") is None and get(replicator, REPLICA, "x") is None
    assert home.counts.repaired == 1


def test_paused_changes_wait_then_catch_up_after_the_delay(replicator) -> None:
    home, replica = replicator.sides
    replicator.pause()
    for n in range(40):
        put(replicator, HOME, f"item-{n:02}", f"v{n}")
    wait_for(lambda: home.counts.stamped == 40, 20, 0.05, "40 writes stamped")
    assert items(replicator, REPLICA) == {}

    replicator.delay_seconds = 0.2
    replicator.resume()
    replicator.settle()
    assert items(replicator, REPLICA) == items(replicator, HOME) and len(items(replicator, HOME)) == 40
    lag = replicator.lag()[REPLICA]
    assert lag["count"] == 40 and lag["min"] >= 0.2  # none applied before its stamp plus the delay


def test_a_side_that_does_not_answer_gets_every_change_in_order_when_it_is_back(replica_endpoint) -> None:
    proxy = TcpProxy("127.0.0.1", int(urlsplit(replica_endpoint).port or 80))
    with replicated(settings.DYNAMODB_ENDPOINT, proxy.url) as stand_in:
        home, replica = stand_in.sides
        proxy.down()
        for n in range(10):
            put(stand_in, HOME, "x", f"{n:02}")
        stamped(stand_in, HOME, "x", "09")
        direct, _ = clients(replica_endpoint, REPLICA)
        assert "Item" not in direct.get_item(TableName=stand_in.prefix + TABLE, Key={"pk": {"S": "x"}})
        proxy.up()
        stand_in.settle()

        assert get(stand_in, REPLICA, "x") == get(stand_in, HOME, "x")
        assert get(stand_in, REPLICA, "x")["value"]["S"] == "09"
        seen = values_written(replica, stand_in.prefix + TABLE, "x")
        assert seen == sorted(set(seen)) and seen[-1] == "09", seen
    proxy.down()


def test_fill_copies_every_item_of_the_prefixs_tables_as_they_are(replica_endpoint) -> None:
    """What `make run REGIONS=2` and the bench do before replicating: a new replica gets the home
    side's items, stamps included (the stand-in replicates only what is written while it runs)."""
    home, _ = clients(settings.DYNAMODB_ENDPOINT, HOME)
    replica, _ = clients(replica_endpoint, REPLICA)
    prefix = f"{settings.DYNAMODB_TABLE_PREFIX}fill-{uuid.uuid4().hex[:8]}-"
    for side in (home, replica):
        side.create_table(
            TableName=prefix + TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
    try:
        written = [{"pk": {"S": f"item-{n:03}"}, "value": {"S": f"v{n}"}, STAMP: {"N": str(n)}} for n in range(60)]
        for item in written:
            home.put_item(TableName=prefix + TABLE, Item=item)
        replica.put_item(TableName=prefix + TABLE, Item={"pk": {"S": "item-000"}, "value": {"S": "older"}})

        assert fill(settings.DYNAMODB_ENDPOINT, replica_endpoint, prefix=prefix) == {prefix + TABLE: 60}

        copied = replica.scan(TableName=prefix + TABLE, ConsistentRead=True)["Items"]
        assert sorted(copied, key=lambda item: item["pk"]["S"]) == written
    finally:
        for side in (home, replica):
            side.delete_table(TableName=prefix + TABLE)
