"""Figures into a markdown table, a JSON file, PNG plots and the closing ratios."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import cpu

RESULTS = Path(__file__).resolve().parent / "results"

PATH_TITLES = {
    "floor": "1. floor: DRF APIView, constant bytes",
    "orm": "2. ORM + DRF serializer",
    "cachalot": "3. django-cachalot over 2",
    "hit": "4. Hybridsite, Redis hit",
    "dynamodb": "5. Hybridsite, Redis miss, DynamoDB hit",
    "cold": "6. Hybridsite, cold: project() on the read",
}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank on already sorted values."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def summarize(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50), "p95": percentile(ordered, 95), "p99": percentile(ordered, 99),
        "mean": sum(ordered) / len(ordered) if ordered else float("nan"),
        "max": ordered[-1] if ordered else float("nan"),
    }


def machine() -> dict[str, Any]:
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    packages = ("Django", "djangorestframework", "django-cachalot", "pynamodb", "redis", "celery", "gunicorn", "moto")
    return {
        "machine": subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip() or platform.machine(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in packages},
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def dynamodb_description() -> str:
    from django.conf import settings

    return (
        f"{settings.DYNAMODB_ENGINE}, endpoint {settings.DYNAMODB_ENDPOINT or '(AWS)'},"
        f" tables {settings.DYNAMODB_TABLE_PREFIX}*"
    )


def _version(name: str) -> str:
    try:
        return version(name)
    except Exception:
        return "?"


def _us(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _per_request(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def markdown(results: dict[str, Any]) -> str:
    m, cfg = results["machine"], results["config"]
    lines = [
        f"# Hybridsite bench ({'QUICK' if cfg['quick'] else 'full'} run, {m['timestamp']})",
        "",
        f"Machine: {m['machine']}, {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']};"
        f" Python {m['python']}, Django {m['versions']['Django']}, DRF {m['versions']['djangorestframework']},"
        f" django-cachalot {m['versions']['django-cachalot']}. DynamoDB: {cfg['dynamodb']}; Postgres and Redis:"
        f" the launcher's, on loopback. A local emulator's speed says nothing of DynamoDB's: read the call counts too.",
        f"Data: {cfg['products']:,} products (seed_demo), reads over {cfg['hot_skus']:,} active SKUs."
        f" The run took {results['durations_seconds']['total']:.0f} s.",
        "",
        "## Read paths",
        "",
        f"In-process: requests through Django's WSGI handler, one after another (N each). HTTP: gunicorn,"
        f" 2 sync workers, {results['http']['generator']}, {cfg['http_seconds']:g} s per path."
        f" Queries are those Django executes (CONN_HEALTH_CHECKS adds an uncounted `SELECT 1` per request that"
        f" touches the database); DynamoDB calls counted with a botocore `before-call` hook; Redis round trips"
        f" counted per packed send (a script or a pipeline is one).",
        "",
        "| path | p50 µs | p95 µs | p99 µs | N | PG queries/req | DynamoDB calls/req | Redis round trips/req"
        " | HTTP req/s | HTTP p50 ms | HTTP p99 ms | HTTP non-200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, title in PATH_TITLES.items():
        p = results["paths"][name]
        lat, counts, http = p["latency_us"], p["counts"], results["http"]["paths"].get(name, {})
        non_ok = sum(v for k, v in http.get("status", {}).items() if k != "200") + sum(http.get("errors", {}).values())
        lines.append(
            f"| {title} | {_us(lat['p50'])} | {_us(lat['p95'])} | {_us(lat['p99'])} | {lat['n']:,} |"
            f" {_per_request(counts['queries'])} | {_per_request(counts['dynamodb_calls'])} |"
            f" {_per_request(counts['redis_round_trips'])} | {http.get('requests_per_second', float('nan')):,.0f} |"
            f" {http.get('latency_us', {}).get('p50', float('nan')) / 1000:,.1f} |"
            f" {http.get('latency_us', {}).get('p99', float('nan')) / 1000:,.1f} | {non_ok} |"
        )
    lines += ["", "Notes on the paths:", ""]
    lines += [f"- {note}" for note in results["notes"]]

    lines += [
        "",
        "## Under concurrent price updates (catalog.services.price_set, a real Celery worker projecting)",
        "",
        "Reads alternate between the cachalot view and the Hybridsite view, in process, on random SKUs of the"
        " read set, while a separate process writes prices of random SKUs of the same set. Hybridsite hit ="
        " `X-Served-From: cache`; cachalot hit = the request ran 0 queries (partial = some of its 3 queries ran).",
        "",
        "| writes/s target (achieved) | cachalot hit ratio | cachalot partial | cachalot queries/req | cachalot p95 µs"
        " | Hybridsite hit ratio | Hybridsite p95 µs | reads each |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["write_load"]:
        c, h = row["cachalot"], row["hit"]
        lines.append(
            f"| {row['writer']['target_rate']:g} ({row['writer']['achieved_rate']:.1f}) | {c['hit_ratio']:.1%} |"
            f" {c['partial_ratio']:.1%} | {c['queries_per_request']:.2f} | {_us(c['latency_us']['p95'])} |"
            f" {h['hit_ratio']:.2%} | {_us(h['latency_us']['p95'])} | {c['latency_us']['n']:,} |"
        )

    lines += _behind(results["write_load"])
    lines += [
        "",
        "## Projection lag (commit → document in DynamoDB)",
        "",
        "From each document's own timestamps, `projected_at - source_committed_at` (the product's"
        " `updated_at`, set by its trigger in the writing transaction). Each write goes to a different product,"
        " so each document times exactly one write.",
        "",
        "| writes/s target (achieved) | writes | documents timed | not projected | p50 ms | p95 ms | p99 ms | max ms"
        " | drain after last write s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["lag"]:
        lag = row["lag_ms"]
        lines.append(
            f"| {row['writer']['target_rate']:g} ({row['writer']['achieved_rate']:.1f}) | {row['writer']['done']:,} |"
            f" {lag['n']:,} | {row['not_projected']:,} | {_ms(lag['p50'])} | {_ms(lag['p95'])} | {_ms(lag['p99'])}"
            f" | {_ms(lag['max'])} |"
            f" {row['drain_seconds']:.1f} |"
        )
    lines += ["", *cpu.table(
        "CPU milliseconds per write, by process (read from /proc while each phase ran, writes and their"
        " projections; `projector`: the Celery worker, `writer`: the write load, `dynamodb`: the DynamoDB engine):",
        [(f"{row['writer']['target_rate']:g} writes/s", row.get("cpu_ms_per_write", {})) for row in results["lag"]],
    )]
    lines += _behind(results["lag"])
    b = results["backfill"]
    lines += [
        "",
        "## Backfill",
        "",
        f"{b['documents']:,} products projected by `projections.backfill.backfill('product')`"
        f" ({b.get('processes', 1)} process(es) of {b['workers']} threads, chunk {b['chunk']}) in {b['seconds']:.1f} s:"
        f" **{b['docs_per_second']:,.0f} documents/s**"
        + (f" ({calls:.1f} DynamoDB calls per product)." if (calls := b.get("dynamodb_calls_per_product")) else ".")
        + ("" if not cfg["quick"] else f" QUICK run: {b['documents']:,} products, not 10,000."),
        "",
    ]
    c = results["checkout"]
    lat, counts = c["latency_us"], c["counts"]
    lines += [
        "## Checkout",
        "",
        "`POST /api/orders/` in process, one after another, each by another customer with a fresh Idempotency-Key"
        " and a cart of two products (filled beforehand, untimed): the key claimed and completed in DynamoDB, the"
        " cart read and cleared, one Postgres transaction (order row, prices, stock rows locked and decremented"
        " across warehouses, lines, allocations).",
        "",
        "| path | p50 µs | p95 µs | p99 µs | N | PG queries/req | DynamoDB calls/req | Redis round trips/req"
        " | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| checkout | {_us(lat['p50'])} | {_us(lat['p95'])} | {_us(lat['p99'])} | {lat['n']:,} |"
        f" {_per_request(counts['queries'])} | {_per_request(counts['dynamodb_calls'])} |"
        f" {_per_request(counts['redis_round_trips'])} | {c['statuses']} |",
        "",
    ]
    lines += _carts(results["carts"])
    return "\n".join(lines)


def _carts(results: dict[str, Any]) -> list[str]:
    """Cart writes (in process and over HTTP) and the write-back lag (bench/carts.py)."""
    write, http, lag = results["write"], results["http"], results["writeback"]
    lat, counts, wb = write["latency_us"], write["counts"], lag["lag_ms"]
    non_ok = sum(v for k, v in http["status"].items() if k != "200") + sum(http["errors"].values())
    lines = [
        "## Cart writes and write-back",
        "",
        "`PUT /api/cart/items/<sku>/` in process, one after another, spread over 200 customers (each request changes"
        " its cart: another quantity of one of its five products); over HTTP the same requests through gunicorn"
        f" (2 sync workers), {http['generator']}.",
        "",
        "| path | p50 µs | p95 µs | p99 µs | N | PG queries/req | DynamoDB calls/req | Redis round trips/req"
        " | HTTP req/s | HTTP p50 ms | HTTP p99 ms | HTTP non-200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| cart write | {_us(lat['p50'])} | {_us(lat['p95'])} | {_us(lat['p99'])} | {lat['n']:,} |"
        f" {_per_request(counts['queries'])} | {_per_request(counts['dynamodb_calls'])} |"
        f" {_per_request(counts['redis_round_trips'])} | {http['requests_per_second']:,.0f} |"
        f" {http['latency_us']['p50'] / 1000:,.1f} | {http['latency_us']['p99'] / 1000:,.1f} | {non_ok} |",
        "",
        f"Write-back lag: cart writes at {lag['target_rate']:g}/s through the cart services ({lag['writer_threads']}"
        " threads, open loop), each a new cart, with a `manage.py streams_consume` process running; lag = DynamoDB's"
        f" acknowledgement of the write → its row committed in Postgres, seen by a poll every {lag['poll_ms']:g} ms"
        " (so up to one poll high).",
        "",
        "| writes/s target (achieved) | writes | copied | p50 ms | p95 ms | p99 ms | max ms | write errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| {lag['target_rate']:g} ({lag['achieved_rate']:.1f}) | {lag['writes']:,} | {wb['n']:,} | {_ms(wb['p50'])} |"
        f" {_ms(wb['p95'])} | {_ms(wb['p99'])} | {_ms(wb['max'])} | {lag['errors'] or 'none'} |",
        "",
    ]
    return lines


def _behind(rows: list[dict[str, Any]]) -> list[str]:
    """Say so when the writer could not keep its rate: the figures are for the rate it reached."""
    slow = [row["writer"] for row in rows if row["writer"]["achieved_rate"] < 0.9 * row["writer"]["target_rate"]]
    if not slow:
        return []
    reached = ", ".join(f"{w['achieved_rate']:.0f} of {w['target_rate']:g}" for w in slow)
    return [
        "",
        f"The writer fell behind its schedule ({reached} writes/s): every process of the run shares this machine's"
        f" CPUs. The figures on those rows are for the rate reached.",
    ]


def lag_over_time(row: dict[str, Any]) -> list[str]:
    """Lag percentiles per time bucket of commit time, for the text output (the plot has every point)."""
    points = row["points"]
    if not points:
        return [f"  {row['writer']['target_rate']:g} writes/s: no documents timed"]
    span = max(t for t, _ in points)
    bucket = max(1.0, round(span / 10))
    out = [f"  {row['writer']['target_rate']:g} writes/s (t = commit time since the first write):"]
    for start in range(0, int(span // bucket) + 1):
        values = sorted(lag for t, lag in points if start * bucket <= t < (start + 1) * bucket)
        if values:
            out.append(
                f"    t={start * bucket:5.0f}-{(start + 1) * bucket:<3.0f}s  n={len(values):<5d}"
                f" p50={percentile(values, 50):7.1f} ms  p95={percentile(values, 95):7.1f} ms  max={values[-1]:7.1f} ms"
            )
    return out


def ratio_lines(results: dict[str, Any]) -> list[str]:
    hit = results["paths"]["hit"]["latency_us"]["p50"]
    hit_rps = results["http"]["paths"]["hit"]["requests_per_second"]
    out = [
        "Ratios, Hybridsite Redis hit vs each (latency: their p50 / hit p50, >1 = the hit is faster;"
        " throughput: hit req/s / their req/s):"
    ]
    for name, label in (("floor", "floor"), ("orm", "ORM"), ("cachalot", "cachalot")):
        other = results["paths"][name]["latency_us"]["p50"]
        other_rps = results["http"]["paths"][name]["requests_per_second"]
        out.append(
            f"Hybridsite hit vs {label + ':':<9} latency p50 {_ratio(other, hit)} ({hit:,.0f} µs vs {other:,.0f} µs),"
            f" HTTP throughput {_ratio(hit_rps, other_rps)} ({hit_rps:,.0f} vs {other_rps:,.0f} req/s)"
        )
    return out


def _ratio(a: float, b: float) -> str:
    return f"{a / b:5.2f}x" if b else "  n/a"


def plots(results: dict[str, Any], latencies: dict[str, list[float]]) -> list[str]:
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(10, 6))
    for name, title in PATH_TITLES.items():
        values = sorted(latencies.get(name, []))
        if values:
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=title)
    ax.set_xscale("log")
    ax.set_xlabel("latency per request, µs (in-process, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("Latency distribution per read path (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = RESULTS / "latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path.name)

    rows = results["lag"]
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 3.2 * len(rows)), squeeze=False)
    for ax, row in zip(axes[:, 0], rows):
        points = row["points"]
        ax.scatter([t for t, _ in points], [lag for _, lag in points], s=4, alpha=0.5)
        ax.set_title(f"Projection lag at {row['writer']['target_rate']:g} writes/s"
                     f" (achieved {row['writer']['achieved_rate']:.1f})")
        ax.set_xlabel("commit time since the first write, s")
        ax.set_ylabel("lag, ms")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = RESULTS / "lag.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path.name)
    return written
