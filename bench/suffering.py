"""Customer reads while Postgres suffers: saturated, then stopped, beside the same reads with
Postgres well (issue 13).

Three conditions, one after another; in each, three paths are read in this process through
Django's WSGI handler, as the in-process read paths are (one request after another, each timed):

- ``hit``: ``/api/products/<sku>/`` over the read set, whose Redis entries are there;
- ``dynamodb``: the same view for other products, their Redis entry deleted before each request
  (untimed): a Redis miss served from DynamoDB (the key's floor is still in Redis);
- ``orm``: the bench's ORM + DRF serializer view (path 2), which needs Postgres for every request;
- ``floor``: the bench's constant-bytes DRF view (path 1), which needs nothing: what the condition
  costs every request of this host, Postgres or not (its CPUs are shared with Postgres).

Conditions:

- ``normal``: nothing else runs (the reference, measured in the same run);
- ``saturated``: pgbench's select-only transactions from ``CLIENTS_PER_CORE`` clients per Postgres core
  on a database of its own. Postgres shares this host's CPUs with the app, where it would have a host
  of its own: at equal footing the phase would measure the app starved of CPU, and woken late by a
  kernel busy with Postgres's tens of thousands of round trips a second, not the app waiting for
  Postgres. So, for the embedded server: Postgres (the server, its backends) and pgbench run on every
  CPU but the first, under ``SCHED_IDLE``; this process and Redis on the first; pgbench talks to the
  server over its Unix socket, off the loopback TCP path the app's Redis packets take. (With one CPU,
  only ``SCHED_IDLE``.) With a Postgres whose processes this bench cannot see, pgbench runs as it is;
- ``stopped``: the embedded server stopped (``pg_ctl stop -m fast``), then started again on its port.
  A Postgres given by ``DATABASE_URL`` is not stopped (not ours to stop): the condition is skipped
  and the table says so.

Errors are 5xx answers. A path gets at most ``seconds`` per condition (the ORM path crawls).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench.paths import URLS
from bench.procs import LOG_DIR, Processes

CLIENTS_PER_CORE = 8
LOAD_DATABASE = "hybridsite_bench_load"
PATHS = {
    "floor": "floor: DRF APIView, constant bytes (path 1)",
    "hit": "Hybridsite, Redis hit",
    "dynamodb": "Hybridsite, Redis miss, DynamoDB hit",
    "orm": "ORM + DRF serializer (path 2)",
}
CONDITIONS = {"normal": "Postgres well", "saturated": "Postgres saturated", "stopped": "Postgres stopped"}


@dataclass(frozen=True)
class Plan:
    requests: dict[str, int]
    seconds: float
    pgbench_scale: int


def plan(quick: bool) -> Plan:
    if quick:
        return Plan({"floor": 1_000, "hit": 1_000, "dynamodb": 150, "orm": 150}, seconds=5.0, pgbench_scale=5)
    return Plan({"floor": 5_000, "hit": 5_000, "dynamodb": 500, "orm": 500}, seconds=15.0, pgbench_scale=20)


def log(message: str) -> None:
    print(f"bench | {message}", file=sys.stderr, flush=True)


# --- the server: where it runs, its processes -----------------------------------------------------


def _database() -> dict[str, Any]:
    from django.conf import settings

    return settings.DATABASES["default"]


def embedded_data_dir() -> Path | None:
    """The embedded server's data directory, when the bench's database is served by it."""
    from devtools.embedded import PG_DIR

    data = PG_DIR / "data"
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    if str(port) != str(_database()["PORT"]) or not Path(f"/proc/{pid}").exists():
        return None
    return data


def _server_pids(data: Path) -> list[int]:
    """The postmaster and every process it started (backends included)."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


IDLE = (os.SCHED_IDLE, os.sched_param(0))
NORMAL = (os.SCHED_OTHER, os.sched_param(0))


def _place(pids: list[int], cpus: set[int], policy: tuple[int, os.sched_param] | None = None) -> None:
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
            if policy is not None:
                os.sched_setscheduler(pid, *policy)
        except (ProcessLookupError, PermissionError):
            pass


def _redis_pid() -> int | None:
    """The cache's Redis server, when it runs on this host."""
    from hybridsite.redis_client import client

    pid = int(client().info("server")["process_id"])
    try:
        return pid if Path(f"/proc/{pid}/comm").read_text().startswith("redis") else None
    except OSError:
        return None


