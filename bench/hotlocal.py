"""Phase 4b: the hot read over HTTP with the process-local layer on (``HOT_READ_LOCAL_CACHE=1``),
and the window in which two processes may answer different versions.

The same gunicorn (2 sync workers) and wrk as phase 4, started with the layer on, read the read set.
Then, for ``samples`` products of the read set, one after another: the product's price is changed
and projected in this process (Postgres, DynamoDB, then Redis, whose write sends the invalidation),
and the moment the projection returns, gunicorn is asked for the product again and again until it
answers the new version. Reported: the answers at the old version after the write was
acknowledged (the window, counted), and the time from the acknowledgement to the first answer at
the new version, beside the time of one hit over the same connection (the window, timed).
"""

from __future__ import annotations

import http.client
import time
from decimal import Decimal
from typing import Any

import orjson

from bench import report
from bench.config import Clock, Config
from bench.overhttp import run_wrk
from bench.paths import URLS
from bench.procs import Processes


def coherence(port: int, skus: list[str]) -> dict[str, Any]:
    from catalog.models import Price, Product
    from catalog.services import price_set
    from projections.projector import project

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def read(sku: str) -> int:
        connection.request("GET", URLS["hit"](sku))
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"coherence: {sku} answered {response.status}: {body[:200]!r}")
        return int(orjson.loads(body)["version"])

    for sku in skus:  # each in a worker's layer (two reads per worker, at least)
        for _ in range(6):
            read(sku)
    hits: list[float] = []
    window: list[float] = []
    stale = 0
    products = {p.sku: p for p in Product.objects.filter(sku__in=skus)}
    amounts = dict(Price.objects.filter(product__sku__in=skus, currency="EUR").values_list("product__sku", "amount"))
    for sku in skus:
        began = time.perf_counter()
        read(sku)
        hits.append((time.perf_counter() - began) * 1e6)
        product = products[sku]
        price_set(product=product, currency="EUR", amount=amounts.get(sku, Decimal(0)) + Decimal("0.01"))
        version = project("product", product.pk).version
        acknowledged = time.perf_counter()
        while read(sku) < version:
            stale += 1
        window.append((time.perf_counter() - acknowledged) * 1e6)
    connection.close()
    return {
        "samples": len(skus),
        "stale_answers": stale,
        "first_new_answer_us": report.summarize(window),
        "hit_us": report.summarize(hits),
    }


def phase(cfg: Config, procs: Processes, hot: list[str], clock: Clock) -> dict[str, Any]:
    began = time.perf_counter()
    port = procs.gunicorn(workers=2, env={"HOT_READ_LOCAL_CACHE": "1"})
    try:
        paths = list(dict.fromkeys(URLS["hit"](sku) for sku in hot))
        run_wrk(port, paths, cfg.http_warmup_seconds, cfg.concurrency)
        measured = run_wrk(port, paths, cfg.http_seconds, cfg.concurrency)
        measured.pop("generator")
        window = coherence(port, hot[: 20 if cfg.quick else 100])
    finally:
        for _, process in [p for p in procs.running if p[0] == "gunicorn"]:
            procs.stop(process)
    clock.step(
        "HTTP hit, local layer", began,
        f"{measured['requests_per_second']:,.0f} req/s, served from {measured.get('served_from', '?')};"
        f" {window['stale_answers']} answers at the old version after {window['samples']} acknowledged writes,"
        f" first new answer p50 {window['first_new_answer_us']['p50']:,.0f} µs"
        f" (a hit: {window['hit_us']['p50']:,.0f} µs)",
    )
    return {"http": measured, "coherence": window}


def markdown(result: dict[str, Any], http: dict[str, Any]) -> str:
    local_rps = result["http"]["requests_per_second"]
    paths = http["paths"]
    window = result["coherence"]
    first, hit = window["first_new_answer_us"], window["hit_us"]
    lines = [
        "## The hot read with the process-local layer (HOT_READ_LOCAL_CACHE=1)",
        "",
        "| over HTTP (gunicorn 2 sync workers, wrk) | req/s | vs ORM |",
        "|---|---:|---:|",
        f"| ORM (DRF serializer) | {paths['orm']['requests_per_second']:,.0f} | 1.0x |",
        f"| hit, Redis (the default) | {paths['hit']['requests_per_second']:,.0f} |"
        f" {paths['hit']['requests_per_second'] / paths['orm']['requests_per_second']:.1f}x |",
        f"| hit, local layer | {local_rps:,.0f} | {local_rps / paths['orm']['requests_per_second']:.1f}x |",
        "",
        f"Two processes: after each of {window['samples']} writes (price changed, projected; the projection's"
        f" Redis write acknowledged), gunicorn was read until it answered the new version:"
        f" {window['stale_answers']} answers at the old version in all; first answer at the new version"
        f" p50 {first['p50']:,.0f} µs, p95 {first['p95']:,.0f} µs, max {first['max']:,.0f} µs after the"
        f" acknowledgement, where one hit over the same connection takes p50 {hit['p50']:,.0f} µs.",
    ]
    return "\n".join(lines) + "\n"


def ratio_line(result: dict[str, Any], http: dict[str, Any]) -> str:
    orm = http["paths"]["orm"]["requests_per_second"]
    redis_hit = http["paths"]["hit"]["requests_per_second"]
    local_hit = result["http"]["requests_per_second"]
    return (
        f"HTTP hit vs ORM (wrk, >= 10x is the target): Redis hit {redis_hit / orm:.1f}x, local layer"
        f" {local_hit / orm:.1f}x ({local_hit:,.0f} vs {orm:,.0f} req/s)"
    )
