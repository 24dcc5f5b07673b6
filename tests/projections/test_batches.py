"""Projections in batches keep every promise of projections one at a time: an aggregate that fails
does not fail the others, batches that share aggregates neither deadlock nor write an older
version over a newer one, locks are taken in one order, fencing is per aggregate, and a backlog
brings in more relays."""

from __future__ import annotations

import threading
from dataclasses import replace
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, connections

from catalog import services
from catalog.models import Category, OutboxEvent, Product
from devtools.net import wait_for
from hybridsite import cache_keys, redis_client
from projections import registry
from projections.projector import (
    Outcome,
    PermanentProjectionError,
    Request,
    _unfenced,
    aggregate_lock,
    aggregate_locks,
    project_many,
)
from projections.registry import Snapshot
from projections.relay import drain
from projections.tables import CategoryListingItem, ProductDocument

pytestmark = pytest.mark.django_db(transaction=True)

def make(tools: Category, n: int, prefix: str = "B") -> list[Product]:
    products = []
    for i in range(n):
        product = services.product_create(sku=f"{prefix}-{i}", name=f"Item {i}", category=tools)
        services.price_set(product=product, currency="EUR", amount=Decimal("1.00") + i)
        products.append(product)
    return products


def requests(products: list[Product]) -> list[Request]:
    return [Request("product", product.pk) for product in products]


def version_in_postgres(product: Product) -> int:
    return Product.objects.values_list("version", flat=True).get(pk=product.pk)


def stored_version(sku: str) -> int | None:
    try:
        return ProductDocument.get(sku, consistent_read=True).version
    except ProductDocument.DoesNotExist:
        return None


def test_one_aggregate_failing_for_good_leaves_the_others_of_its_batch_projected(tools, monkeypatch):
    good = make(tools, 3)
    poison = services.product_create(sku="POISON-1", name="Poison", category=tools)
    real_load = registry.load_products

    def load(ids: list[int]) -> dict[int, Snapshot]:
        return {i: Snapshot(state="not a product", version=1, committed_at=None) if i == poison.pk else s
                for i, s in real_load(ids).items()}

    monkeypatch.setitem(registry.AGGREGATES, "product", replace(registry.AGGREGATES["product"], load_many=load))
    batch = [*good[:2], poison, good[2]]

    results = project_many(requests(batch))

    assert isinstance(results[2], AttributeError)  # its documents cannot be built
    assert [isinstance(r, Outcome) for i, r in enumerate(results) if i != 2] == [True, True, True]
    for product in good:
        assert stored_version(product.sku) == version_in_postgres(product)
        assert redis_client.client().get(cache_keys.document(f"product:{product.sku}")) is not None
    assert stored_version("POISON-1") is None
    assert not CategoryListingItem.count("CATEGORY#tools", CategoryListingItem.sk == "POISON-1")


def test_the_relay_completes_the_rows_of_a_batch_whose_one_aggregate_fails(tools):
    good = make(tools, 3)
    poison = OutboxEvent.objects.create(aggregate_type="retired-aggregate", aggregate_id=1, version=1)

    result = drain(max_seconds=5)

    left = set(OutboxEvent.objects.values_list("id", "permanent_failures"))
    assert left == {(poison.pk, 1)}  # its row only, failed once
    assert result.dead == 0
    for product in good:
        assert stored_version(product.sku) == version_in_postgres(product)


def test_an_unknown_aggregate_type_fails_alone():
    results = project_many([Request("no-such-aggregate", 1), Request("category", 0)])
    assert isinstance(results[0], PermanentProjectionError)
    assert isinstance(results[1], Outcome)


def test_a_batch_projects_each_aggregate_once(tools):
    (product,) = make(tools, 1)
    with pytest.raises(ValueError):
        project_many([Request("product", product.pk), Request("product", product.pk)])


