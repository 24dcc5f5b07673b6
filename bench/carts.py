"""Cart writes and their write-back, in ``make bench``.

1. ``PUT /api/cart/items/<sku>/`` in process, one after another, spread over many customers (each
   request changes its cart: another quantity of one of five products), with the Postgres queries,
   DynamoDB calls and Redis round trips of each counted; then over HTTP (gunicorn, 2 sync workers)
   for req/s.
2. The write-back lag at a sustained 100 cart writes/s with a real ``manage.py streams_consume``
   process: each write goes to a customer without a cart, so the cart's row appearing in Postgres
   times exactly that write. A poller asks Postgres every ``POLL_SECONDS`` which of the written
   carts are there; the lag of a write is from its acknowledgement by DynamoDB (the stream record
   exists) to the first poll that sees its row committed (so up to one poll too high).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections
from rest_framework.authtoken.models import Token

from bench import report
from bench.config import Clock, Config, log
from bench.inprocess import Driver, count_each
from bench.loadgen import _worker as http_worker
from bench.procs import LOG_DIR, Processes, wait_started
from carts.models import CartCopy
from carts.services import cart_line_set

BASE_DIR = Path(__file__).resolve().parent.parent
CUSTOMERS = 200
LINES = 5  # products per customer's cart: each request sets one of them to another quantity
POLL_SECONDS = 0.01
WRITEBACK_RATE = 100.0
WRITER_THREADS = 16


class Customers:
    """Bench customers with tokens; the ``n``-th request of a customer sets product ``n % 5`` of its
    own five to a quantity it does not hold (``n // 5 % 9 + 1``), so every request writes."""

    def __init__(self, n: int, skus: list[str], prefix: str) -> None:
        users = get_user_model().objects.bulk_create(
            get_user_model()(username=f"{prefix}-{i}") for i in range(n)
        )
        tokens = Token.objects.bulk_create(Token(user=user, key=Token.generate_key()) for user in users)
        self.tokens = [token.key for token in tokens]
        self.user_ids = [user.pk for user in users]
        self.skus = [[skus[(i * LINES + k) % len(skus)] for k in range(LINES)] for i in range(n)]
        self.sent = [0] * n

    def request(self, i: int) -> tuple[str, str, bytes]:
        """(token, path, body) of customer ``i``'s next write."""
        n = self.sent[i]
        self.sent[i] += 1
        body = json.dumps({"quantity": n // LINES % 9 + 1}).encode()
        return self.tokens[i], f"/api/cart/items/{self.skus[i][n % LINES]}/", body


def _put(driver: Driver, token: str, path: str, body: bytes) -> int:
    return driver.request(
        "PUT", path, body, HTTP_AUTHORIZATION=f"Token {token}", CONTENT_TYPE="application/json"
    ).status


def in_process(customers: Customers, requests: int, count_requests: int) -> dict[str, Any]:
    driver = Driver()
    n = len(customers.tokens)
    for i in range(n):  # each token once: its owner is then cached in Redis, as for any returning customer
        if (status := _put(driver, *customers.request(i))) != 200:
            raise RuntimeError(f"cart write answered {status}")
    def write_once(k: int) -> None:
        if (status := _put(driver, *customers.request(k % n))) != 200:
            raise RuntimeError(f"cart write answered {status}")

    counts = count_each(range(count_requests), write_once)
    gc.collect()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    for k in range(requests):
        token, path, body = customers.request(k % n)
        began = time.perf_counter_ns()
        status = _put(driver, token, path, body)
        latencies.append((time.perf_counter_ns() - began) / 1000)
        statuses[status] += 1
    return {
        "latency_us": report.summarize(latencies), "counts": counts.per_request(),
        "statuses": {str(status): k for status, k in statuses.items()},
    }


def over_http(procs: Processes, customers: Customers, seconds: float, concurrency: int) -> dict[str, Any]:
    """Each connection walks the requests from its own offset (bench/loadgen.py's worker)."""
    port = procs.gunicorn(workers=2)
    try:
        rounds = 9 * LINES  # every quantity of every line once: the cycle never repeats a write
        payloads = []
        for _ in range(rounds):
            for i in range(len(customers.tokens)):
                token, path, body = customers.request(i)
                payloads.append(
                    f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nAccept: application/json\r\n"
                    "Connection: close\r\n\r\n".encode() + body
                )
        out: dict[str, Any] = {"status": {}, "served_from": {}, "errors": {}, "latencies": []}

        async def load() -> float:
            began = time.perf_counter()
            stride = max(len(payloads) // concurrency, 1)
            deadline = began + seconds
            await asyncio.gather(*(http_worker(port, payloads, n * stride, deadline, out) for n in range(concurrency)))
            return time.perf_counter() - began

        elapsed = asyncio.run(load())
    finally:
        for _, process in [p for p in procs.running if p[0] == "gunicorn"]:
            procs.stop(process)
    latencies = sorted(out["latencies"])
    return {
        "generator": f"python asyncio (bench/loadgen.py's worker), {concurrency} connections",
        "requests": len(latencies), "requests_per_second": len(latencies) / elapsed,
        "latency_us": {"p50": report.percentile(latencies, 50), "p99": report.percentile(latencies, 99)},
        "status": out["status"], "errors": out["errors"],
    }


def start_consumer(procs: Processes) -> Any:
    log = LOG_DIR / "streams.log"  # written anew by procs.start
    process = procs.start("streams", [sys.executable, str(BASE_DIR / "manage.py"), "streams_consume"])
    wait_started(process, lambda: b" started" in log.read_bytes(), "streams consumer", 60)
    return process


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def writeback_lag(customers: Customers, skus: list[str], seconds: float) -> dict[str, Any]:
    """``WRITEBACK_RATE`` cart writes a second (open loop: write ``i`` is due at ``start + i / rate``,
    spread over ``WRITER_THREADS``), each a new cart; lag = acknowledgement → seen in Postgres."""
    user_ids = customers.user_ids
    total = len(user_ids)
    acknowledged: dict[int, float] = {}
    seen: dict[int, float] = {}
    lock = threading.Lock()
    errors: Counter[str] = Counter()
    start = time.perf_counter() + 0.2

    def writer(first: int) -> None:
        for i in range(first, total, WRITER_THREADS):
            delay = start + i / WRITEBACK_RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                cart_line_set(user_id=user_ids[i], sku=skus[i % len(skus)], quantity=1)
            except Exception as exc:  # noqa: BLE001  (counted and reported: the bench goes on)
                errors[type(exc).__name__] += 1
                continue
            with lock:
                acknowledged[user_ids[i]] = time.perf_counter()

    stop = threading.Event()

    def poller() -> None:
        try:
            while not stop.is_set():
                with lock:
                    waiting = [user_id for user_id in acknowledged if user_id not in seen]
                if waiting:
                    asked = time.perf_counter()  # a row committed before this query began is seen by it
                    for user_id in CartCopy.objects.filter(user_id__in=waiting).values_list("user_id", flat=True):
                        seen[user_id] = asked
                time.sleep(POLL_SECONDS)
        finally:
            connections.close_all()

    watcher = threading.Thread(target=poller)
    watcher.start()
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(WRITER_THREADS)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    finished = time.perf_counter()
    _wait(lambda: len(seen) >= len(acknowledged), 60)
    stop.set()
    watcher.join()
    lags = [(seen[user_id] - acknowledged[user_id]) * 1000 for user_id in acknowledged if user_id in seen]
    return {
        "target_rate": WRITEBACK_RATE, "writes": len(acknowledged),
        "achieved_rate": len(acknowledged) / (finished - start) if finished > start else 0.0,
        "lag_ms": report.summarize(lags), "not_copied": len(acknowledged) - len(lags),
        "errors": dict(errors), "poll_ms": POLL_SECONDS * 1000, "writer_threads": WRITER_THREADS,
    }


def carts(*, quick: bool, procs: Processes, hot: list[str], count_requests: int, concurrency: int,
          log: Callable[[str], None]) -> dict[str, Any]:
    requests, http_seconds, lag_seconds = (300, 3.0, 5.0) if quick else (2_000, 10.0, 15.0)
    customers = Customers(CUSTOMERS, hot, "bench-cart")
    write = in_process(customers, requests, count_requests)
    lat = write["latency_us"]
    log(f"cart write in process: p50 {lat['p50']:,.0f} µs, p95 {lat['p95']:,.0f} µs over {lat['n']:,};"
        f" {write['counts']}; {write['statuses']}")
    http = over_http(procs, customers, http_seconds, concurrency)
    log(f"cart write over HTTP: {http['requests_per_second']:,.0f} req/s, status {http['status']},"
        f" errors {http['errors']}")

    consumer = start_consumer(procs)
    try:
        # Caught up with every earlier cart write (the stream's order: a new cart written now is
        # copied after all of them).
        (sentinel,) = Customers(1, hot, "bench-cart-sentinel").user_ids
        cart_line_set(user_id=sentinel, sku=hot[0], quantity=1)
        if not _wait(lambda: CartCopy.objects.filter(user_id=sentinel).exists(), 120):
            raise RuntimeError(f"the streams consumer did not catch up (see {LOG_DIR}/streams.log)")
        lag = writeback_lag(Customers(int(WRITEBACK_RATE * lag_seconds), hot, "bench-lag"), hot, lag_seconds)
    finally:
        procs.stop(consumer)
    summary = lag["lag_ms"]
    log(f"write-back lag at {lag['target_rate']:g} writes/s (achieved {lag['achieved_rate']:.1f}):"
        f" p50 {summary['p50']:.1f} ms, p95 {summary['p95']:.1f} ms over {summary['n']:,};"
        f" not copied {lag['not_copied']}; errors {lag['errors']}")
    return {"write": write, "http": http, "writeback": lag}


def phase(cfg: Config, procs: Processes, hot: list[str], clock: Clock) -> dict[str, Any]:
    began = time.perf_counter()
    result = carts(quick=cfg.quick, procs=procs, hot=hot, count_requests=cfg.count_requests,
                   concurrency=cfg.concurrency, log=log)
    clock.step("carts", began, "cart writes (in process, HTTP) and the write-back lag")
    return result
