"""Search in process: ``GET /api/products/`` through Django's WSGI handler, each query asked once
uncached (its SKUs computed by Postgres' full-text search, the page read from the hot path) and then
again cached (its SKUs from Redis), with the backend calls of each counted.

Queries are a brand and a style of the demo catalog, with a filter or an order now and then, and a
price ceiling above every price that differs per run: every query of a run is one Redis has never
held. The throttle is lifted for the measurement."""

from __future__ import annotations

import gc
import random
import time
from typing import Any
from urllib.parse import urlencode

from django.test import override_settings

from bench import report
from bench.inprocess import Driver, Response, count_each
from catalog.management.commands.seed_demo import BRANDS, STYLES

PATH = "/api/products/"
EXTRAS: tuple[dict[str, str], ...] = ({}, {"in_stock": "true"}, {"sort": "price_asc"}, {"min_price": "20"})


def _queries(n: int, rng: random.Random) -> list[str]:
    """``n`` queries, each with a price ceiling of its own (so each is a key of its own), all above
    every price and unlike any earlier run's."""
    ceiling = rng.randrange(10**6, 10**7 - n)
    cents = f"{rng.randrange(100):02d}"
    words = [(brand, style) for brand in BRANDS for style in STYLES]
    paths = []
    for number in range(n):
        brand, style = words[number % len(words)]
        query = {"q": f"{brand} {style}", **EXTRAS[number // len(words) % len(EXTRAS)],
                 "max_price": f"{ceiling + number}.{cents}"}
        if number >= len(words) * len(EXTRAS):
            query["limit"] = str(10 + number % 40)
        paths.append(urlencode(query))
    return paths


def _get(driver: Driver, query: str) -> Response:
    return driver.get(f"{PATH}?{query}")


def _timed(driver: Driver, queries: list[str], expected: str) -> tuple[list[float], dict[str, int]]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    for query in queries:
        began = time.perf_counter_ns()
        response = _get(driver, query)
        latencies.append((time.perf_counter_ns() - began) / 1000)
        outcome = f"{response.status} {response.headers.get('X-Served-From', '')}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if outcomes.get(f"200 {expected}") != len(queries):
        raise RuntimeError(f"searches expected from {expected} answered {outcomes}: {response.body[:300]!r}")
    return latencies, outcomes


def search(n: int = 300, count_requests: int = 30) -> dict[str, Any]:
    """p50/p95/p99 of ``n`` searches uncached, then the same ``n`` cached; Postgres queries, DynamoDB
    calls and Redis round trips per search over ``count_requests`` more of each kind."""
    rng = random.Random(time.time_ns())
    queries = _queries(n + count_requests, rng)
    timed, counted = queries[:n], queries[n:]
    driver = Driver()

    with override_settings(THROTTLE_SEARCH_PER_MINUTE=10**9, THROTTLE_SEARCH_FILLS_PER_MINUTE=10**9):
        counts_uncached = count_each(counted, lambda query: _get(driver, query))
        counts_cached = count_each(counted, lambda query: _get(driver, query))
        gc.collect()
        uncached, _ = _timed(driver, timed, "postgres")
        cached, _ = _timed(driver, timed, "cache")
    return {
        "uncached_us": report.summarize(uncached), "cached_us": report.summarize(cached),
        "counts_uncached": counts_uncached.per_request(), "counts_cached": counts_cached.per_request(),
    }
