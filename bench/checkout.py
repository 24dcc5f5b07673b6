"""Checkout in process: ``POST /api/orders/`` through Django's WSGI handler, one after another, each
by its own customer (a fresh Idempotency-Key, a two-line cart of hot products filled beforehand
through the cart services, untimed), with the backend calls of each checkout counted."""

from __future__ import annotations

import gc
import random
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Sum
from rest_framework.authtoken.models import Token

from bench import report
from bench.config import Clock, Config
from bench.inprocess import Driver, count_each
from carts.services import cart_line_set
from catalog.models import Product


def _customers(n: int, skus: list[str], rng: random.Random) -> list[tuple[str, str]]:
    """``n`` customers with a token and a cart of two products; (token, key) each."""
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench-customer-{i}") for i in range(n)
    )
    tokens = Token.objects.bulk_create(Token(user=user, key=Token.generate_key()) for user in users)
    for user in users:
        for sku in rng.sample(skus, 2):
            cart_line_set(user_id=user.pk, sku=sku, quantity=1)
    return [(token.key, f"bench-{token.user_id}") for token in tokens]


def checkout(n: int, count_requests: int, hot: list[str]) -> dict[str, Any]:
    """p50/p95/p99 of ``n`` checkouts, and Postgres queries, DynamoDB calls and Redis round trips
    per checkout over ``count_requests`` more."""
    stocked = list(
        Product.objects.filter(sku__in=hot).annotate(total=Sum("stock_levels__quantity"))
        .filter(total__gte=n + count_requests).values_list("sku", flat=True)
    )
    rng = random.Random(20261123)
    customers = _customers(n + count_requests, stocked, rng)
    driver = Driver()

    def place(token: str, key: str) -> int:
        return driver.request(
            "POST", "/api/orders/", b"{}",
            HTTP_AUTHORIZATION=f"Token {token}", HTTP_IDEMPOTENCY_KEY=key, CONTENT_TYPE="application/json",
        ).status

    def place_once(customer: tuple[str, str]) -> None:
        if (status := place(*customer)) != 201:
            raise RuntimeError(f"checkout answered {status}")

    counts = count_each(customers[:count_requests], place_once)
    gc.collect()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    for token, key in customers[count_requests:]:
        began = time.perf_counter_ns()
        status = place(token, key)
        latencies.append((time.perf_counter_ns() - began) / 1000)
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "latency_us": report.summarize(latencies), "counts": counts.per_request(),
        "statuses": {str(status): k for status, k in statuses.items()}, "products": len(stocked),
    }


def phase(cfg: Config, hot: list[str], clock: Clock) -> dict[str, Any]:
    began = time.perf_counter()
    result = checkout(cfg.checkouts, cfg.count_requests, hot)
    summary = result["latency_us"]
    clock.step(
        "checkout", began, f"p50 {summary['p50']:,.0f} µs, p99 {summary['p99']:,.0f} µs over {summary['n']:,};"
        f" {result['counts']}; {result['statuses']}",
    )
    return result
