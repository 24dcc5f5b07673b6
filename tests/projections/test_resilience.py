"""Nothing is lost: workers SIGKILLed mid-task, the broker down, DynamoDB unreachable, a poison
aggregate. Each test ends when the outbox has drained and the drift check finds nothing."""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from catalog import services
from catalog.models import Category, OutboxEvent, Price, Product, Warehouse
from devtools.net import wait_for
from projections.drift import check

pytestmark = pytest.mark.integration


def drained_without_drift(products: int) -> bool:
    if OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists():
        return False
    report = check()
    return report.clean and report.checked == products + 1


def make_catalog(count: int) -> tuple[list[Product], list[Warehouse]]:
    category = Category.objects.create(slug="tools", name="Tools")
    warehouses = [Warehouse.objects.create(code=f"W{n}", name=f"Warehouse {n}") for n in range(3)]
    products = [
        services.product_create(sku=f"SKU-{n:03d}", name=f"Product {n}", category=category) for n in range(count)
    ]
    return products, warehouses


def random_write(rng: random.Random, products: list[Product], warehouses: list[Warehouse]) -> None:
    product = rng.choice(products)
    kind = rng.random()
    if kind < 0.4:
        currency, amount = rng.choice(["EUR", "USD"]), Decimal(rng.randint(1, 9999)) / 100
        services.price_set(product=product, currency=currency, amount=amount)
    elif kind < 0.8:
        services.stock_adjust(product=product, warehouse=rng.choice(warehouses), delta=rng.randint(0, 5))
    else:
        with connection.cursor() as cursor:  # a bulk statement, seen only by the triggers
            cursor.execute("UPDATE catalog_stocklevel SET quantity = quantity + 1 WHERE product_id = %s", [product.pk])


@pytest.mark.proof
def test_worker_sigkilled_during_1000_writes(start_worker, seed):
    # The writes and the kills draw from generators of their own: the killer thread draws while the
    # writer does, so one shared generator would hand out different writes on a replay.
    rng, kill_rng = random.Random(seed), random.Random(seed + 1)
    products, warehouses = make_catalog(100)
    worker = start_worker()
    stop = threading.Event()
    kills = []

    def killer() -> None:
        while not stop.wait(kill_rng.uniform(0.5, 2.0)):
            worker.kill()
            kills.append(1)
            worker.start()

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        for _ in range(1100):
            random_write(rng, products, warehouses)
    finally:
        stop.set()
        thread.join()
    assert kills, "the worker was never killed"
    wait_for(lambda: drained_without_drift(100), 120, 0.5, "drain after kills")
    assert not OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD).exists()


def test_broker_down_while_writes_commit(start_worker, start_listener, broker):
    """The processes `make run` starts (worker with beat, and the listener, whose stall drain covers
    a worker that stops consuming after losing its broker) drain what was written meanwhile."""
    products, warehouses = make_catalog(10)
    start_worker()
    start_listener(OUTBOX_STALL_SECONDS="10")
    wait_for(lambda: drained_without_drift(10), 30, 0.3, "initial projection")
    broker.stop()
    try:
        for product in products:
            services.price_set(product=product, currency="EUR", amount=Decimal("3.33"))
        # Every write committed although no relay task can be queued (one already running may still
        # drain some of them: the broker is needed only to start a task).
        assert Price.objects.filter(amount=Decimal("3.33")).count() == 10
    finally:
        broker.start()
    wait_for(lambda: drained_without_drift(10), 90, 0.5, "drain after the broker is back")


def test_dynamodb_unreachable_then_back(start_worker, dynamodb_proxy):
    products, warehouses = make_catalog(10)
    start_worker(DYNAMODB_ENDPOINT=dynamodb_proxy.url)
    wait_for(lambda: drained_without_drift(10), 30, 0.3, "initial projection")
    dynamodb_proxy.down()
    try:
        for product in products:
            services.stock_adjust(product=product, warehouse=warehouses[0], delta=7)
        wait_for(
            lambda: OutboxEvent.objects.filter(attempts__gte=2).exists(), 30, 0.3, "failed attempts while down"
        )
    finally:
        dynamodb_proxy.up()
    wait_for(lambda: drained_without_drift(10), 60, 0.5, "catch-up after DynamoDB is back")
    assert not OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD).exists()


def test_poison_aggregate_is_dead_lettered_and_others_flow(worker):
    category = Category.objects.create(slug="tools", name="Tools")
    poison = services.product_create(sku="POISON", name="Too big", category=category, description="x" * 500_000)
    services.product_create(sku="FINE-1", name="Fine", category=category)
    wait_for(
        lambda: OutboxEvent.objects.filter(aggregate_id=poison.pk, status=OutboxEvent.Status.DEAD).exists(),
        30, 0.3, "poison dead-lettered",
    )
    dead = OutboxEvent.objects.filter(aggregate_id=poison.pk, status=OutboxEvent.Status.DEAD).first()
    assert "400 KB" in dead.last_error
    assert dead.attempts == settings.OUTBOX_MAX_ATTEMPTS
    services.product_create(sku="FINE-2", name="Also fine", category=category)
    wait_for(lambda: not OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists(), 30, 0.3, "others")
    report = check()
    assert report.missing == 3  # the poison product's document, listing item and version in the history
    assert ("product", poison.pk) in report.drifted and len(report.drifted) == 1