def test_batches_that_share_aggregates_never_deadlock_nor_go_backwards(tools):
    """Two projectors, each with its own session, project overlapping batches given in opposite
    orders while the shared products keep changing; a watcher reads the shared documents the whole
    time and never sees a version go down; at the end DynamoDB holds Postgres's versions."""
    products = make(tools, 6)
    shared = products[:3]
    forward = requests(products[:5])
    backward = list(reversed(requests([*shared, products[5]])))
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: dict[str, list[int]] = {product.sku: [] for product in shared}

    def projector(batch: list[Request]) -> None:
        try:
            while not stop.is_set():
                for result in project_many(batch):
                    if isinstance(result, Exception):
                        errors.append(result)
        finally:
            connection.close()

    def watcher() -> None:
        while not stop.is_set():
            for sku, versions in seen.items():
                version = stored_version(sku)
                if version is not None:
                    versions.append(version)

    threads = [
        threading.Thread(target=projector, args=(forward,)),
        threading.Thread(target=projector, args=(backward,)),
        threading.Thread(target=watcher),
    ]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(15):
            for product in shared:
                services.price_set(product=product, currency="EUR", amount=Decimal("2.00") + round_)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors
    for sku, versions in seen.items():
        assert versions == sorted(versions), sku
    project_many(requests(products))
    for product in products:
        assert stored_version(product.sku) == version_in_postgres(product)


def _lock_key(owner: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT hashtextextended(%s, 0)", [owner])
        return cursor.fetchone()[0]


def _held_by(pid: int) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND pid = %s AND objsubid = 1",
            [pid],
        )
        return {row[0] for row in cursor.fetchall()}


def _waiting(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)", [pid])
        return cursor.fetchone()[0]


def test_a_batch_takes_its_locks_in_the_order_of_their_keys():
    """While the middle key is held elsewhere, a batch holds the keys below it and none above it,
    whatever order its aggregates were given in."""
    owners = [f"product#{n}" for n in range(1, 6)]
    ordered = sorted(owners, key=_lock_key)
    middle = ordered[2]
    pids: list[int] = []
    taken = threading.Event()

    def batch() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids.append(cursor.fetchone()[0])
            with aggregate_locks(list(reversed(owners))):
                taken.set()
        finally:
            connection.close()

    holder = connections.create_connection("default")
    try:
        holder.ensure_connection()
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [middle])
        thread = threading.Thread(target=batch)
        thread.start()
        wait_for(lambda: bool(pids) and _waiting(pids[0]), timeout=10, what="the batch waiting for the middle key")
        assert _held_by(pids[0]) == {_lock_key(owner) for owner in ordered[:2]}
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [middle])
        thread.join(10)
        assert taken.is_set()
    finally:
        holder.close()


def test_a_batch_whose_wait_fails_keeps_none_of_the_locks_it_took():
    """A statement timeout while waiting for one aggregate: the locks taken before it are released,
    not left on a session that lives on in the relay's pool."""
    owners = [f"product#{n}" for n in range(1, 6)]
    last = max(owners, key=_lock_key)
    holder = connections.create_connection("default")
    try:
        holder.ensure_connection()
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [last])
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 200")
        try:
            with pytest.raises(OperationalError), aggregate_locks(owners):
                pass
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")
        assert _held_by(connection.connection.info.backend_pid) == set()
    finally:
        holder.close()


def test_fencing_names_exactly_the_aggregates_whose_locks_were_lost():
    with aggregate_locks(["product#1", "product#2", "product#3"]):
        assert _unfenced(["product#1", "product#2", "product#3"]) == set()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended('product#2', 0))")
        assert _unfenced(["product#1", "product#2", "product#3"]) == {"product#2"}
        with connection.cursor() as cursor:  # the batch releases all three on the way out
            cursor.execute("SELECT pg_advisory_lock(hashtextextended('product#2', 0))")
    assert _held_by(connection.connection.info.backend_pid) == set()


def test_a_batch_waits_for_a_projector_holding_one_of_its_aggregates(tools):
    first, second = make(tools, 2)
    done = threading.Event()
    results: list[Outcome | Exception] = []

    def batch() -> None:
        try:
            results.extend(project_many(requests([first, second])))
            done.set()
        finally:
            connection.close()

    with aggregate_lock(f"product#{second.pk}"):
        thread = threading.Thread(target=batch)
        thread.start()
        assert not done.wait(0.5)
        assert stored_version(first.sku) is None  # nothing written before every lock is held
    thread.join(30)
    assert all(isinstance(r, Outcome) for r in results)
    assert stored_version(second.sku) == version_in_postgres(second)


def test_a_full_claim_asks_for_another_relay(tools):
    make(tools, 3)
    asked: list[int] = []
    drain(batch_size=2, backlog=lambda: asked.append(1))
    assert asked == [1]  # once per drain
    make(tools, 1, prefix="C")
    drain(batch_size=10, backlog=lambda: asked.append(1))
    assert asked == [1]  # a claim that was not full
