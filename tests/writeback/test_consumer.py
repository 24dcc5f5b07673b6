"""The streams consumer in this process, on DynamoDB Local's real streams: carts copied to Postgres
with their checkpoint, replays, dead letters, TTL expiries, resyncs, and the Lambda handler fed
with records read from the stream."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from prometheus_client import REGISTRY

from carts import services
from carts.models import CartCopy
from carts.tables import Cart
from hybridsite.dynamodb import get_item
from tests.services import paced_reads
from writeback import lambda_handler
from writeback.apply import dead_letter_retry
from writeback.consumer import Consumer
from writeback.models import DeadLetter, Resync, ShardLease

from .conftest import drain, dynamodb_carts, postgres_carts, stream_records

STREAMS = "DynamoDB Streams as AWS serves them (moto's iterators break and its records differ)"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.aws_engine(reason=STREAMS)]


def lags_observed() -> float:
    return REGISTRY.get_sample_value("hybridsite_writeback_lag_seconds_count") or 0.0


def snapshot() -> list[tuple]:
    return list(CartCopy.objects.order_by("user_id").values_list("user_id", "version", "lines", "status", "copied_at"))


def test_carts_reach_postgres_with_their_checkpoint_and_a_replay_changes_nothing(fresh_streams, on_sale, customers):
    ann, bob = customers(2)
    for quantity in range(1, 6):
        services.cart_line_set(user_id=ann, sku="SKU-1", quantity=quantity)
    services.cart_line_set(user_id=bob, sku="SKU-2", quantity=2)
    services.cart_line_set(user_id=bob, sku="SKU-3", quantity=1)
    services.cart_line_remove(user_id=bob, sku="SKU-2")
    lags_before = lags_observed()
    consumer = Consumer()
    drain(consumer, lambda: postgres_carts() == dynamodb_carts())
    assert postgres_carts()[ann][1] == {"SKU-1": 5} and postgres_carts()[bob][1] == {"SKU-3": 1}
    lease = ShardLease.objects.get(checkpoint__gt="")
    assert lease.owner == consumer.owner and lease.records_applied == 8
    assert lags_observed() == lags_before + 8  # the SLO page's write-back lag

    before = snapshot()
    ShardLease.objects.update(checkpoint="", records_applied=0)  # read it all again from TRIM_HORIZON
    replay = Consumer()
    consumer.release_all()
    drain(replay, lambda: ShardLease.objects.filter(records_applied=8).exists())
    assert snapshot() == before  # not one row written again (copied_at unchanged)


def test_a_shard_is_read_at_most_once_per_interval_busy_or_idle(fresh_streams, on_sale, customers, settings):
    """AWS serves five GetRecords a second per shard, shared by its readers, and throttles beyond:
    with records waiting or none, a shard is read again only after the interval."""
    settings.STREAM_READ_INTERVAL_SECONDS = 60
    (ann,) = customers(1)
    services.cart_line_set(user_id=ann, sku="SKU-1", quantity=1)
    again, waits = paced_reads(Consumer(), steps=4)
    assert again >= 3 and len(waits) == again and min(waits) > 59


def test_a_record_that_fails_is_parked_and_the_shard_goes_on_then_retried(fresh_streams, on_sale, customers):
    (ann,) = customers(1)
    ghost = ann + 1000  # a cart of a user Postgres does not know: its copy violates the foreign key
    services.cart_line_set(user_id=ghost, sku="SKU-1", quantity=1)
    services.cart_line_set(user_id=ann, sku="SKU-2", quantity=2)
    consumer = Consumer()
    drain(consumer, lambda: ann in postgres_carts())
    parked = DeadLetter.objects.get()
    assert "foreign key" in parked.error.lower() and parked.record["dynamodb"]["Keys"]["user_id"] == {"S": str(ghost)}
    assert not dead_letter_retry(dead_letter=parked)
    assert DeadLetter.objects.get().attempts == 2

    get_user_model().objects.create_user("ghost", password="x", id=ghost)
    assert dead_letter_retry(dead_letter=parked)
    assert not DeadLetter.objects.exists()
    assert postgres_carts()[ghost] == dynamodb_carts()[ghost]


def test_a_deleted_item_is_removed_and_a_ttl_deletion_is_an_expiry(fresh_streams, on_sale, customers):
    ann, bob = customers(2)
    services.cart_line_set(user_id=ann, sku="SKU-1", quantity=1)
    services.cart_line_set(user_id=bob, sku="SKU-1", quantity=1)
    consumer = Consumer()
    drain(consumer, lambda: len(postgres_carts()) == 2)
    get_item(Cart, {"user_id": str(bob)}).delete()  # an operator, not the TTL
    drain(consumer, lambda: CartCopy.objects.get(user_id=bob).status == CartCopy.Status.REMOVED)

    # DynamoDB's TTL deletion of Ann's cart, as the stream carries it (the service principal).
    record = next(
        r for r in stream_records() if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["user_id"]["S"] == str(ann)
    )
    expiry = {
        **record, "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {**record["dynamodb"], "OldImage": record["dynamodb"]["NewImage"], "NewImage": None,
                     "SequenceNumber": record["dynamodb"]["SequenceNumber"] + "9"},
    }
    del expiry["dynamodb"]["NewImage"]
    assert lambda_handler.handle({"Records": [expiry]}, None) == {"batchItemFailures": []}
    assert CartCopy.objects.get(user_id=ann).status == CartCopy.Status.EXPIRED


def test_the_lambda_handler_applies_real_stream_records_and_reports_failures(fresh_streams, on_sale, customers):
    ann, bob = customers(2)
    services.cart_line_set(user_id=ann, sku="SKU-1", quantity=3)
    services.cart_line_set(user_id=bob, sku="SKU-2", quantity=1)
    services.cart_line_set(user_id=ann, sku="SKU-4", quantity=1)
    records = stream_records()
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "MODIFY"]
    assert lambda_handler.handle({"Records": records}, None) == {"batchItemFailures": []}
    assert postgres_carts() == dynamodb_carts()
    before = snapshot()
    assert lambda_handler.handle({"Records": records}, None) == {"batchItemFailures": []}  # redelivered
    assert snapshot() == before

    ghost = {**records[1], "dynamodb": {**records[1]["dynamodb"], "SequenceNumber": "999"}}
    ghost["dynamodb"]["NewImage"] = {
        **ghost["dynamodb"]["NewImage"], "user_id": {"S": str(bob + 1000)}, "version": {"N": "1"}
    }
    answer = lambda_handler.handle({"Records": [records[0], ghost, records[2]]}, None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "999"}]}


def test_a_trimmed_checkpoint_resyncs_the_table_from_a_scan(fresh_streams, on_sale, customers):
    ann, bob = customers(2)
    services.cart_line_set(user_id=ann, sku="SKU-1", quantity=3)
    consumer = Consumer()
    drain(consumer, lambda: ann in postgres_carts())
    consumer.iterators.clear()
    lease = ShardLease.objects.get(checkpoint__gt="")
    services.cart_line_set(user_id=bob, sku="SKU-2", quantity=2)
    consumer.resync(lease, "TrimmedDataAccessException (called directly)")
    assert postgres_carts() == dynamodb_carts()
    resync = Resync.objects.get()
    assert resync.items == 2 and resync.finished_at is not None and resync.table_name == lease.table_name
