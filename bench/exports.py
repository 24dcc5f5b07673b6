"""An export's rows per second and the process's memory while it streams: ``orders.csv`` of
``rows`` order lines (four per order, placed today), inserted by SQL for the measurement and rolled
back after it.

The export's view is called directly (no WSGI handler: its end-of-request signal would close the
connection holding the rows' transaction) and its streamed chunks are counted and dropped as a
server would send them. Resident memory (``VmRSS``) is sampled every few chunks: its peak above the
level before the export is what streaming keeps bounded, whatever the number of rows."""

from __future__ import annotations

import gc
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIRequestFactory, force_authenticate

from ops.exports import OrdersExportApi

LINES_PER_ORDER = 4
SAMPLE_EVERY = 10  # chunks


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _insert_order_lines(user_id: int, rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orders_order (user_id, idempotency_key, currency, total, note, cart_version, created_at)"
            " SELECT %s, 'bench-export-' || g, 'EUR', 40.00, '', 1, now() FROM generate_series(1, %s) g",
            [user_id, -(-rows // LINES_PER_ORDER)],
        )
        cursor.execute(
            "INSERT INTO orders_orderline (order_id, product_id, sku, name, quantity, unit_price)"
            " SELECT o.id, p.id, p.sku, p.name, 1, 10.00 FROM orders_order o"
            " CROSS JOIN (SELECT id, sku, name FROM catalog_product ORDER BY id LIMIT %s) p"
            " WHERE o.user_id = %s",
            [LINES_PER_ORDER, user_id],
        )
        cursor.execute("ANALYZE orders_order, orders_orderline")  # plans as for tables of this size


def export(rows: int = 1_000_000) -> dict[str, Any]:
    """Stream ``orders.csv`` over ``rows`` order lines (and any other order placed since the range's
    start): rows/s, MB, and resident memory (MB) before and at its peak during the export."""
    with transaction.atomic():
        user = get_user_model().objects.create_superuser(f"bench-export-{time.time_ns()}", password=None)
        began = time.perf_counter()
        _insert_order_lines(user.pk, rows)
        inserted_s = time.perf_counter() - began
        # A range no export of an earlier run had: this one streams from Postgres, not from Redis.
        today = timezone.now().date()
        since = today - timedelta(days=random.randrange(1, 36_500))
        query = {"since": since.isoformat(), "until": today.isoformat()}
        request = APIRequestFactory().get("/api/internal/exports/orders.csv", query)
        force_authenticate(request, user=user)
        gc.collect()
        baseline = peak = rss_mb()
        began = time.perf_counter()
        response = OrdersExportApi.as_view()(request)
        lines = size = 0
        for number, chunk in enumerate(response.streaming_content):
            lines += chunk.count(b"\n")
            size += len(chunk)
            if number % SAMPLE_EVERY == 0:
                peak = max(peak, rss_mb())
        seconds = time.perf_counter() - began
        response.close()
        transaction.set_rollback(True)
    exported = lines - 1  # the header
    return {
        "rows": exported, "seconds": round(seconds, 2), "rows_per_s": round(exported / seconds),
        "mb": round(size / 2**20, 1), "insert_seconds": round(inserted_s, 1),
        "rss_before_mb": round(baseline, 1), "rss_peak_mb": round(peak, 1), "rss_growth_mb": round(peak - baseline, 1),
    }