def _pgbench() -> str | None:
    """pgbench of the embedded server's own release, else the one on PATH."""
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        bundled = Path(POSTGRES_BIN_PATH) / "pgbench"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("pgbench")


@contextmanager
def saturated(procs: Processes, scale: int) -> Iterator[dict[str, Any]]:
    """pgbench running select-only transactions on every core until the block ends."""
    from bench.database import fresh_database

    db = _database()
    pgbench = _pgbench()
    if pgbench is None:
        raise RuntimeError("pgbench is neither bundled with pgserver nor on PATH")
    env = {"PGPASSWORD": db["PASSWORD"] or ""}
    data = embedded_data_dir()
    # pgbench's tens of thousands of round trips a second through loopback TCP would queue the app's
    # own Redis packets behind them in the kernel: the embedded server's Unix socket keeps them off
    # that path, as a Postgres on another host would.
    host = str(data.parent) if data is not None else db["HOST"] or "127.0.0.1"
    target = ["-h", host, "-p", str(db["PORT"] or 5432), "-U", db["USER"] or "postgres"]
    fresh_database(LOAD_DATABASE)
    subprocess.run(
        [pgbench, *target, "-i", "-q", "-s", str(scale), LOAD_DATABASE],
        env={**os.environ, **env}, check=True, capture_output=True, timeout=300,
    )
    cpus = os.sched_getaffinity(0)
    # Postgres on CPUs of its own, as on a host of its own: the app (this process) and Redis keep one.
    split = data is not None and len(cpus) > 1
    app_cpus = {min(cpus)} if split else cpus
    pg_cpus = cpus - app_cpus if split else cpus
    redis = _redis_pid()
    app = [os.getpid(), *([redis] if redis else [])]
    server = _server_pids(data) if data is not None else []
    _place(app, app_cpus)
    _place(server, pg_cpus, IDLE)  # the backends it starts for pgbench inherit both

    def placed() -> None:
        os.sched_setaffinity(0, pg_cpus)
        os.sched_setscheduler(0, *IDLE)

    clients = CLIENTS_PER_CORE * len(pg_cpus)
    threads = len(pg_cpus)
    progress = LOG_DIR / "pgbench.log"
    with open(progress, "wb") as out:
        process = procs.start(
            "pgbench",
            [pgbench, *target, "-S", "-c", str(clients), "-j", str(threads), "-T", "3600", "-P", "1", LOAD_DATABASE],
            env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=placed,
        )
    time.sleep(2)  # its clients connected and running
    try:
        yield {
            "clients": clients, "threads": threads, "scale": scale, "embedded": data is not None,
            "command": f"pgbench -S -c {clients} -j {threads} (scale {scale})",
            "postgres_cpus": sorted(pg_cpus), "app_cpus": sorted(app_cpus), "redis_placed": redis is not None,
        }
    finally:
        procs.stop(process)
        _place(app, cpus)
        _place(_server_pids(data) if data is not None else [], cpus, NORMAL)
        tps = [float(v) for v in re.findall(r"progress: [\d.]+ s, ([\d.]+) tps", progress.read_text(errors="replace"))]
        log(f"  pgbench ran {len(tps)} s at {sum(tps) / len(tps) if tps else 0:,.0f} transactions/s on average")


@contextmanager
def stopped(data: Path) -> Iterator[None]:
    """The embedded server stopped for the block, then started again on its port."""
    from django.db import connections

    from devtools.embedded import PG_DIR, start_postgres, stop_postgres

    port = int(_database()["PORT"])
    stop_postgres(PG_DIR)
    try:
        yield
    finally:
        start_postgres(PG_DIR, port=port)
        connections.close_all()  # the bench's own connection died with the server


# --- measuring ------------------------------------------------------------------------------------


