"""The rest of the hybrid playbook, and what traces cost, for ``make bench``: a customer's order list
on the hot path, search cached and uncached, a staff export's rows/s and memory, and the hot hit
with tracing off and on. Each measurement is its module's own (bench/orders.py, search.py,
exports.py, tracingcost.py); this phase runs them in one process and renders their table."""

from __future__ import annotations

import time
from typing import Any

from django.test import override_settings

from bench import exports, orders, search, tracingcost
from bench.config import Clock, Config


def phase(cfg: Config, hot: list[str], clock: Clock) -> dict[str, Any]:
    began = time.perf_counter()
    from django.conf import settings

    unlimited = {scope: 10**9 for scope in settings.THROTTLE_RATES}
    with override_settings(THROTTLE_RATES=unlimited):
        results = {
            "orders": orders.order_list_hit(
                sku=hot[0], customers=20 if cfg.quick else 100, requests=1000 if cfg.quick else 5000,
                count_requests=100 if cfg.quick else 500, prefix=f"bench-orders-{time.time_ns()}",
            ),
            "search": search.search(n=100 if cfg.quick else 300, count_requests=30),
            "export": exports.export(rows=100_000 if cfg.quick else 1_000_000),
            "tracing": tracingcost.hot_hit_tracing(hot, requests=2000 if cfg.quick else 10_000),
        }
    clock.step("orders, search, exports, tracing", began)
    return results


def _us(summary: dict[str, float]) -> str:
    return f"{summary['p50']:,.0f} / {summary['p95']:,.0f}"


def _calls(counts: dict[str, float]) -> str:
    names = {
        "queries": "Postgres queries", "dynamodb_calls": "DynamoDB calls", "redis_round_trips": "Redis round trips",
    }
    return ", ".join(f"{counts[key]:.1f} {name}" for key, name in names.items() if key in counts)


def markdown(results: dict[str, Any]) -> str:
    order_list, found, exported, traced = (results[k] for k in ("orders", "search", "export", "tracing"))
    cached, uncached = found["counts_cached"], found["counts_uncached"]
    off, on = traced["off_us"]["p50"], traced["on_us"]["p50"]
    rows = [
        "## Orders, search, exports, tracing (in process)",
        "",
        "| measurement | p50 / p95 µs | per request |",
        "|---|---:|---|",
        f"| order list hit (`GET /api/orders/`, token) | {_us(order_list['latency_us'])} |"
        f" {_calls(order_list['counts'])} |",
        f"| search, uncached | {_us(found['uncached_us'])} | {_calls(uncached)} |",
        f"| search, cached | {_us(found['cached_us'])} | {_calls(cached)} |",
        f"| hot hit, tracing off | {_us(traced['off_us'])} | |",
        f"| hot hit, tracing on (every instrumentation, in-memory exporter) | {_us(traced['on_us'])} |"
        f" {on / off:.2f}× the p50 off |",
        "",
        f"Export of orders.csv: {exported['rows']:,} rows in {exported['seconds']} s"
        f" ({exported['rows_per_s']:,} rows/s,"
        f" {exported['mb']} MB); resident memory {exported['rss_before_mb']} MB before, {exported['rss_peak_mb']} MB"
        " at its peak.",
        "",
    ]
    return "\n".join(rows)
