"""A customer's order list on the hot path, for ``make bench``: ``GET /api/orders/`` in process,
each customer reading their own first page, once their orders are projected and the page is cached.

Orders are written in bulk (the triggers give them versions and outbox rows as for any write), one
relay drain projects them, and one read per customer fills the cache (the page, and the token's
owner as for any returning customer). Then, for each request: Postgres queries, DynamoDB calls and
Redis round trips counted (untimed), and the latency of each, one after another.

``order_list_hit`` returns the latency summary (microseconds), the counts per request (queries:
0 on a hit, the token lookup included) and the statuses and layers that answered.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from bench import report
from bench.inprocess import Driver, count_each
from catalog.models import Product
from orders.models import Order, OrderLine
from projections.relay import StopReason, drain

PATH = "/api/orders/"


def _customers_with_orders(n: int, orders_each: int, sku: str, prefix: str) -> list[str]:
    """``n`` customers with tokens, each with ``orders_each`` orders of one unit of ``sku``."""
    users = get_user_model().objects.bulk_create(get_user_model()(username=f"{prefix}-{i}") for i in range(n))
    tokens = Token.objects.bulk_create(Token(user=user, key=Token.generate_key()) for user in users)
    product = Product.objects.get(sku=sku)
    orders = Order.objects.bulk_create(
        Order(user=user, idempotency_key=f"{prefix}-{k}", currency="EUR", total="9.99", cart_version=0)
        for user in users
        for k in range(orders_each)
    )
    OrderLine.objects.bulk_create(
        OrderLine(order=order, product=product, sku=sku, name=product.name, quantity=1, unit_price="9.99")
        for order in orders
    )
    return [token.key for token in tokens]


def order_list_hit(
    *, sku: str, customers: int = 100, orders_each: int = 3, requests: int = 5000, count_requests: int = 500,
    prefix: str = "bench-orders",
) -> dict[str, Any]:
    """The first page of each customer's orders, read from the cache: latency and backend calls."""
    tokens = _customers_with_orders(customers, orders_each, sku, prefix)
    while drain().stopped_by is not StopReason.EMPTY:
        pass
    driver = Driver()

    def read(k: int) -> tuple[int, str]:
        response = driver.request("GET", PATH, HTTP_AUTHORIZATION=f"Token {tokens[k % customers]}")
        return response.status, response.headers.get("X-Served-From", "")

    warm = Counter(read(k) for k in range(customers))
    if warm.keys() - {(200, "dynamodb"), (200, "cache")}:
        raise RuntimeError(f"order list answered {dict(warm)}")
    counts = count_each(range(count_requests), read)
    gc.collect()
    latencies: list[float] = []
    outcomes: Counter[tuple[int, str]] = Counter()
    clock = time.perf_counter_ns
    for k in range(requests):
        begin = clock()
        outcome = read(k)
        latencies.append((clock() - begin) / 1000)
        outcomes[outcome] += 1
    return {
        "customers": customers, "orders_each": orders_each,
        "latency_us": report.summarize(latencies), "counts": counts.per_request(),
        "outcomes": {f"{status} {source}": n for (status, source), n in outcomes.items()},
    }
