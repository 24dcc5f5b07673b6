"""Price updates through ``catalog.services.price_set`` at a fixed rate (open loop), in its own process.

    python -m bench.writer --rate 100 --seconds 20 --mode random --skus-file F [--seed N]

``random`` picks each product uniformly from the SKUs (a write load on the read set); ``distinct``
writes each SKU at most once, in order (so that every document's own timestamps time exactly one
write). Writes are scheduled at ``start + i / rate`` and spread over a few processes (one per 100
writes/s: one process's interpreter lock would cap the rate) of a few threads each, each thread
with its own database connection, so that one slow commit does not hold the others back. Prints
``READY``, waits for a line on stdin, runs, then prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402


def warm_up() -> None:
    """The Redis connection and the broker producer that a kick after each commit uses."""
    from django_redis import get_redis_connection

    from projections.tasks import relay_outbox

    get_redis_connection("default").ping()
    relay_outbox.delay()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--mode", choices=["random", "distinct"], required=True)
    parser.add_argument("--skus-file", required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    django.setup()
    from django.db import connection

    from catalog.models import Product
    from catalog.services import price_set

    skus = Path(args.skus_file).read_text().split()
    products = {p.sku: p for p in Product.objects.filter(sku__in=skus).only("pk", "sku")}
    connection.close()
    total = int(args.rate * args.seconds)
    rng = random.Random(args.seed)
    if args.mode == "distinct":
        if total > len(skus):
            raise SystemExit(f"writer: {total} distinct writes need {total} SKUs, got {len(skus)}")
        plan = skus[:total]
    else:
        plan = [rng.choice(skus) for _ in range(total)]
    amounts = [Decimal(rng.randint(100, 50_000)) / 100 for _ in range(total)]
    processes = max(1, min(4, math.ceil(args.rate / 100)))
    threads = max(1, min(8, math.ceil(args.rate / processes / 25)))

    def run(share: int, connected: Any, starts: Any, results: Any) -> None:
        """Writes ``share``, ``share + processes``, ... on ``threads`` threads, from the start time given.
        A writer stands for app processes that have served writes already: each thread connects to
        Postgres before the start, and the process has published a relay kick (its first publish
        loads Celery's transport and connects: the first writes' kicks would otherwise wait 100 ms
        and more)."""
        warm_up()
        mine = list(range(share, total, processes))
        lock = threading.Lock()
        state = {"next": 0, "done": 0, "errors": 0, "max_late_ms": 0.0, "last_error": ""}
        started = threading.Event()
        start_at = [0.0]

        def work() -> None:
            try:
                connection.ensure_connection()
                connected.put(None)
                started.wait()
                start = start_at[0]
                while True:
                    with lock:
                        n = state["next"]
                        state["next"] += 1
                    if n >= len(mine):
                        return
                    i = mine[n]
                    delay = start + i / args.rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    late_ms = -delay * 1000 if delay < 0 else 0.0
                    try:
                        price_set(product=products[plan[i]], currency="EUR", amount=amounts[i])
                        with lock:
                            state["done"] += 1
                            state["max_late_ms"] = max(state["max_late_ms"], late_ms)
                    except Exception as exc:  # counted and reported; the load goes on
                        with lock:
                            state["errors"] += 1
                            state["last_error"] = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                connection.close()

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        start_at[0] = starts.get()
        started.set()
        for worker in workers:
            worker.join()
        results.put(state)

    context = multiprocessing.get_context("fork")
    connected, starts, results = context.Queue(), context.Queue(), context.Queue()
    children = [context.Process(target=run, args=(share, connected, starts, results)) for share in range(processes)]
    for child in children:
        child.start()
    for _ in range(processes * threads):
        connected.get(timeout=60)  # a thread that could not connect never reports: fail, do not hang
    print("READY", flush=True)
    sys.stdin.readline()
    start_wall, start = time.time(), time.perf_counter() + 0.01  # the clock every process shares
    for _ in children:
        starts.put(start)
    states = [results.get() for _ in children]
    for child in children:
        child.join()
    elapsed = time.perf_counter() - start
    done = sum(state["done"] for state in states)
    print(json.dumps({
        "mode": args.mode, "target_rate": args.rate, "planned": total, "done": done,
        "errors": sum(state["errors"] for state in states),
        "last_error": next((state["last_error"] for state in states if state["last_error"]), ""),
        "processes": processes, "threads": threads, "seconds": elapsed,
        "achieved_rate": done / elapsed if elapsed else 0.0,
        "max_late_ms": max(state["max_late_ms"] for state in states), "start_wall": start_wall,
        "skus": plan if args.mode == "distinct" else [],
    }), flush=True)


if __name__ == "__main__":
    main()
