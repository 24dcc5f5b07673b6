"""Phase 8: two regions (docs/architecture/regions.md). A replica region beside the bench's own (the
home region): a second DynamoDB Local (in memory) and a second Redis, its tables filled from the home
region's, and the replication stand-in (devtools/replication.py) between the two DynamoDB Local
processes, in this process.

1. Replication lag at 200 catalog writes a second: price updates in the home region (bench/writer.py,
   each product once), projected by the Celery worker. A poller reads the written products'
   documents in the replica's DynamoDB (one BatchGetItem per 100, only products whose write is due)
   and notes the first round that sees each at a version above the one before the write. Per
   product: the home document's ``projected_at`` to that round (replication), and its
   ``source_committed_at`` to that round (commit to readable in the replica); the stand-in's own
   ``lag()`` (its stamp to its apply) beside them.
2. Reads in each region over HTTP, one region after the other (gunicorn, 2 sync workers, the same
   generator as phase 4): a Redis hit over the read set, then a Redis miss answered by the region's
   own DynamoDB (the products' entries dropped from that region's Redis, each read once).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Any

import redis
from django.conf import settings

from bench import report
from bench.config import Clock, Config
from bench.overhttp import run_loadgen, run_wrk
from bench.paths import URLS
from bench.procs import BASE_DIR, Processes
from bench.writers import finish_writer, go, spawn_writer, wait_for_outbox
from devtools.embedded import VAR, start_dynamodb_local, start_redis, stop_dynamodb_local, stop_redis
from devtools.launcher import Region, region_env
from devtools.replication import Replicator, clients, fill
from hybridsite.dynamodb import all_tables

RATE = 200.0
POLL_SECONDS = 0.01
BATCH_GET = 100  # BatchGetItem's limit
REPLICA_DIR = VAR / "bench-replica"


def replica_name(home: str) -> str:
    return "us-east-1" if home != "us-east-1" else "eu-west-1"


class Replica:
    """The replica region's servers and its processes' environment, for one phase."""

    def __init__(self, procs: Processes) -> None:
        self.home = Region(settings.HYBRIDSITE_REGION, "")
        self.region = Region(replica_name(self.home.name), "")
        shutil.rmtree(REPLICA_DIR, ignore_errors=True)
        try:
            self.redis_url = start_redis(REPLICA_DIR / "redis")["REDIS_URL"]
            self.endpoint = start_dynamodb_local(REPLICA_DIR / "dynamodb", in_memory=True)["DYNAMODB_ENDPOINT"]
        except BaseException:
            self.stop()
            raise
        urls = {
            self.home.name: {"DYNAMODB_ENDPOINT": settings.DYNAMODB_ENDPOINT, "REDIS_URL": settings.REDIS_URL},
            self.region.name: {"DYNAMODB_ENDPOINT": self.endpoint, "REDIS_URL": self.redis_url},
        }
        regions = [self.home, self.region]
        self.env = {
            name: value for name, value in region_env(procs.env, regions, self.region, urls).items()
            if name != "BIND"
        }

    def stop(self) -> None:
        stop_redis(REPLICA_DIR / "redis")
        stop_dynamodb_local(REPLICA_DIR / "dynamodb")
        shutil.rmtree(REPLICA_DIR, ignore_errors=True)


def document_versions(endpoint: str, region: str, skus: list[str]) -> dict[str, int]:
    """The products' document versions in one region's DynamoDB (absent: not there)."""
    from projections.tables import ProductDocument

    dynamodb, _ = clients(endpoint, region)
    table = ProductDocument.Meta.table_name
    versions: dict[str, int] = {}
    for start in range(0, len(skus), BATCH_GET):
        pending: dict[str, Any] = {table: {
            "Keys": [{"pk": {"S": sku}} for sku in skus[start:start + BATCH_GET]],
            "ProjectionExpression": "pk, version", "ConsistentRead": True,
        }}
        while pending:
            answer = dynamodb.batch_get_item(RequestItems=pending)
            for item in answer["Responses"].get(table, []):
                versions[item["pk"]["S"]] = int(item["version"]["N"])
            pending = answer.get("UnprocessedKeys") or {}
    return versions


class ArrivalPoller:
    """Notes when each product's new version is first readable in the replica's DynamoDB: the start
    of the first poll round whose answer holds it. Only products whose write is due are asked."""

    def __init__(self, endpoint: str, region: str, skus: list[str], before: dict[str, int]) -> None:
        self.endpoint, self.region, self.skus, self.before = endpoint, region, skus, before
        self.seen: dict[str, float] = {}
        self.rounds: list[float] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.started_at = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.started_at = time.time()
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            due = int((time.time() - self.started_at + 0.5) * RATE)
            waiting = [sku for sku in self.skus[:due] if sku not in self.seen]
            asked = time.time()
            if waiting:
                try:
                    found = document_versions(self.endpoint, self.region, waiting)
                except Exception as exc:  # noqa: BLE001 (a round that failed is a round lost, not the poller)
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    found = {}
                for sku, version in found.items():
                    if version > self.before.get(sku, 0):
                        self.seen[sku] = asked
            self.rounds.append(time.time() - asked)
            self.stopping.wait(POLL_SECONDS)

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < len(self.skus) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.stopping.set()
        self.thread.join()


def replication_lag(
    cfg: Config, procs: Processes, replica: Replica, stand_in: Replicator, skus: list[str]
) -> dict[str, Any]:
    from projections.tables import ProductDocument

    seconds = cfg.lag_seconds[200]
    planned = skus[:int(RATE * seconds)]
    writer = spawn_writer(procs, RATE, seconds, "distinct", planned, "replication")
    before = document_versions(settings.DYNAMODB_ENDPOINT, replica.home.name, planned)
    poller = ArrivalPoller(replica.endpoint, replica.region.name, planned, before)
    go(procs, writer)
    poller.start()
    written = finish_writer(procs, writer, seconds + 120)
    drain, _, _ = wait_for_outbox(cfg.drain_timeout)
    poller.wait(60)
    stand_in.settle(timeout=120)
    replication: list[float] = []
    end_to_end: list[float] = []
    projection: list[float] = []
    for document in ProductDocument.batch_get(planned):
        arrived = poller.seen.get(document.pk)
        if arrived is None or not document.projected_at or not document.source_committed_at:
            continue
        committed = datetime.fromisoformat(document.source_committed_at).timestamp()
        projected = datetime.fromisoformat(document.projected_at).timestamp()
        replication.append((arrived - projected) * 1000)
        end_to_end.append((arrived - committed) * 1000)
        projection.append((projected - committed) * 1000)
    return {
        "writer": {k: v for k, v in written.items() if k != "skus"},
        "replication_ms": report.summarize(replication),
        "commit_to_replica_ms": report.summarize(end_to_end),
        "projection_ms": report.summarize(projection),
        "not_seen_in_replica": len(planned) - len(poller.seen),
        "poll_errors": {"count": len(poller.errors), "first": poller.errors[:1]},
        "poll_round_ms": report.summarize([r * 1000 for r in poller.rounds]),
        "drain_seconds": drain,
        "stand_in": stand_in.lag()[replica.region.name],
    }


def reads(
    cfg: Config, procs: Processes, replica: Replica, hot: list[str], cold: list[str]
) -> dict[str, dict[str, Any]]:
    """The Redis hit and the DynamoDB hit over HTTP, in the home region, then in the replica."""
    from bench.state import forget_cached
    from hybridsite import cache_keys
    from projections.registry import product_cache_name

    def forget_in_replica(skus: list[str]) -> None:
        pipe = redis.Redis.from_url(replica.redis_url).pipeline(transaction=False)
        for sku in skus:
            pipe.delete(cache_keys.document(product_cache_name(sku)))
        pipe.execute()

    def load(port: int, paths: list[str], seconds: float, once: bool) -> dict[str, Any]:
        if shutil.which("wrk"):
            return run_wrk(port, paths, seconds, cfg.concurrency, once)
        return run_loadgen(procs, port, paths, seconds, cfg.concurrency)

    results: dict[str, dict[str, Any]] = {}
    seconds = max(cfg.http_seconds / 2, 2.0)
    hit_paths = list(dict.fromkeys(URLS["hit"](sku) for sku in hot))
    for region, env, forget in (
        (replica.home.name, {}, forget_cached), (replica.region.name, replica.env, forget_in_replica),
    ):
        port = procs.gunicorn(workers=2, env=env)
        try:
            load(port, hit_paths, cfg.http_warmup_seconds, False)  # fills this region's Redis
            hit = load(port, hit_paths, seconds, False)
            forget(cold)
            miss = load(port, [URLS["dynamodb"](sku) for sku in cold], seconds, True)
        finally:
            for _, process in [p for p in procs.running if p[0] == "gunicorn"]:
                procs.stop(process)
        for name, measured in (("hit", hit), ("dynamodb", miss)):
            measured.pop("raw", None)
            results[f"{region} {name}"] = {"region": region, "path": name, **measured}
    return results


def phase(cfg: Config, procs: Processes, pool: list[str], hot: list[str], clock: Clock) -> dict[str, Any]:
    """``pool``: products no other phase wrote, for the writes and the DynamoDB hits."""
    began = time.perf_counter()
    replica = Replica(procs)
    try:
        subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), "projections_setup"],
            cwd=BASE_DIR, env=replica.env, check=True, capture_output=True,
        )
        filled_at = time.perf_counter()
        tables = [model.Meta.table_name for model in all_tables()]
        copied = fill(settings.DYNAMODB_ENDPOINT, replica.endpoint, prefix=settings.DYNAMODB_TABLE_PREFIX, only=tables)
        fill_seconds = time.perf_counter() - filled_at
        clock.step(
            "replica region", began,
            f"{replica.region.name}: its tables filled with {sum(copied.values()):,} items in {fill_seconds:.1f}s",
        )
        began = time.perf_counter()
        stand_in = Replicator(
            {replica.home.name: settings.DYNAMODB_ENDPOINT, replica.region.name: replica.endpoint},
            prefix=settings.DYNAMODB_TABLE_PREFIX, tables=tables,
        ).start()
        try:
            writes = int(RATE * cfg.lag_seconds[200])
            lag = replication_lag(cfg, procs, replica, stand_in, pool[:writes])
        finally:
            stand_in.stop()
        r, s = lag["replication_ms"], lag["stand_in"]
        nan = float("nan")
        clock.step(
            f"replication at {RATE:g} writes/s", began,
            f"achieved {lag['writer']['achieved_rate']:.1f} writes/s; home DynamoDB → replica DynamoDB p50"
            f" {r['p50']:.0f} ms, p95 {r['p95']:.0f} ms over {r['n']:,}; not seen {lag['not_seen_in_replica']};"
            f" poll errors {lag['poll_errors']['count']};"
            f" the stand-in's p50 {s.get('p50', nan) * 1000:.0f} ms, p95 {s.get('p95', nan) * 1000:.0f} ms",
        )
        began = time.perf_counter()
        cold = pool[writes:writes + cfg.requests["dynamodb"]]
        read = reads(cfg, procs, replica, hot, cold)
        clock.step("reads in each region", began, "; ".join(
            f"{name}: {row['requests_per_second']:,.0f} req/s, served from {row.get('served_from', '?')}"
            for name, row in read.items()
        ))
    finally:
        replica.stop()
    return {
        "home": replica.home.name, "replica": replica.region.name,
        "fill": {"items": sum(copied.values()), "seconds": fill_seconds},
        "lag": lag, "reads": read,
    }


def markdown(result: dict[str, Any]) -> str:
    lag, fill_ = result["lag"], result["fill"]
    stand_in = lag["stand_in"]
    home, replica = result["home"], result["replica"]

    def row(title: str, figures: dict[str, float], scale: float = 1.0) -> str:
        p50, p95, largest = (figures.get(name, float("nan")) * scale for name in ("p50", "p95", "max"))
        count = figures.get("n", figures.get("count", 0))
        return f"| {title} | {p50:,.0f} | {p95:,.0f} | {largest:,.0f} | {count:,.0f} |"

    lines = [
        "## Replication between two regions",
        "",
        f"A replica region ({replica}) beside the home region ({home}): a second DynamoDB Local, in memory, and"
        f" a second Redis; its tables filled from the home region's ({fill_['items']:,} items in"
        f" {fill_['seconds']:.1f} s), then the replication stand-in (devtools/replication.py) between the two"
        f" DynamoDB Local processes. Price updates in the home region at {lag['writer']['target_rate']:g} writes/s"
        f" (achieved {lag['writer']['achieved_rate']:.1f}), each to another product, projected by the Celery worker;"
        f" each document's arrival in the replica's DynamoDB is the first poll round that read its new version"
        f" (a round took p50 {lag['poll_round_ms']['p50']:.0f} ms); {lag['not_seen_in_replica']} not seen.",
        "",
        "| replication at 200 writes/s | p50 ms | p95 ms | max ms | documents |",
        "|---|---:|---:|---:|---:|",
        row("commit → home DynamoDB (the projection lag of these writes)", lag["projection_ms"]),
        row("home DynamoDB → replica DynamoDB (`projected_at` → read in the replica)", lag["replication_ms"]),
        row("commit → replica DynamoDB", lag["commit_to_replica_ms"]),
        row("the stand-in's `lag()`: its stamp → its apply in the replica", stand_in, 1000.0),
        "",
        "The stand-in stamps each write with a second write when it reads the record, then puts the item on the"
        " other side: its own lag leaves out the time a write waited for its stamp. AWS replicates global tables"
        " within a second, typically; these figures are a test harness's on a shared machine.",
        "",
        "| reads over HTTP (gunicorn 2 sync workers) | req/s | p50 ms | p99 ms | served from |",
        "|---|---:|---:|---:|---|",
    ]
    for measured in result["reads"].values():
        role = "home" if measured["region"] == home else "replica"
        path = "Redis hit" if measured["path"] == "hit" else "Redis miss, its own DynamoDB hit"
        served = ", ".join(f"{source} {count:,}" for source, count in sorted(measured.get("served_from", {}).items()))
        lines.append(
            f"| {measured['region']} ({role}), {path} | {measured['requests_per_second']:,.0f} |"
            f" {measured['latency_us']['p50'] / 1000:,.1f} | {measured['latency_us']['p99'] / 1000:,.1f} | {served} |"
        )
    return "\n".join(lines) + "\n"


def ratio_line(result: dict[str, Any], projection_lag: list[dict[str, Any]]) -> str:
    at_200 = next((row for row in projection_lag if row["writer"]["target_rate"] == 200), None)
    projected = at_200["lag_ms"]["p95"] if at_200 else float("nan")
    replicated = result["lag"]["replication_ms"]["p95"]
    return (
        f"Replication lag p95 at 200 writes/s (home DynamoDB → replica DynamoDB): {replicated:,.0f} ms, beside the"
        f" projection lag p95 (commit → home DynamoDB): {projected:,.1f} ms"
    )


def keep(machine: dict[str, Any], cfg: Config, result: dict[str, Any], ratio: str) -> None:
    """The replication section kept apart as well (bench/results/replication.md and .json), with the
    machine and its load: docs/performance/replication.md shows the last run that measured it."""
    try:
        load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        load = "?"
    kind = "QUICK" if cfg.quick else "full"
    head = (
        f"Measured by a {kind} `make bench` on {machine['timestamp']}. Machine: {machine['cpu']},"
        f" {machine['nproc']} CPUs; load average at the end of the run (1 / 5 / 15 min): {load}."
    )
    section = markdown(result)
    title, _, rest = section.partition("\n")
    (report.RESULTS / "replication.md").write_text(f"{title}\n\n{head}\n{rest}\n- {ratio}\n")
    kept = {"machine": machine, "kind": kind, "load_average": load, "replication": result}
    (report.RESULTS / "replication.json").write_text(json.dumps(kept, indent=2, default=str) + "\n")
