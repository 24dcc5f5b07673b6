"""`make bench`: Hybridsite's read path side by side with the ORM and django-cachalot (issue 5).

    make bench            # full: 10,000 products, under 10 minutes
    make bench QUICK=1    # short: 2,000 products, under 2 minutes (or bench/run.py --quick)

Run by ``python -m devtools.launcher bench``, which provides the services' URLs, a SECRET_KEY and
DJANGO_SETTINGS_MODULE=bench.settings. Steps, all in one run on the same data:

1. a fresh ``hybridsite_bench`` database (migrated), ``bench-`` DynamoDB tables, ``hs-bench-`` Redis keys;
2. ``seed_demo``, DynamoDB Local warmed up (its JVM compiles as it serves), a timed backfill (documents/second);
3. six read paths in process (latency percentiles, Postgres queries, DynamoDB calls, Redis round trips),
   the hot read's breakdown beside the floor (bench/hotpath.py), then checkout (``POST /api/orders/``)
   the same way; then cart writes and their write-back lag (bench/carts.py);
4. the same paths over HTTP: gunicorn with 2 sync workers and wrk, or bench/loadgen.py without wrk;
   then reads while Postgres is saturated and stopped (bench/suffering.py);
5. hit ratio and p95 of cachalot and Hybridsite while price updates run (a real Celery worker projects);
6. projection lag at sustained write rates, from the documents' own timestamps;
7. relay throughput against 1, 2 and 4 worker processes (bench/throughput.py).

Phases 6 and 7 also say how much CPU each kind of process spent per write (bench/cpu.py).

It asserts nothing about speed. Results: bench/results/latest.md, latest.json and PNG plots.
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[0] = str(BASE_DIR)  # run as a script: import the project, not bench/'s modules by bare name
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

from bench import cpu, hotpath, report, suffering, throughput  # noqa: E402
from bench.paths import PATHS, URLS  # noqa: E402
from bench.procs import LOG_DIR, Processes  # noqa: E402

EXPECTED_SOURCE = {"hit": "cache", "dynamodb": "dynamodb", "cold": "postgres"}


@dataclass(frozen=True)
class Config:
    quick: bool
    products: int
    hot_skus: int
    requests: dict[str, int]
    warmup: dict[str, int]
    count_requests: int
    http_seconds: float
    http_warmup_seconds: float
    load_rates: tuple[int, ...] = (10, 100)
    load_seconds: float = 15.0
    lag_seconds: dict[int, float] = field(default_factory=lambda: {50: 15.0, 200: 10.0})
    drain_timeout: float = 150.0
    cold_skus: int = 1_500
    backfill_workers: int = 4
    backfill_chunk: int = 500
    concurrency: int = 16
    checkouts: int = 300
    warmup_puts: int = 20_000

    @classmethod
    def full(cls) -> Config:
        return cls(
            quick=False, products=10_000, hot_skus=1_000,
            requests={"floor": 20_000, "orm": 2_000, "cachalot": 2_000, "hit": 10_000, "dynamodb": 1_000, "cold": 300},
            warmup={"floor": 300, "orm": 50, "cachalot": 1_000, "hit": 300, "dynamodb": 20, "cold": 10},
            count_requests=30, http_seconds=10.0, http_warmup_seconds=1.0,
        )

    @classmethod
    def short(cls) -> Config:
        return cls(
            quick=True, products=2_000, hot_skus=200,
            requests={"floor": 2_000, "orm": 300, "cachalot": 300, "hit": 2_000, "dynamodb": 200, "cold": 60},
            warmup={"floor": 100, "orm": 20, "cachalot": 200, "hit": 100, "dynamodb": 10, "cold": 5},
            count_requests=10, http_seconds=3.0, http_warmup_seconds=0.3,
            load_seconds=3.0, lag_seconds={50: 3.0, 200: 2.0}, drain_timeout=60.0, cold_skus=300, checkouts=60,
            warmup_puts=10_000,
        )


def log(message: str) -> None:
    print(f"bench | {message}", file=sys.stderr, flush=True)


@dataclass
class Clock:
    started: float = field(default_factory=time.perf_counter)
    steps: dict[str, float] = field(default_factory=dict)

    def step(self, name: str, began: float, detail: str = "") -> None:
        self.steps[name] = round(time.perf_counter() - began, 1)
        log(f"{name}: {detail + '; ' if detail else ''}{self.steps[name]:.1f}s")


# --- 1. isolated state --------------------------------------------------------------------------


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


# --- 3. in process ---------------------------------------------------------------------------------


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
        for sku, path in requests(cfg.warmup[name]):
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


def checkout(cfg: Config, hot: list[str], clock: Clock) -> dict[str, Any]:
    from bench.checkout import checkout as run_checkout

    began = time.perf_counter()
    result = run_checkout(cfg.checkouts, cfg.count_requests, hot)
    summary = result["latency_us"]
    clock.step(
        "checkout", began, f"p50 {summary['p50']:,.0f} µs, p99 {summary['p99']:,.0f} µs over {summary['n']:,};"
        f" {result['counts']}; {result['statuses']}",
    )
    return result


def cart_writes(cfg: Config, procs: Processes, hot: list[str], clock: Clock) -> dict[str, Any]:
    from bench.carts import carts

    began = time.perf_counter()
    result = carts(quick=cfg.quick, procs=procs, hot=hot, count_requests=cfg.count_requests,
                   concurrency=cfg.concurrency, log=log)
    clock.step("carts", began, "cart writes (in process, HTTP) and the write-back lag")
    return result


# --- 4. over HTTP ----------------------------------------------------------------------------------


def run_wrk(port: int, paths: list[str], seconds: float, concurrency: int, once: bool = False) -> dict[str, Any]:
    """wrk's threads each walk the paths from their own offset and count the answers by
    X-Served-From; with ``once`` a thread stops after its share (each path read about once: a
    Redis-miss path wrapping around would be read from the cache)."""
    script = LOG_DIR / "paths.lua"
    quoted = ", ".join(json.dumps(path) for path in paths)
    script.write_text(
        f"local paths = {{{quoted}}}\nlocal limit = {len(paths) // 2 if once else 0}\n"
        "local threads = {}\nlocal i = 0\nlocal answered = 0\nserved = {}\n"
        "function setup(thread)\n  thread:set(\"offset\", #threads)\n  table.insert(threads, thread)\nend\n"
        "function request()\n  i = i + 1\n"
        "  local n = ((offset or 0) * math.floor(#paths / 2) + i) % #paths + 1\n"
        "  return wrk.format(\"GET\", paths[n])\nend\n"
        "function response(status, headers, body)\n"
        "  local source = headers[\"X-Served-From\"] or \"-\"\n"
        "  served[source] = (served[source] or 0) + 1\n  answered = answered + 1\n"
        "  if limit > 0 and answered >= limit then wrk.thread:stop() end\nend\n"
        "function done(summary, latency, requests)\n"
        "  io.write(string.format(\"p95_us %d\\n\", latency:percentile(95)))\n"
        "  for _, thread in ipairs(threads) do\n"
        "    for source, n in pairs(thread:get(\"served\")) do\n"
        "      io.write(string.format(\"served %s %d\\n\", source, n))\n    end\n"
        "  end\nend\n"
    )
    completed = subprocess.run(
        ["wrk", "-t2", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    text = completed.stdout

    def number(pattern: str, default: float = 0.0) -> float:
        match = re.search(pattern, text)
        return float(match.group(1)) if match else default

    def duration_us(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        if not match:
            return float("nan")
        return float(match.group(1)) * {"us": 1, "ms": 1_000, "s": 1_000_000}[match.group(2)]

    requests = int(number(r"(\d+) requests in"))
    served: Counter[str] = Counter()
    for source, n in re.findall(r"^served (\S+) (\d+)$", text, re.MULTILINE):
        served[source] += int(n)
    non_2xx = int(number(r"Non-2xx or 3xx responses:\s+(\d+)"))
    errors = {}
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket_errors:
        errors = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), socket_errors.groups()) if int(v)}
    return {
        "generator": f"wrk -t2 -c{concurrency}",
        "requests": requests,
        "requests_per_second": number(r"Requests/sec:\s+([\d.]+)"),
        "status": {"200": requests - non_2xx, **({"non-2xx": non_2xx} if non_2xx else {})},
        "errors": errors,
        "latency_us": {
            "p50": duration_us("50"), "p95": number(r"p95_us (\d+)", float("nan")), "p99": duration_us("99"),
        },
        "served_from": dict(served),
        "raw": text,
    }


def run_loadgen(procs: Processes, port: int, paths: list[str], seconds: float, concurrency: int) -> dict[str, Any]:
    paths_file = LOG_DIR / "paths.txt"
    paths_file.write_text("\n".join(paths))
    process = procs.start(
        "loadgen",
        [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--concurrency", str(concurrency),
         "--seconds", str(seconds), "--paths-file", str(paths_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = process.communicate(timeout=seconds + 120)
    procs.stop(process)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode(errors='replace')[-2000:]}")
    return json.loads(out)


def over_http(cfg: Config, procs: Processes, hot: list[str], others: list[str], clock: Clock) -> dict[str, Any]:
    """Paths 1-4 cycle over the read set. Path 5 reads products whose Redis entries were dropped,
    path 6 products whose Redis entries and DynamoDB items were dropped, each SKU once (the
    load generator's connections walk disjoint slices), so every request is a miss of its kind."""
    from bench.state import Unprojector, forget_cached

    began = time.perf_counter()
    port = procs.gunicorn(workers=2)
    clock.step("gunicorn", began, f"2 sync workers, bench settings, on 127.0.0.1:{port}")
    wrk = shutil.which("wrk")

    def load(paths: list[str], seconds: float, once: bool) -> dict[str, Any]:
        if wrk:
            return run_wrk(port, paths, seconds, cfg.concurrency, once)
        return run_loadgen(procs, port, paths, seconds, cfg.concurrency)

    results: dict[str, Any] = {}
    generator = ""
    try:
        for name in PATHS:
            began = time.perf_counter()
            if name == "dynamodb":
                skus = others
                forget_cached(skus)
            elif name == "cold":
                skus = others[:cfg.cold_skus]
                Unprojector(skus)(skus)
            else:
                skus = hot
            paths = list(dict.fromkeys(URLS[name](sku) for sku in skus))
            warm = max(1, len(paths) // 10) if name in ("dynamodb", "cold") else len(paths)
            once = name in ("dynamodb", "cold")  # each SKU read once: a second read would be a hit
            load(paths[-warm:], cfg.http_warmup_seconds, once)
            measured = load(paths[:-warm] if warm < len(paths) else paths, cfg.http_seconds, once)
            generator = measured.pop("generator")
            results[name] = measured
            clock.step(
                f"HTTP {name}", began, f"{measured['requests_per_second']:,.0f} req/s, status {measured['status']},"
                f" served from {measured.get('served_from', '?')}, errors {measured['errors']}",
            )
    finally:
        for _, process in [p for p in procs.running if p[0] == "gunicorn"]:
            procs.stop(process)
    if not wrk:
        generator += " (wrk is not on PATH; `apt-get install wrk` and it is used instead)"
    return {"generator": generator, "paths": results}


# --- 5 and 6. under write load ---------------------------------------------------------------------


def spawn_writer(procs: Processes, rate: float, seconds: float, mode: str, skus: list[str], tag: str):
    """Start a writer process; it loads Django and its products, then waits for ``go()``."""
    skus_file = LOG_DIR / f"skus-{tag}.txt"
    skus_file.write_text("\n".join(skus))
    with open(LOG_DIR / f"writer-{tag}.log", "wb") as errors:
        process = procs.start(
            f"writer-{tag}",
            [sys.executable, str(BASE_DIR / "bench" / "writer.py"), "--rate", str(rate), "--seconds", str(seconds),
             "--mode", mode, "--skus-file", str(skus_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
        )
    return process


def go(procs: Processes, process) -> None:
    line = process.stdout.readline()
    if line.strip() != b"READY":
        procs.stop(process)
        raise RuntimeError(f"a writer did not start (see {LOG_DIR}/writer-*.log): {line!r}")
    process.stdin.write(b"GO\n")
    process.stdin.flush()


def finish_writer(procs: Processes, process, timeout: float) -> dict[str, Any]:
    out, _ = process.communicate(timeout=timeout)
    procs.stop(process)
    lines = out.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"writer failed with {process.returncode} (see {LOG_DIR})")
    result = json.loads(lines[-1])
    if result["errors"]:
        log(f"  writer: {result['errors']} failed writes, last: {result['last_error']}")
    return result


def wait_for_outbox(timeout: float) -> tuple[float, int, int]:
    """Seconds until no outbox row is pending, the pending rows left at the timeout, dead rows."""
    from catalog.models import OutboxEvent

    began = time.perf_counter()
    pending = OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING)
    while pending.exists() and time.perf_counter() - began < timeout:
        time.sleep(0.05)
    left = pending.count()
    dead = OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD).count()
    return time.perf_counter() - began, left, dead


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


def spawn_lag_writers(cfg: Config, procs: Processes, pool: list[str]) -> dict[int, Any]:
    """One writer per rate, each on SKUs of its own: every product is written once in the lag phase."""
    writers = {}
    offset = 0
    for rate, seconds in cfg.lag_seconds.items():
        n = int(rate * seconds)
        writers[rate] = spawn_writer(procs, rate, seconds, "distinct", pool[offset:offset + n], f"lag{rate}")
        offset += n
    return writers


def projection_lag(
    cfg: Config, procs: Processes, writers: dict[int, Any], worker: subprocess.Popen, clock: Clock
) -> list[dict[str, Any]]:
    from projections import metrics
    from projections.tables import ProductDocument

    rows = []
    for rate, writer in writers.items():
        began = time.perf_counter()
        metrics.reset()
        with cpu.CpuByKind({"projector": worker.pid, "writer": writer.pid}) as used:
            go(procs, writer)
            written = finish_writer(procs, writer, cfg.lag_seconds[rate] + 120)
            drain, left, dead = wait_for_outbox(cfg.drain_timeout)
        start_wall = written["start_wall"]
        points: list[tuple[float, float]] = []
        missing = 0
        for document in ProductDocument.batch_get(written["skus"]):
            if not document.source_committed_at or not document.projected_at:
                missing += 1
                continue
            committed = datetime.fromisoformat(document.source_committed_at).timestamp()
            projected = datetime.fromisoformat(document.projected_at).timestamp()
            if committed < start_wall - 1:  # still the backfilled state: this write was not projected
                missing += 1
                continue
            points.append((committed - start_wall, (projected - committed) * 1000))
        points.sort()
        relay_samples = metrics.lag_samples()
        row = {
            "writer": {k: v for k, v in written.items() if k != "skus"},
            "lag_ms": report.summarize([lag for _, lag in points]),
            "not_projected": len(written["skus"]) - len(points),
            "drain_seconds": drain,
            "outbox": {"pending_left": left, "dead": dead},
            "relay_lag_samples": report.summarize(relay_samples),
            "cpu_ms_per_write": cpu.per_unit_ms(used.seconds, written["done"]),
            "points": points,
        }
        rows.append(row)
        lag = row["lag_ms"]
        clock.step(
            f"lag at {rate} writes/s", began,
            f"achieved {written['achieved_rate']:.1f} writes/s; p50 {lag['p50']:.1f} ms,"
            f" p95 {lag['p95']:.1f} ms, p99 {lag['p99']:.1f} ms over {lag['n']:,} documents;"
            f" not projected {row['not_projected']}; drained {drain:.1f}s after the last write",
        )
    return rows


def dynamodb_description() -> str:
    from django.conf import settings

    return (
        f"{settings.DYNAMODB_ENGINE}, endpoint {settings.DYNAMODB_ENDPOINT or '(AWS)'},"
        f" tables {settings.DYNAMODB_TABLE_PREFIX}*"
    )


# --- main ------------------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """NaN (a figure that could not be measured) as null: JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("QUICK", "").strip().lower() in {"1", "true", "yes", "on"}
    cfg = Config.short() if quick else Config.full()
    signal.signal(signal.SIGTERM, _terminate)
    clock = Clock()
    procs = Processes({**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONUNBUFFERED": "1"})
    log(f"{'QUICK' if quick else 'full'} run; logs of started processes in {LOG_DIR}")
    try:
        backfilled = prepare(cfg, clock)
        hot, pool = choose_skus(cfg)
        paths, raw = in_process(cfg, hot, clock)
        began = time.perf_counter()
        parts = hotpath.breakdown(hot, rounds=10 if cfg.quick else 40)
        clock.step("hot read breakdown", began)
        orders = checkout(cfg, hot, clock)
        cart_results = cart_writes(cfg, procs, hot, clock)
        read_set = set(hot)
        others = [sku for sku in pool if sku not in read_set]
        http = over_http(cfg, procs, hot, others, clock)
        began = time.perf_counter()
        suffered = suffering.suffering(cfg.quick, procs, hot, others[cfg.cold_skus:])  # projected, not cold
        clock.step("reads while Postgres suffers", began)
        began = time.perf_counter()
        from django.conf import settings

        worker = procs.worker(settings.CELERY_TASK_DEFAULT_QUEUE)
        clock.step("worker", began, "celery worker -B (bench settings) ready")
        lag_writers = spawn_lag_writers(cfg, procs, others + hot)
        write_load = under_write_load(cfg, procs, hot, clock)
        stale = cachalot_staleness(hot)
        lag = projection_lag(cfg, procs, lag_writers, worker, clock)
        procs.stop(worker)
        began = time.perf_counter()
        relay_throughput = throughput.relay_vs_workers(procs, cfg.drain_timeout, log)
        clock.step("relay throughput", began)
    except KeyboardInterrupt:
        log("interrupted; stopping what the bench started")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        procs.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from django.db import connections

        connections.close_all()

    clock.steps["total"] = round(time.perf_counter() - clock.started, 1)
    notes = [
        "Path 4 is the real `/api/products/<sku>/` (throttled: the anonymous rate-limit counter is counted in the"
        " same Redis script as the read; the limit is set too high to trip).",
        "Path 5 is the same view with the product's Redis entry deleted before each request (untimed; over HTTP,"
        " deleted beforehand and each SKU read once): a Redis miss, the fill lock, a consistent GetItem, the"
        " entry stored back.",
        "Path 6 is the same view with the product's Redis entry, DynamoDB items (document, listing item) and owner"
        " manifest deleted before each request, the same way: Redis miss, GetItem miss, then `project()` on the"
        " read path (advisory lock, REPEATABLE READ snapshot, owner manifest, conditional puts) and the entry stored.",
        "The floor is a stock DRF APIView (content negotiation included); Hybridsite's views skip negotiation.",
        "Paths 1-3 are not throttled. cachalot is installed in every bench process, but caches reads only inside"
        " its view (bench/cachalot_scope.py); its write invalidation runs everywhere, as on a site using it.",
        f"After the write-load phase, cachalot served a stale product `version` for {stale['stale_version']} of"
        f" {stale['checked']} read-set SKUs: it cannot see rows that Postgres triggers change.",
        "Redis entries do not expire during a run (CACHE_TTL_SECONDS=3600, cachalot's entries have no timeout).",
    ]
    results = {
        "machine": report.machine(),
        "config": {**asdict(cfg), "hot_skus": len(hot), "dynamodb": dynamodb_description()},
        "durations_seconds": clock.steps,
        "backfill": backfilled,
        "paths": paths,
        "checkout": orders,
        "carts": cart_results,
        "http": http,
        "write_load": write_load,
        "cachalot_staleness": stale,
        "lag": lag,
        "hot_read_breakdown": parts,
        "suffering": suffered,
        "relay_throughput": relay_throughput,
        "notes": notes,
    }
    report.RESULTS.mkdir(exist_ok=True)
    table = (
        report.markdown(results) + "\n" + hotpath.markdown(parts) + "\n" + suffering.markdown(suffered)
        + "\n" + throughput.markdown(relay_throughput, dynamodb_description())
    )
    over_time = ["Projection lag over time (per bucket of commit time; every point in lag.png):"]
    for row in lag:
        over_time += report.lag_over_time(row)
    ratios = report.ratio_lines(results)
    images = report.plots(results, raw)
    (report.RESULTS / "latest.md").write_text(
        table + "\n## Lag over time\n\n```\n" + "\n".join(over_time) + "\n```\n\n## Ratios\n\n"
        + "\n".join(f"- {line}" if i else line for i, line in enumerate(ratios)) + "\n"
    )
    (report.RESULTS / "latest.json").write_text(json.dumps(_finite(results), indent=2, default=str) + "\n")
    print(table)
    print("\n".join(over_time))
    print()
    print(f"Run took {clock.steps['total']:.0f}s. Written: bench/results/latest.md, latest.json, "
          + ", ".join(images) + ".")
    print()
    print("\n".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
