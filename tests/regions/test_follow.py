"""cache_follow in one region, on DynamoDB Local's real streams: documents written straight into
DynamoDB (as replication writes them into a replica, past any projector's refresh) reach Redis
through the stream; an older version never overwrites a newer entry; floors rise; listings move
and the category tree is read back whole; the replication stand-in's stamp records change nothing;
a checkpoint is resumed without gaps; a trimmed one forgets the cached documents; two processes
split the shards and a SIGKILLed one's move to the other.

A second region is not needed for any of this: a replica's tables receive their writes as any
client's, and its stream shows them the same way."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalog import services as catalog
from catalog.models import Product
from devtools.net import wait_for
from hybridsite import cache_keys, heartbeat
from hybridsite.dynamodb import client as table_client
from hybridsite.dynamodb import table_ensure
from hybridsite.redis_client import client
from projections import cache, follow
from projections import metrics as pipeline_metrics
from projections.projector import project, put_document, put_tombstone
from projections.registry import (
    TREE_CACHE_NAME,
    category_tree_document,
    listing_key,
    product_cache_name,
    product_key,
    product_owner,
)
from projections.tables import CategoryListingItem, ProductDocument
from tests.services import CacheFollower, database_url, paced_reads

STREAMS = "DynamoDB Streams as AWS serves them (moto's iterators break and its records differ)"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.aws_engine(reason=STREAMS)]


@pytest.fixture
def followed(dynamodb, redis_clean) -> None:
    """Every followed table created again: new streams holding only this test's records (an earlier
    test's records would raise the floors of this test's keys)."""
    for table in follow.followed_tables().values():
        table.model.delete_table()
        table_ensure(table.model)


def entry(name: str) -> cache.Entry | None:
    raw = cache.read(cache_keys.document(name))
    return None if raw is None else cache.decode(raw)


def floor(name: str) -> int:
    return int(client().get(cache_keys.floor(name)) or 0)


def generation(listing: str) -> int:
    return int(client().get(cache_keys.listing_generation(listing)) or 0)


def drain(follower: follow.Follower, until: Callable[[], bool], timeout: float = 30.0) -> None:
    """Step the follower until ``until()`` holds (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "cache_follow did not catch up"
        if not follower.step():
            time.sleep(0.05)


def read_to_the_end(follower: follow.Follower) -> None:
    """Step until three passes in a row read nothing: every record so far applied and checkpointed."""
    idle = 0
    while idle < 3:
        idle = 0 if follower.step() else idle + 1


def write_straight(product: Product, version: int, body: bytes) -> None:
    """A document put into DynamoDB as replication puts it: no projector, no cache refresh."""
    assert put_document(
        ProductDocument, product_key(product.sku), owner=product_owner(product.pk), version=version, body=body,
        committed_at=None, projected_at=datetime.now(UTC),
    )


def counted(event: str) -> int:
    return pipeline_metrics.snapshot().get(event, 0)


def test_a_newer_document_refreshes_the_entry_there_and_an_absent_one_stays_absent(followed, product, tools):
    project("product", product.pk)  # the projector stores the entry itself
    name = product_cache_name(product.sku)
    assert entry(name).version == product.version
    write_straight(product, product.version + 5, b'{"sku":"SKU-1","name":"replicated"}')
    assert entry(name).version == product.version  # nothing refreshed Redis: a replica's situation

    other = catalog.product_create(sku="SKU-2", name="Saw", category=tools)
    write_straight(other, 7, b'{"sku":"SKU-2"}')
    follower = follow.Follower()
    drain(follower, lambda: entry(name).version == product.version + 5)
    assert entry(name).body == b'{"sku":"SKU-1","name":"replicated"}'
    assert floor(name) == product.version + 5
    read_to_the_end(follower)
    other_name = product_cache_name("SKU-2")
    assert entry(other_name) is None  # the next read fills it from this region's DynamoDB
    # Nor a floor: Redis has no record of the key, and only a reader starts one, at or above the
    # durable floor Postgres may keep for it (a version served while DynamoDB was behind).
    assert floor(other_name) == 0

    assert put_tombstone(
        ProductDocument, product_key(product.sku), owner=product_owner(product.pk), version=product.version + 6,
        projected_at=datetime.now(UTC),
    )
    drain(follower, lambda: entry(name).version == product.version + 6)
    assert entry(name).status == 404


def test_an_older_version_never_overwrites_a_newer_entry(followed, product):
    project("product", product.pk)
    name = product_cache_name(product.sku)
    newest = product.version + 10
    assert cache.store(name, newest, b'{"newest":true}')  # served from elsewhere: the floor is up too
    write_straight(product, product.version + 5, b'{"older":true}')
    follower = follow.Follower()
    read_to_the_end(follower)
    assert entry(name) == cache.Entry(newest, 200, b'{"newest":true}')
    assert floor(name) == newest

    # A replay of the whole stream (every checkpoint gone) changes nothing either.
    client().delete(cache_keys.follow_shards())
    follower.release_all()
    replay = follow.Follower()
    read_to_the_end(replay)
    assert entry(name) == cache.Entry(newest, 200, b'{"newest":true}') and floor(name) == newest


def test_listings_move_and_the_category_tree_is_read_back_whole(followed, product):
    follower = follow.Follower()
    read_to_the_end(follower)
    before = generation(product.category.slug)
    assert put_document(
        CategoryListingItem, listing_key(product.category.slug, product.sku), owner=product_owner(product.pk),
        version=product.version + 1, body=b'{"sku":"SKU-1"}', committed_at=None, projected_at=datetime.now(UTC),
    )
    drain(follower, lambda: generation(product.category.slug) > before)

    project("category", 0)  # the tree's pieces and head; the projector stores the whole tree
    stored = category_tree_document().stored()
    assert stored is not None and stored.version >= 1
    client().delete(cache_keys.document(TREE_CACHE_NAME), cache_keys.floor(TREE_CACHE_NAME))
    cache.store(TREE_CACHE_NAME, stored.version - 1, b'{"stale":true}')
    drain(follower, lambda: entry(TREE_CACHE_NAME).version == stored.version)
    assert entry(TREE_CACHE_NAME).body == stored.body


def test_the_replication_stand_ins_stamps_change_nothing(followed, product):
    """The stand-in stamps each write with a second MODIFY adding only _rts, _rtok and _rorg."""
    project("product", product.pk)
    follower = follow.Follower()
    read_to_the_end(follower)
    name = product_cache_name(product.sku)
    skipped, refreshed = counted("cache_follow.skipped"), counted("cache_follow.refreshed")
    table_client(ProductDocument).update_item(
        TableName=ProductDocument.Meta.table_name, Key={"pk": {"S": product.sku}},
        UpdateExpression="SET #rts = :ts, #rtok = :tok, #rorg = :org",
        ExpressionAttributeNames={"#rts": "_rts", "#rtok": "_rtok", "#rorg": "_rorg"},
        ExpressionAttributeValues={":ts": {"N": str(time.time_ns())}, ":tok": {"S": "t1"}, ":org": {"S": "eu-west-1"}},
    )
    read_to_the_end(follower)
    assert counted("cache_follow.skipped") == skipped + 1 and counted("cache_follow.refreshed") == refreshed
    assert entry(name).version == product.version


def test_a_shard_is_read_at_most_once_per_interval(followed, product, settings):
    """As the write-back consumer: AWS's five GetRecords a second per shard are never exceeded."""
    settings.STREAM_READ_INTERVAL_SECONDS = 60
    project("product", product.pk)
    again, waits = paced_reads(follow.Follower(), steps=3)
    assert again >= 2 and len(waits) == again and min(waits) > 59


def test_a_checkpoint_is_resumed_without_gaps_or_replays(followed, product, tools):
    products = [product] + [
        catalog.product_create(sku=f"SKU-{n}", name=f"Tool {n}", category=tools) for n in range(2, 5)
    ]
    for item in products:
        project("product", item.pk)
    first = follow.Follower()
    read_to_the_end(first)
    first.release_all()  # as after a SIGTERM: its checkpoints stay in Redis
    records = counted("cache_follow.records")
    for item in products:
        write_straight(item, item.version + 3, f'{{"sku":"{item.sku}","v":3}}'.encode())
    second = follow.Follower()
    drain(second, lambda: all(entry(product_cache_name(p.sku)).version == p.version + 3 for p in products))
    read_to_the_end(second)
    assert counted("cache_follow.records") == records + len(products)  # only the records after the checkpoint


def test_a_trimmed_checkpoint_forgets_the_cached_documents_and_moves_the_listings(followed, product):
    project("product", product.pk)
    follower = follow.Follower()
    read_to_the_end(follower)
    name, slug = product_cache_name(product.sku), product.category.slug
    generation_before = generation(slug)
    shard = next(s for s in follow.shards().values() if s.table == ProductDocument.Meta.table_name)
    assert shard.checkpoint
    follower.iterators.clear()  # as when GetShardIterator or GetRecords refused the checkpoint
    follower.trimmed(shard, "TrimmedDataAccessException (called directly)")
    assert entry(name) is None and floor(name) == product.version  # floors stay: reads never go back
    assert generation(slug) == generation_before + 1
    assert follow.shards()[shard.name].checkpoint == ""  # read on from the oldest record kept
    drain(follower, lambda: follow.shards()[shard.name].checkpoint != "")


def test_the_heartbeat_shows_how_far_the_region_has_followed(followed):
    assert heartbeat.heartbeat_write(now=1_800_000_000.0)
    assert not heartbeat.heartbeat_write(now=1_799_999_999.0)  # a late task never moves it back
    follower = follow.Follower()
    drain(follower, lambda: follow.follow_state().heartbeat == 1_800_000_000.0)
    state = follow.follow_state()
    assert state.processes == 1 and state.shards_unowned == 0


# --- as processes ---------------------------------------------------------------------------------


class FollowerProcess(CacheFollower):
    """``manage.py cache_follow`` on the test's services, and the shards it holds."""

    def __init__(self, log_path: Path) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url()}
        super().__init__(log_path, env)

    def shards(self) -> set[str]:
        """The shards whose lease this process holds."""
        assert self.process is not None
        pid = str(self.process.pid).encode()
        owners = {name: client().get(cache_keys.follow_lease(name)) for name in follow.shards()}
        return {name for name, owner in owners.items() if owner and owner.split(b":")[1] == pid}


