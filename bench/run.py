"""`make bench`: Hybridsite's read path side by side with the ORM and django-cachalot (issue 5).

    make bench            # full: 10,000 products, under 10 minutes
    make bench QUICK=1    # short: 2,000 products, under 2 minutes (or bench/run.py --quick)
    make bench SCALE=N    # cost as the catalog grows: N products (bench/scale.py)

Run by ``python -m devtools.launcher bench``, which provides the services' URLs, a SECRET_KEY and
DJANGO_SETTINGS_MODULE=bench.settings. Steps, all in one run on the same data:

1. a fresh ``hybridsite_bench`` database (migrated), ``bench-`` DynamoDB tables, ``hs-bench-`` Redis keys;
2. ``seed_demo``, DynamoDB Local warmed up (its JVM compiles as it serves), a timed backfill (documents/second);
3. six read paths in process (latency percentiles, Postgres queries, DynamoDB calls, Redis round trips),
   the hot read's breakdown beside the floor (bench/hotpath.py), then checkout (``POST /api/orders/``)
   the same way; then cart writes and their write-back lag (bench/carts.py);
4. the same paths over HTTP: gunicorn with 2 sync workers and wrk, or bench/loadgen.py without wrk;
   the hot read again with the process-local layer on, and the window between two processes after
   a write (bench/hotlocal.py); then reads while Postgres is saturated and stopped (bench/suffering.py);
5. hit ratio and p95 of cachalot and Hybridsite while price updates run (a real Celery worker projects);
6. projection lag at sustained write rates, from the documents' own timestamps;
7. a replica region beside this one: replication lag at 200 writes/s, and reads in each region
   (bench/replication.py);
8. relay throughput against 1, 2 and 4 worker processes (bench/throughput.py).

Phases 6 and 8 also say how much CPU each kind of process spent per write (bench/cpu.py).

Each phase is a module of its own (bench/prepare.py, reads.py, hotpath.py, checkout.py, carts.py,
overhttp.py, hotlocal.py, suffering.py, writeload.py, lag.py, replication.py, throughput.py; scale.py
for SCALE);
this one only orders them and writes the results. It asserts nothing about speed. Results:
bench/results/latest.md, latest.json and PNG plots.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[0] = str(BASE_DIR)  # run as a script: import the project, not bench/'s modules by bare name
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()  # the phases import the apps' models; nothing connects to a database here

from bench import (  # noqa: E402
    carts,
    checkout,
    hotlocal,
    hotpath,
    lag,
    overhttp,
    playbook,
    prepare,
    reads,
    replication,
    report,
    scale,
    suffering,
    throughput,
    writeload,
)
from bench.config import Clock, Config, log  # noqa: E402
from bench.procs import LOG_DIR, Processes  # noqa: E402


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
    if os.environ.get("SCALE", "").strip():
        return scale.main(int(os.environ["SCALE"]))
    quick = "--quick" in argv or os.environ.get("QUICK", "").strip().lower() in {"1", "true", "yes", "on"}
    cfg = Config.short() if quick else Config.full()
    signal.signal(signal.SIGTERM, _terminate)
    clock = Clock()
    procs = Processes({**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONUNBUFFERED": "1"})
    log(f"{'QUICK' if quick else 'full'} run; logs of started processes in {LOG_DIR}")
    try:
        backfilled = prepare.prepare(cfg, clock)
        hot, pool = prepare.choose_skus(cfg)
        paths, raw = reads.in_process(cfg, hot, clock)
        began = time.perf_counter()
        parts = hotpath.breakdown(hot, rounds=10 if cfg.quick else 40)
        clock.step("hot read breakdown", began)
        playbook_results = playbook.phase(cfg, hot, clock)
        orders = checkout.phase(cfg, hot, clock)
        cart_results = carts.phase(cfg, procs, hot, clock)
        read_set = set(hot)
        others = [sku for sku in pool if sku not in read_set]
        over_http = overhttp.over_http(cfg, procs, hot, others, clock)
        local_layer = hotlocal.phase(cfg, procs, hot, clock)
        began = time.perf_counter()
        suffered = suffering.suffering(cfg.quick, procs, hot, others[cfg.cold_skus:])  # projected, not cold
        clock.step("reads while Postgres suffers", began)
        began = time.perf_counter()
        from django.conf import settings

        worker = procs.worker(settings.CELERY_TASK_DEFAULT_QUEUE)
        clock.step("worker", began, "celery worker -B (bench settings) ready")
        lag_writers = lag.spawn_lag_writers(cfg, procs, others + hot)
        write_load = writeload.under_write_load(cfg, procs, hot, clock)
        stale = writeload.cachalot_staleness(hot)
        lags = lag.projection_lag(cfg, procs, lag_writers, worker, clock)
        lag_written = sum(int(rate * seconds) for rate, seconds in cfg.lag_seconds.items())
        replicated = replication.phase(cfg, procs, others[lag_written:], hot, clock)
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
        "config": {**asdict(cfg), "hot_skus": len(hot), "dynamodb": report.dynamodb_description()},
        "durations_seconds": clock.steps,
        "backfill": backfilled,
        "paths": paths,
        "checkout": orders,
        "carts": cart_results,
        "http": over_http,
        "write_load": write_load,
        "cachalot_staleness": stale,
        "lag": lags,
        "hot_read_breakdown": parts,
        "playbook": playbook_results,
        "hot_read_local": local_layer,
        "suffering": suffered,
        "relay_throughput": relay_throughput,
        "replication": replicated,
        "notes": notes,
    }
    report.RESULTS.mkdir(exist_ok=True)
    table = (
        report.markdown(results) + "\n" + hotpath.markdown(parts) + "\n" + playbook.markdown(playbook_results)
        + "\n" + hotlocal.markdown(local_layer, over_http)
        + "\n" + suffering.markdown(suffered)
        + "\n" + throughput.markdown(relay_throughput, report.dynamodb_description())
        + "\n" + replication.markdown(replicated)
    )
    over_time = ["Projection lag over time (per bucket of commit time; every point in lag.png):"]
    for row in lags:
        over_time += report.lag_over_time(row)
    ratios = report.ratio_lines(results) + [
        hotpath.ratio_line(parts, results["machine"]),
        hotlocal.ratio_line(local_layer, over_http),
        replication.ratio_line(replicated, lags),
    ]
    images = report.plots(results, raw)
    (report.RESULTS / "latest.md").write_text(
        table + "\n## Lag over time\n\n```\n" + "\n".join(over_time) + "\n```\n\n## Ratios\n\n"
        + "\n".join(f"- {line}" if i else line for i, line in enumerate(ratios)) + "\n"
    )
    (report.RESULTS / "latest.json").write_text(json.dumps(_finite(results), indent=2, default=str) + "\n")
    replication.keep(results["machine"], cfg, replicated, ratios[-1])
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