def measure(
    driver, requests: list[tuple[str, str]], before: Callable[[str], None] | None, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    served: Counter[str] = Counter()
    clock = time.perf_counter_ns
    deadline = time.perf_counter() + seconds
    for sku, path in requests:
        if time.perf_counter() > deadline:
            break
        if before:
            before(sku)
        begin = clock()
        response = driver.get(path)
        latencies.append((clock() - begin) / 1000)
        statuses[response.status] += 1
        served[response.headers.get("X-Served-From", "")] += 1
    return {
        "latency_us": report.summarize(latencies),
        "errors": sum(k for status, k in statuses.items() if status >= 500),
        "statuses": {str(status): k for status, k in sorted(statuses.items())},
        "served_from": {source or "-": k for source, k in served.items()},
    }


def suffering(quick: bool, procs: Processes, hot: list[str], others: list[str]) -> dict[str, Any]:
    from bench.inprocess import Driver
    from bench.state import forget_cached

    cfg = plan(quick)
    driver = Driver()

    def requests(name: str) -> list[tuple[str, str]]:
        skus = hot if name in ("hit", "floor") else others
        n = cfg.requests[name]
        url = URLS[name]
        return [(sku, url(sku)) for sku in (skus[i % len(skus)] for i in range(n))]

    before = {"dynamodb": lambda sku: forget_cached([sku])}

    def condition(name: str) -> dict[str, Any]:
        rows = {}
        for path in PATHS:
            began = time.perf_counter()
            rows[path] = measure(driver, requests(path), before.get(path), cfg.seconds)
            lat = rows[path]["latency_us"]
            log(
                f"  {name} / {path}: p50 {lat['p50']:,.0f} µs, p95 {lat['p95']:,.0f} µs over {lat['n']:,},"
                f" errors {rows[path]['errors']}, {rows[path]['statuses']}, served from {rows[path]['served_from']}"
                f"; {time.perf_counter() - began:.1f}s"
            )
        return rows

    # A 500 from the ORM path while Postgres is down is expected here: one log line each, not a traceback.
    request_logger = logging.getLogger("django.request")
    level = request_logger.level
    request_logger.setLevel(logging.CRITICAL)
    results: dict[str, Any] = {"conditions": {}, "requests": cfg.requests, "seconds": cfg.seconds}
    try:
        for _sku, path in requests("hit")[: len(hot)]:  # every hot entry in Redis before the reference
            driver.get(path)
        results["conditions"]["normal"] = condition("normal")
        with saturated(procs, cfg.pgbench_scale) as load:
            results["load"] = load
            results["conditions"]["saturated"] = condition("saturated")
        data = embedded_data_dir()
        if data is None:
            results["stopped_skipped"] = "Postgres comes from DATABASE_URL: the bench does not stop it"
        else:
            with stopped(data):
                results["conditions"]["stopped"] = condition("stopped")
    finally:
        request_logger.setLevel(level)
    return results


def markdown(results: dict[str, Any]) -> str:
    load = results.get("load", {})
    lines = [
        "## Reads while Postgres suffers",
        "",
        "In process, one request after another (at most"
        f" {', '.join(f'{n:,} {p}' for p, n in results['requests'].items())} requests, {results['seconds']:g} s"
        " per path and condition). Saturated: "
        + (
            f"{load.get('command', '?')} on a database of its own"
            + (
                f", over the server's Unix socket; Postgres and pgbench on CPUs {load.get('postgres_cpus')} under"
                f" SCHED_IDLE, the app{' and Redis' if load.get('redis_placed') else ''} on CPUs"
                f" {load.get('app_cpus')} (Postgres saturated as on a host of its own)"
                if load.get("embedded") else " (Postgres is not on this host: nothing placed)"
            )
        )
        + ". Stopped: "
        + (results.get("stopped_skipped") or "the embedded server stopped (`pg_ctl stop -m fast`), then started.")
        + " Errors = 5xx answers.",
        "",
        "| path | condition | p50 µs | p95 µs | p99 µs | N | errors | p95 vs Postgres well | p95 vs the floor's"
        " (same condition) | served from |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    normal = results["conditions"].get("normal", {})
    for path, title in PATHS.items():
        for condition, label in CONDITIONS.items():
            row = results["conditions"].get(condition, {}).get(path)
            if row is None:
                skipped = results.get("stopped_skipped", "")
                lines.append(f"| {title} | {label} | — | — | — | — | — | — | — | {skipped} |")
                continue
            lat = row["latency_us"]
            base = normal.get(path, {}).get("latency_us", {}).get("p95") or float("nan")
            floor = results["conditions"][condition].get("floor", {}).get("latency_us", {}).get("p95") or float("nan")
            served = ", ".join(f"{k} {v:,}" for k, v in row["served_from"].items())
            lines.append(
                f"| {title} | {label} | {lat['p50']:,.0f} | {lat['p95']:,.0f} | {lat['p99']:,.0f} | {lat['n']:,} |"
                f" {row['errors']:,} | {lat['p95'] / base:.2f}x | {lat['p95'] / floor:.2f}x | {served} |"
            )
    return "\n".join(lines) + "\n"
