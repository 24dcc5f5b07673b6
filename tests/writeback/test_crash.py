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
from carts.tables import Cart
from devtools.net import wait_for
from hybridsite.dynamodb import stream_arn, streams_client
from tests.services import StreamsConsumer, database_url
from writeback.models import DeadLetter, ShardLease

from .conftest import dynamodb_carts, postgres_carts

STREAMS = "DynamoDB Streams as AWS serves them (moto's iterators break and its records differ)"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.aws_engine(reason=STREAMS)]

CUSTOMERS = 20
WRITES = int(os.environ.get("CART_CRASH_WRITES", "2000"))


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("SEED") or random.randrange(2**32))
    print(f"seed {value} (SEED={value} replays this run)")
    return value


@pytest.fixture
def start_consumer(request, carts_table, tmp_path) -> Iterator[Callable[[], StreamsConsumer]]:
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
            print(f"--- end of {consumer.log_path.name} ---", *consumer.log_path.read_text(errors="replace").splitlines()[-60:], sep="\n")


def applied() -> int:
    return ShardLease.objects.aggregate(total=Sum("records_applied"))["total"] or 0


def write_carts(user_ids: list[int], skus: list[str], rng: random.Random) -> int:
    """WRITES random cart changes from one thread per customer; returns how many changed a cart
    (each is one stream record)."""
    plans = {user_id: [(rng.random(), rng.choice(skus), rng.randint(1, 9)) for _ in range(WRITES // len(user_ids))]
             for user_id in user_ids}
    changed = [0] * len(user_ids)

    def customer(index: int, user_id: int) -> None:
        version = 0
        for roll, sku, quantity in plans[user_id]:
            if roll < 0.75:
                cart = services.cart_line_set(user_id=user_id, sku=sku, quantity=quantity)
            elif roll < 0.95:
                cart = services.cart_line_remove(user_id=user_id, sku=sku)
            else:
                cart = services.cart_clear(user_id=user_id)
            changed[index] += cart.version != version
            version = cart.version

    threads = [threading.Thread(target=customer, args=(i, u)) for i, u in enumerate(user_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(changed)


def test_consumer_killed_at_random_during_cart_writes_loses_and_doubles_nothing(
    start_consumer, on_sale, customers, seed
):
    rng = random.Random(seed)
    user_ids = customers(CUSTOMERS)
    done = threading.Event()
    written: list[int] = []
    writer = threading.Thread(target=lambda: (written.append(write_carts(user_ids, on_sale, rng)), done.set()))
    writer.start()
    kills = 0
    while not done.is_set():
        consumer = start_consumer()
        done.wait(rng.uniform(0.2, 1.5))
        consumer.kill()
        kills += 1
    writer.join()
    start_consumer()
    wait_for(lambda: applied() >= written[0], 60, 0.2, "the consumer to apply every record")
    print(f"{written[0]} cart changes, consumer SIGKILLed {kills} times")
    assert kills >= 2
    assert postgres_carts() == dynamodb_carts()
    assert applied() == written[0]  # each record applied once: the count moves with the checkpoint
    assert not DeadLetter.objects.exists()


def test_replaying_the_stream_from_trim_horizon_changes_nothing(start_consumer, on_sale, customers, seed):
    user_ids = customers(5)
    written = write_carts(user_ids, on_sale, random.Random(seed))
    consumer = start_consumer()
    wait_for(lambda: applied() >= written, 60, 0.2, "the consumer to apply every record")
    consumer.stop()
    from carts.models import CartCopy

    before = list(CartCopy.objects.order_by("user_id").values_list("user_id", "version", "lines", "status", "copied_at"))
    ShardLease.objects.update(checkpoint="", records_applied=0, owner="")
    start_consumer()
    wait_for(lambda: applied() >= written, 60, 0.2, "the replay to read every record")
    after = list(CartCopy.objects.order_by("user_id").values_list("user_id", "version", "lines", "status", "copied_at"))
    assert after == before and len(before) == 5


def test_a_killed_consumers_shards_move_to_the_live_one(start_consumer, on_sale, customers):
    shards = streams_client().describe_stream(StreamArn=stream_arn(Cart))["StreamDescription"]["Shards"]
    print(f"the cart stream has {len(shards)} shard(s) on this engine")
    (ann,) = customers(1)
    first, second = start_consumer(), start_consumer()
    wait_for(lambda: ShardLease.objects.exclude(owner="").exists(), 30, 0.1, "a consumer to take the shard")
    holders = set(ShardLease.objects.exclude(owner="").values_list("owner", flat=True))
    victim = first if any(f":{first.process.pid}:" in owner for owner in holders) else second
    survivor = second if victim is first else first
    victim.kill()
    wait_for(
        lambda: set(ShardLease.objects.filter(finished=False).values_list("owner", flat=True))
        == {o for o in ShardLease.objects.values_list("owner", flat=True) if f":{survivor.process.pid}:" in o},
        30, 0.1, "the survivor to hold every shard",
    )
    services.cart_line_set(user_id=ann, sku=on_sale[0], quantity=4)
    wait_for(lambda: postgres_carts() == dynamodb_carts(), 30, 0.1, "the survivor to copy the new cart")