@pytest.fixture
def start_follower(request, followed, tmp_path) -> Iterator[Callable[[], FollowerProcess]]:
    started: list[FollowerProcess] = []

    def start() -> FollowerProcess:
        process = FollowerProcess(tmp_path / f"follow{len(started)}.log")
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for process in started:
            lines = process.log_path.read_text(errors="replace").splitlines()[-60:]
            print(f"--- end of {process.log_path.name} ---", *lines, sep="\n")


def test_two_followers_split_the_shards_and_a_killed_ones_move_to_the_other(start_follower, product):
    """DynamoDB Local gives each table one open shard: the five followed tables make five to split."""
    project("product", product.pk)
    first, second = start_follower(), start_follower()
    tables = len(follow.followed_tables())
    wait_for(
        lambda: len(first.shards()) + len(second.shards()) == tables and first.shards() and second.shards(),
        60, 0.1, "the two followers to split the shards",
    )
    assert {len(first.shards()), len(second.shards())} == {tables // 2, tables - tables // 2}

    first.kill()
    wait_for(lambda: len(second.shards()) == tables, 30, 0.1, "the survivor to take the killed follower's shards")
    name = product_cache_name(product.sku)
    write_straight(product, product.version + 9, b'{"sku":"SKU-1","after":"kill"}')
    wait_for(lambda: entry(name).version == product.version + 9, 30, 0.1, "the survivor to refresh the entry")
