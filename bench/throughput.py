"""Relay throughput against Celery worker processes (issue 13).

For each worker count, every product with a price is touched in one SQL statement (one outbox row
each, as a bulk change from any program writes them), a Celery worker with that many processes is
started (no beat), one relay task is queued, and the time until no outbox row is pending gives
projections per second. A relay task whose claim comes back full queues another, so idle worker
processes join in; each process projects its claimed batch as ``OUTBOX_PROJECT_THREADS`` batches
at once. The DynamoDB engine is the run's (``DYNAMODB_ENGINE``).
"""

from __future__ import annotations

import time
from typing import Any

from bench import cpu, report
from bench.writers import wait_for_outbox

WORKER_COUNTS = (1, 2, 4)


def touch_every_priced_product() -> int:
    """One statement, one outbox row per product whose price changed; returns the rows waiting."""
    from django.db import connection

    from catalog.models import OutboxEvent

    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_price SET amount = amount + 0.01")
    return OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).count()


def relay_vs_workers(procs: Any, timeout: float, log: Any) -> list[dict[str, Any]]:
    """Projections per second with 1, 2 and 4 worker processes, each on the same backlog size."""
    from django.conf import settings

    from catalog.models import OutboxEvent
    from projections import metrics
    from projections.tasks import relay_outbox

    rows = []
    for workers in WORKER_COUNTS:
        OutboxEvent.objects.all().delete()
        pending = touch_every_priced_product()
        worker = procs.worker(settings.CELERY_TASK_DEFAULT_QUEUE, concurrency=workers, beat=False)
        metrics.reset()
        began = time.perf_counter()
        with cpu.CpuByKind({"projector": worker.pid}) as used:
            relay_outbox.delay()
            seconds, left, dead = wait_for_outbox(timeout)
        procs.stop(worker)
        projected = pending - left
        row = {
            "workers": workers, "rows": pending, "seconds": seconds, "left": left, "dead": dead,
            "projections_per_second": projected / seconds if seconds else 0.0,
            "relay_lag_ms": report.summarize(metrics.lag_samples()),
            "cpu_ms_per_projection": cpu.per_unit_ms(used.seconds, projected),
        }
        rows.append(row)
        log(f"relay throughput, {workers} worker process(es): {pending:,} rows in {seconds:.1f}s,"
            f" {row['projections_per_second']:,.0f} projections/s; {left} left, {dead} dead"
            f" ({time.perf_counter() - began:.1f}s)")
    return rows


def markdown(rows: list[dict[str, Any]], engine: str) -> str:
    lines = [
        "## Relay throughput against worker processes",
        "",
        f"Every priced product touched in one statement, drained by a Celery worker of N processes ({engine}).",
        "",
        "| worker processes | outbox rows | seconds | projections/s | left | dead |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['workers']} | {row['rows']:,} | {row['seconds']:.1f} | {row['projections_per_second']:,.0f}"
            f" | {row['left']:,} | {row['dead']:,} |"
        )
    lines += ["", *cpu.table(
        "CPU milliseconds per projection, by process (read from /proc while the backlog drained):",
        [(f"{row['workers']} process(es)", row.get("cpu_ms_per_projection", {})) for row in rows],
    )]
    return "\n".join(lines) + "\n"
