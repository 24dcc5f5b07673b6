"""Shard leases in Postgres, without a stream: shares, lineage, handover. (Runs on both engines:
only Postgres is involved.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from writeback.consumer import Consumer
from writeback.models import ConsumerProcess, ShardLease

pytestmark = pytest.mark.django_db(transaction=True)

ARN = "arn:aws:dynamodb:eu-west-1:000000000000:table/t/stream/1"


def shards(*ids: str, parent: dict[str, str] | None = None) -> None:
    for shard_id in ids:
        ShardLease.objects.create(stream_arn=ARN, shard_id=shard_id, table_name="t",
                                  parent_shard_id=(parent or {}).get(shard_id, ""))


def held() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for lease in ShardLease.objects.exclude(owner=""):
        found.setdefault(lease.owner, set()).add(lease.shard_id)
    return found


def lapse(owner: str) -> None:
    """What the clock does to a consumer that stopped renewing (killed): its lease and presence end."""
    past = timezone.now() - timedelta(seconds=1)
    ShardLease.objects.filter(owner=owner).update(lease_expires_at=past)
    ConsumerProcess.objects.filter(owner=owner).update(expires_at=past)


def test_two_consumers_split_the_shards_and_one_takes_over_a_dead_ones():
    shards("s1", "s2", "s3", "s4")
    a, b = Consumer("a"), Consumer("b")
    a.heartbeat()
    assert held() == {"a": {"s1", "s2", "s3", "s4"}}  # alone, it takes everything
    b.heartbeat()  # b is alive: its share is 2, none free yet
    a.heartbeat()  # a gives back what is above its share
    b.heartbeat()
    assert {owner: len(ids) for owner, ids in held().items()} == {"a": 2, "b": 2}

    lapse("a")
    b.heartbeat()
    assert held() == {"b": {"s1", "s2", "s3", "s4"}}


def test_a_live_lease_is_not_taken(settings):
    shards("s1")
    a, b = Consumer("a"), Consumer("b")
    a.heartbeat()
    b.heartbeat()
    assert held() == {"a": {"s1"}}


def test_a_child_shard_waits_for_its_parent_to_finish():
    shards("parent", "child", parent={"child": "parent"})
    a = Consumer("a")
    a.heartbeat()
    assert held() == {"a": {"parent"}}
    ShardLease.objects.filter(shard_id="parent").update(finished=True)
    a.heartbeat()
    assert held()["a"] >= {"child"}
