"""What traces cost a hot hit, for ``make bench``: the same cached product reads in one process
with tracing off (the default: nothing is instrumented) and then on (every instrumentation
installed, as ``OTEL_TRACES_EXPORTER`` turns it on, the spans handed to an in-memory exporter)."""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any

from bench import report
from bench.inprocess import Driver


def _hits(plan: list[tuple[str, str]]) -> tuple[list[float], Counter[tuple[int, str]]]:
    driver = Driver()  # made after tracing is turned on or off: Django reads its middleware then
    driver.timed(plan)  # warm: every entry read once, the process's paths resolved
    gc.collect()
    return driver.timed(plan)


def hot_hit_tracing(hot: list[str], requests: int) -> dict[str, Any]:
    """Latency (µs) of ``requests`` hot hits over ``hot`` with tracing off, then on; tracing is
    off again afterwards."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from hybridsite import tracing

    plan = [(sku, f"/api/products/{sku}/") for sku in (hot * (requests // len(hot) + 1))[:requests]]
    off, off_outcomes = _hits(plan)
    exporter = InMemorySpanExporter()
    if not tracing.tracing_install(exporter):
        raise RuntimeError("tracing could not be turned on")
    try:
        on, on_outcomes = _hits(plan)
    finally:
        tracing.tracing_uninstall()
        exporter.clear()
    return {
        "off_us": report.summarize(off), "on_us": report.summarize(on),
        "outcomes_off": {f"{status} {layer}": n for (status, layer), n in off_outcomes.items()},
        "outcomes_on": {f"{status} {layer}": n for (status, layer), n in on_outcomes.items()},
    }
