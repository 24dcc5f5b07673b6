"""The consumer as a process, SIGKILLed at random while customers write their carts: Postgres ends
equal to DynamoDB per cart, each stream record applied exactly once, and a replay of the whole
stream changes nothing. Two processes hand the shards over when one dies."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest
from django.db.models import Sum

from carts import services
from carts.models import CartCopy
from devtools.net import wait_for
from projections.readpath import DYNAMODB_ERRORS
from tests.services import StreamsConsumer, database_url
from writeback.models import DeadLetter, ShardLease

from .conftest import dynamodb_carts, postgres_carts, stream_records

STREAMS = "DynamoDB Streams as AWS serves them (moto's iterators break and its records differ)"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.aws_engine(reason=STREAMS)]

CUSTOMERS = 20
WRITES = int(os.environ.get("CART_CRASH_WRITES", "2000"))
# Writer threads, each writing for every tenth customer in turn: DynamoDB Local serves requests one
# at a time, so more threads write no faster (20 wrote no faster than 10 here).
WRITERS = 10


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


class Write(NamedTuple):
    user_id: int
    action: str  # set, remove or clear
    sku: str = ""
    quantity: int = 0


def applied() -> int:
    return ShardLease.objects.aggregate(total=Sum("records_applied"))["total"] or 0


def plan_writes(user_ids: list[int], skus: list[str], rng: random.Random, writes: int) -> list[list[Write]]:
    """``writes`` cart changes, each one that changes its cart (a quantity it does not hold, a line
    it has, a cart with lines to clear), so that each is one stream record: per writer thread, the
    writes of its customers in turn."""
    carts: dict[int, dict[str, int]] = {user_id: {} for user_id in user_ids}
    plans: list[list[Write]] = [[] for _ in range(min(WRITERS, len(user_ids)))]
    for n in range(writes):
        user_id = user_ids[n % len(user_ids)]
        lines, roll = carts[user_id], rng.random()
        if not lines or roll < 0.75:
            sku = rng.choice(skus)
            quantity = rng.choice([q for q in range(1, 10) if q != lines.get(sku)])
            lines[sku] = quantity
            write = Write(user_id, "set", sku, quantity)
        elif roll < 0.95:
            sku = rng.choice(sorted(lines))
            del lines[sku]
            write = Write(user_id, "remove", sku)
        else:
            lines.clear()
            write = Write(user_id, "clear")
        plans[n % len(plans)].append(write)
    return plans


def write_carts(
    user_ids: list[int], skus: list[str], rng: random.Random, writes: int = WRITES,
    parts: int = 1, between: Callable[[], object] = lambda: None,
) -> None:
    """``writes`` cart changes through the cart services from ``WRITERS`` threads, in ``parts``
    one after another with ``between()`` in between. A write that times out on a busy DynamoDB (it
    may or may not have happened) does not stop its thread."""

    def writer(plan: list[Write]) -> None:
        for write in plan:
            try:
                if write.action == "set":
                    services.cart_line_set(user_id=write.user_id, sku=write.sku, quantity=write.quantity)
                elif write.action == "remove":
                    services.cart_line_remove(user_id=write.user_id, sku=write.sku)
                else:
                    services.cart_clear(user_id=write.user_id)
            except DYNAMODB_ERRORS as exc:
                print(f"customer {write.user_id}: {exc}")

    plans = plan_writes(user_ids, skus, rng, writes)
    for part in range(parts):
        if part:
            between()
        threads = [
            threading.Thread(target=writer, args=(plan[len(plan) * part // parts:len(plan) * (part + 1) // parts],))
            for plan in plans
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def copies() -> list[tuple]:
    """The carts' Postgres copy, row by row, with the time each row was last written."""
    return list(
        CartCopy.objects.order_by("user_id").values_list("user_id", "version", "lines", "status", "copied_at")
    )


@pytest.mark.proof
def test_consumer_killed_at_random_during_cart_writes_loses_and_doubles_nothing(
    start_consumer, on_sale, customers, seed
):
    """Then the whole stream is read again from TRIM_HORIZON: not one row changes."""
    rng = random.Random(seed)
    user_ids = customers(CUSTOMERS)
    done, killed = threading.Event(), threading.Semaphore(0)
    # In four parts, each after a kill: at least three kills fall among the writes, however fast
    # DynamoDB takes them.
    writer = threading.Thread(target=lambda: (
        write_carts(user_ids, on_sale, rng, parts=4, between=lambda: killed.acquire(timeout=120)), done.set()
    ))
    writer.start()
    kills = 0
    while not done.is_set():
        # Killed at a random moment once it applies (not while it waits out the lease of the one
        # killed before: a kill then would test nothing).
        consumer, before = start_consumer(), applied()
        wait_for(lambda: applied() > before or done.is_set(), 60, 0.05, "the consumer to apply")  # noqa: B023
        done.wait(rng.uniform(0.2, 1.5))
        consumer.kill()
        kills += 1
        killed.release()
    writer.join()
    written = len(stream_records())  # every change of a cart is one record
    consumer = start_consumer()
    wait_for(lambda: applied() >= written, 60, 0.2, "the consumer to apply every record")
    print(f"{written} cart changes, consumer SIGKILLed {kills} times")
    assert kills >= 3
    assert postgres_carts() == dynamodb_carts()  # per cart: its version and lines
    assert applied() == written  # each record applied once: the count moves with the checkpoint
    assert not DeadLetter.objects.exists()

    consumer.stop()
    before = copies()
    ShardLease.objects.update(checkpoint="", records_applied=0, owner="")
    start_consumer()
    wait_for(lambda: applied() >= written, 60, 0.2, "the replay to read every record")
    assert copies() == before and len(before) == CUSTOMERS


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
