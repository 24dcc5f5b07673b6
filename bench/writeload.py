"""Phase 5: hit ratio and p95 of django-cachalot and Hybridsite while price updates run (a real
Celery worker projects), and the stale versions cachalot serves afterwards."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

from bench import report
from bench.config import Clock, Config
from bench.paths import URLS
from bench.procs import Processes
from bench.writers import finish_writer, go, spawn_writer, wait_for_outbox


def under_write_load(cfg: Config, procs: Processes, hot: list[str], clock: Clock) -> list[dict[str, Any]]:
    from bench.inprocess import Driver, QueryCounter

    driver = Driver()
    rows = []
    writers = {
        rate: spawn_writer(procs, rate, cfg.load_seconds, "random", hot, f"load{rate}") for rate in cfg.load_rates
    }
    for rate, writer in writers.items():
        began = time.perf_counter()
        for sku in hot:  # warm cachalot again: the earlier phases' state should not decide its hit ratio
            driver.get(URLS["cachalot"](sku))
        counter = QueryCounter()
        rng = random.Random(rate)
        cachalot_lat: list[float] = []
        hit_lat: list[float] = []
        queries: Counter[int] = Counter()
        served: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        clock_ns = time.perf_counter_ns
        go(procs, writer)
        deadline = time.perf_counter() + cfg.load_seconds
        with counter.installed():
            while time.perf_counter() < deadline:
                sku = rng.choice(hot)
                before = counter.count
                t0 = clock_ns()
                response = driver.get(URLS["cachalot"](sku))
                cachalot_lat.append((clock_ns() - t0) / 1000)
                statuses[response.status] += 1
                queries[counter.count - before] += 1
                t0 = clock_ns()
                response = driver.get(URLS["hit"](sku))
                hit_lat.append((clock_ns() - t0) / 1000)
                statuses[response.status] += 1
                served[response.headers.get("X-Served-From", "")] += 1
        written = finish_writer(procs, writer, cfg.load_seconds + 60)
        drain, left, dead = wait_for_outbox(cfg.drain_timeout)
        n = len(cachalot_lat)
        row = {
            "writer": {k: v for k, v in written.items() if k != "skus"},
            "cachalot": {
                "latency_us": report.summarize(cachalot_lat),
                "hit_ratio": queries.get(0, 0) / n if n else 0.0,
                "partial_ratio": sum(k for q, k in queries.items() if 0 < q < 3) / n if n else 0.0,
                "queries_per_request": sum(q * k for q, k in queries.items()) / n if n else 0.0,
                "queries_histogram": {str(q): k for q, k in sorted(queries.items())},
            },
            "hit": {
                "latency_us": report.summarize(hit_lat),
                "hit_ratio": served.get("cache", 0) / len(hit_lat) if hit_lat else 0.0,
                "served_from": dict(served),
            },
            "statuses": {str(k): v for k, v in statuses.items()},
            "outbox": {"drain_seconds": drain, "pending_left": left, "dead": dead},
        }
        rows.append(row)
        clock.step(
            f"under {rate} writes/s", began, f"achieved {written['achieved_rate']:.1f} writes/s; cachalot hit ratio"
            f" {row['cachalot']['hit_ratio']:.1%} p95 {row['cachalot']['latency_us']['p95']:,.0f} µs;"
            f" Hybridsite hit ratio {row['hit']['hit_ratio']:.2%} p95 {row['hit']['latency_us']['p95']:,.0f} µs;"
            f" statuses {dict(statuses)}; outbox drained in {drain:.1f}s",
        )
    return rows


def cachalot_staleness(hot: list[str]) -> dict[str, int]:
    """cachalot never sees rows that triggers change: compare the version it serves with Postgres."""
    from bench.inprocess import Driver
    from catalog.models import Product

    driver = Driver()
    sample = hot[:200]
    truth = dict(Product.objects.filter(sku__in=sample).values_list("sku", "version"))
    stale = 0
    for sku in sample:
        served = json.loads(driver.get(URLS["cachalot"](sku)).body)["version"]
        stale += served != truth[sku]
    return {"checked": len(sample), "stale_version": stale}
