"""The consumer as a process, SIGKILLed at random while customers write their carts: Postgres ends
equal to DynamoDB per cart, each stream record applied exactly once, and a replay of the whole
stream changes nothing. Two processes hand the shards over when one dies."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator

import pytest
from django.db.models import Sum

from carts import services
from devtools.net import wait_for
from projections.readpath import DYNAMODB_ERRORS
from tests.services import StreamsConsumer, database_url
from writeback.models import DeadLetter, ShardLease

from .conftest import dynamodb_carts, postgres_carts, stream_records

STREAMS = "DynamoDB Streams as AWS serves them (moto's iterators break and its records differ)"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.aws_engine(reason=STREAMS)]

CUSTOMERS = 20
# The 2,000 writes take minutes on a shared 2-core machine: 600 by default (the test stays
# under a minute), CART_CRASH_WRITES=2000 for the full run.
WRITES = int(os.environ.get("CART_CRASH_WRITES", "600"))


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("SEED") or random.randrange(2**32))
    print(f"seed {value} (SEED={value} replays this run)")
    return value


@pytest.fixture
def start_consumer(request, fresh_streams, tmp_path) -> Iterator[Callable[[], StreamsConsumer]]:
    started: list[StreamsConsumer] = []

    def start() -> StreamsConsumer:
        consumer = StreamsConsumer(
            tmp_path / f"consumer{len(started)}.log",
            {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url()},
        )
        started.append(consumer)
        consumer.start()
        return consumer

    yield start
    for consumer in started:
        consumer.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for consumer in started:
            lines = consumer.log_path.read_text(errors="replace").splitlines()[-60:]
            print(f"--- end of {consumer.log_path.name} ---", *lines, sep="\n")


def applied() -> int:
    return ShardLease.objects.aggregate(total=Sum("records_applied"))["total"] or 0


def write_carts(user_ids: list[int], skus: list[str], rng: random.Random, writes: int = WRITES) -> None:
    """``writes`` random cart changes from one thread per customer. A write that times out on a
    busy DynamoDB (it may or may not have happened) does not stop its customer."""
    plans = {user_id: [(rng.random(), rng.choice(skus), rng.randint(1, 9)) for _ in range(writes // len(user_ids))]
             for user_id in user_ids}

    def customer(user_id: int) -> None:
        for roll, sku, quantity in plans[user_id]:
            try:
                if roll < 0.75:
                    services.cart_line_set(user_id=user_id, sku=sku, quantity=quantity)
                elif roll < 0.95:
                    services.cart_line_remove(user_id=user_id, sku=sku)
                else:
                    services.cart_clear(user_id=user_id)
            except DYNAMODB_ERRORS as exc:
                print(f"customer {user_id}: {exc}")

    threads = [threading.Thread(target=customer, args=(user_id,)) for user_id in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.proof
def test_consumer_killed_at_random_during_cart_writes_loses_and_doubles_nothing(
    start_consumer, on_sale, customers, seed
):
    rng = random.Random(seed)
    user_ids = customers(CUSTOMERS)
    done = threading.Event()
    writer = threading.Thread(target=lambda: (write_carts(user_ids, on_sale, rng), done.set()))
    writer.start()
    kills = 0
    while not done.is_set():
        consumer = start_consumer()
        done.wait(rng.uniform(0.2, 1.5))
        consumer.kill()
        kills += 1
    writer.join()
    written = len(stream_records())  # every change of a cart is one record
    start_consumer()
    wait_for(lambda: applied() >= written, 60, 0.2, "the consumer to apply every record")
    print(f"{written} cart changes, consumer SIGKILLed {kills} times")
    assert kills >= 2
    assert postgres_carts() == dynamodb_carts()
    assert applied() == written  # each record applied once: the count moves with the checkpoint
    assert not DeadLetter.objects.exists()


def test_replaying_the_stream_from_trim_horizon_changes_nothing(start_consumer, on_sale, customers, seed):
    user_ids = customers(5)
    write_carts(user_ids, on_sale, random.Random(seed), writes=100)
    written = len(stream_records())
    consumer = start_consumer()
    wait_for(lambda: applied() >= written, 60, 0.2, "the consumer to apply every record")
    consumer.stop()
    from carts.models import CartCopy

    before = list(CartCopy.objects.order_by("user_id").values_list("user_id", "version", "lines", "copied_at"))
    ShardLease.objects.update(checkpoint="", records_applied=0, owner="")
    start_consumer()
    wait_for(lambda: applied() >= written, 60, 0.2, "the replay to read every record")
    after = list(CartCopy.objects.order_by("user_id").values_list("user_id", "version", "lines", "copied_at"))
    assert after == before and len(before) == 5


def owners(consumer: StreamsConsumer) -> set[str]:
    """The shards (by id) a consumer process holds."""
    return {
        lease.shard_id for lease in ShardLease.objects.filter(finished=False)
        if lease.owner.split(":")[1:2] == [str(consumer.process.pid)]
    }


def test_two_consumers_split_the_shards_and_a_killed_ones_move_to_the_other(start_consumer, on_sale, customers):
    """DynamoDB Local gives each table one open shard: the write-back tables (carts, drafts) make
    two to split."""
    first, second = start_consumer(), start_consumer()
    wait_for(lambda: len(owners(first)) == 1 and len(owners(second)) == 1, 30, 0.1, "the two consumers to split")
    shards = owners(first) | owners(second)
    assert len(shards) == ShardLease.objects.filter(finished=False).count() == 2

    first.kill()
    wait_for(lambda: owners(second) == shards, 30, 0.1, "the survivor to take the dead consumer's shard")
    (ann,) = customers(1)
    services.cart_line_set(user_id=ann, sku=on_sale[0], quantity=4)
    wait_for(lambda: postgres_carts() == dynamodb_carts(), 30, 0.1, "the survivor to copy the new cart")
