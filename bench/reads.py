"""Phase 3: the six read paths in process: latency percentiles, Postgres queries, DynamoDB calls
and Redis round trips per request."""

from __future__ import annotations

import gc
import time
from typing import Any

from bench import report
from bench.config import Clock, Config, log
from bench.paths import PATHS, URLS

EXPECTED_SOURCE = {"hit": "cache", "dynamodb": "dynamodb", "cold": "postgres"}


def in_process(cfg: Config, hot: list[str], clock: Clock) -> tuple[dict[str, Any], dict[str, list[float]]]:
    from bench.inprocess import Driver, count_calls
    from bench.state import Unprojector, forget_cached

    driver = Driver()
    unproject = Unprojector(hot)
    before = {"dynamodb": lambda sku: forget_cached([sku]), "cold": lambda sku: unproject([sku])}
    results: dict[str, Any] = {}
    raw: dict[str, list[float]] = {}
    for name in PATHS:
        began = time.perf_counter()

        def requests(n: int, offset: int = 0) -> list[tuple[str, str]]:
            skus = [hot[(offset + i) % len(hot)] for i in range(n)]
            return [(sku, URLS[name](sku)) for sku in skus]  # noqa: B023 (called in this iteration only)

        prepare = before.get(name)
        # The hit's warm-up reads every hot SKU: a backfill stores no document Redis does not hold.
        warm = max(cfg.warmup[name], len(hot)) if name == "hit" else cfg.warmup[name]
        for sku, path in requests(warm):
            if prepare:
                prepare(sku)
            response = driver.get(path)
            if response.status != 200:
                raise RuntimeError(f"{name}: warm-up got {response.status}: {response.body[:300]!r}")
        counts = count_calls(driver, requests(cfg.count_requests), prepare)
        n = cfg.requests[name]
        gc.collect()
        latencies, outcomes = driver.timed(requests(n, offset=cfg.count_requests), prepare)
        raw[name] = latencies
        results[name] = {
            "latency_us": report.summarize(latencies),
            "counts": counts.per_request(),
            "outcomes": {f"{status} {source}".strip(): k for (status, source), k in outcomes.items()},
        }
        summary = results[name]["latency_us"]
        clock.step(
            f"in-process {name}", began, f"p50 {summary['p50']:,.0f} µs, p99 {summary['p99']:,.0f} µs over {n:,};"
            f" {counts.per_request()}; {results[name]['outcomes']}",
        )
        expected = EXPECTED_SOURCE.get(name)
        if expected and outcomes.get((200, expected), 0) != n:
            log(f"  note: {name} answered {results[name]['outcomes']} (expected all '200 {expected}')")
    return results, raw
