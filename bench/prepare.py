"""Phases 1 and 2: isolated state (a fresh database, ``bench-`` tables, ``hs-bench-`` Redis keys),
the seeded catalog, DynamoDB Local warmed up, a timed backfill, and the SKUs the reads use."""

from __future__ import annotations

import random
import time
from io import StringIO
from typing import Any

import django

from bench.config import Clock, Config


def fresh_redis_and_queue() -> None:
    from django.conf import settings
    from django_redis import get_redis_connection

    from hybridsite.celery import app

    redis = get_redis_connection("default")
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    keys = list(redis.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        redis.delete(*keys[start:start + 1000])
    with app.connection_for_write() as conn:
        try:
            conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception:  # no such queue yet
            pass


def prepare(cfg: Config, clock: Clock) -> dict[str, Any]:
    from django.core.management import call_command

    began = time.perf_counter()
    from django.conf import settings

    from bench.database import fresh_database

    fresh_database(settings.DATABASES["default"]["NAME"])  # same products, same ids, whatever ran before
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    fresh_redis_and_queue()
    clock.step("setup", began, "bench database created and migrated, bench Redis keys cleared")

    began = time.perf_counter()
    out = StringIO()
    call_command("seed_demo", products=cfg.products, seed=42, stdout=out)
    clock.step("seed", began, out.getvalue().strip())

    from hybridsite.dynamodb import tables_drop, tables_ensure

    began = time.perf_counter()
    tables_drop()
    tables_ensure()
    clock.step("tables", began, "DynamoDB tables (bench- prefix) created")
    warm_dynamodb_local(cfg.warmup_puts, clock)
    rehearse_backfill(cfg, clock)
    return backfill(cfg, clock)


def warm_dynamodb_local(puts: int, clock: Clock) -> None:
    """A new DynamoDB Local compiles its code as it serves: its first ~20,000 puts cost its JVM
    three to five times the CPU of later ones. It first serves these many conditional puts to a
    throwaway table of the projection tables' shape, so that the figures measure the projector
    against a DynamoDB in its stride, as AWS always is. (moto compiles nothing: not warmed.)"""
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings
    from pynamodb.attributes import UnicodeAttribute

    from hybridsite.dynamodb import put, table_meta
    from projections.tables import ProjectedItem

    if settings.DYNAMODB_ENGINE != "dynamodb-local":
        return

    class Warmup(ProjectedItem):
        Meta = table_meta("warmup")
        pk = UnicodeAttribute(hash_key=True)

    began = time.perf_counter()
    if Warmup.exists():
        Warmup.delete_table()
    Warmup.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
    body = "x" * 600  # about a product document's size

    def write(i: int) -> None:
        version = i // 2_000 + 1  # each key written again and again, a newer version each time
        put(Warmup(pk=f"W{i % 2_000}", owner=f"warmup#{i % 2_000}", version=version, body=body),
            Warmup.pk.does_not_exist() | (Warmup.version < version))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(puts)))
    Warmup.delete_table()
    clock.step("DynamoDB Local warm-up", began, f"{puts:,} conditional puts to a throwaway table")


def rehearse_backfill(cfg: Config, clock: Clock) -> None:
    """After the throwaway puts DynamoDB Local is still compiling the projection tables' own paths:
    its CPU per backfilled document fell from 1.26 to 0.79 ms over three backfills in a row. One
    untimed backfill, then the tables, Redis keys, manifests and checkpoints as they were."""
    from django.conf import settings

    from hybridsite.dynamodb import tables_drop, tables_ensure
    from projections.models import BackfillCheckpoint, OwnerManifest, ReadFloor

    if settings.DYNAMODB_ENGINE != "dynamodb-local":
        return
    began = time.perf_counter()
    backfill_products(cfg)
    for model in (OwnerManifest, BackfillCheckpoint, ReadFloor):
        model.objects.all().delete()
    tables_drop()
    tables_ensure()
    fresh_redis_and_queue()
    clock.step("DynamoDB Local rehearsal", began, "one untimed backfill, then the tables emptied")


def backfill_products(cfg: Config) -> int:
    """Every product, in as many processes as ``projections_backfill`` uses by default."""
    from projections.backfill import backfill as run_backfill
    from projections.backfill import default_processes

    return run_backfill(
        "product", workers=cfg.backfill_workers, processes=default_processes(), chunk=cfg.backfill_chunk
    )


def backfill(cfg: Config, clock: Clock) -> dict[str, Any]:
    from bench.inprocess import Counts, count_dynamodb
    from catalog.models import OutboxEvent
    from projections import metrics
    from projections.backfill import backfill as run_backfill
    from projections.backfill import default_processes

    processes = default_processes()
    counts = Counts(active=True)  # this process's calls: with processes above one they are the children's, uncounted
    began = time.perf_counter()
    with count_dynamodb(counts):
        count = backfill_products(cfg)
    seconds = time.perf_counter() - began
    run_backfill("category")
    # The seed's outbox rows are all older than the state the backfill just projected.
    OutboxEvent.objects.all().delete()
    metrics.reset()
    result = {
        "documents": count, "seconds": seconds, "docs_per_second": count / seconds if seconds else 0.0,
        "workers": cfg.backfill_workers, "processes": processes, "chunk": cfg.backfill_chunk,
        "dynamodb_calls_per_product": counts.dynamodb / count if count and processes == 1 else None,
    }
    clock.step("backfill", began, f"{count:,} products, {result['docs_per_second']:,.0f} documents/s")
    return result


def choose_skus(cfg: Config) -> tuple[list[str], list[str]]:
    """The read set (random active products) and every active SKU in a random order (for lag writes)."""
    from catalog.models import Product

    active = list(Product.objects.filter(is_active=True).order_by("pk").values_list("sku", flat=True))
    rng = random.Random(20240605)
    hot = rng.sample(active, min(cfg.hot_skus, len(active)))
    pool = active[:]
    rng.shuffle(pool)
    return hot, pool
