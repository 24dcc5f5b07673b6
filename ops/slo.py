"""Service level objectives, and the arithmetic of histograms sampled over time.

The history is a row per sample (``SloSample``), written by beat's ``ops.slo_sample`` from the
Prometheus registry of the host's processes: a window's numbers are the sum of its rows' deltas,
its percentiles interpolated in the histogram buckets as Prometheus's ``histogram_quantile`` does.

A "p95 ≤ X" objective allows 5 % of events above X: the error budget. Budget left is
``1 - bad_fraction / allowed_fraction`` (below 0: spent), the burn rate ``bad_fraction /
allowed_fraction`` (1 spends the budget exactly over the window).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

# The histograms the objectives are about, by the name each is registered under. The write-back
# consumer's is observed by that app; until it reports, its objective shows "no data".
HISTOGRAMS = {
    "read": "hybridsite_read_seconds",
    "projection_lag": "hybridsite_projection_lag_seconds",
    "writeback_lag": "hybridsite_writeback_lag_seconds",
    # Observed by cache_follow once per heartbeat interval (hybridsite/heartbeat.py).
    "replication_lag": "hybridsite_replication_lag_check_seconds",
}
READ_ERRORS = "read_errors"

Histogram = dict[str, Any]  # {"buckets": [[upper bound, cumulative count], ...], "count": n}


# --- histograms -----------------------------------------------------------------------------------


def histogram(buckets: dict[str, float]) -> Histogram:
    ordered = sorted(buckets.items(), key=lambda item: float(item[0]))
    return {
        "buckets": [[bound, int(count)] for bound, count in ordered],
        "count": int(ordered[-1][1]) if ordered else 0,
    }


def registry_totals(registry: Any) -> dict[str, Any]:
    """The objectives' histograms as the registry adds them up over every label, and the count of
    reads that failed (outcome ``error``)."""
    keys = {name: key for key, name in HISTOGRAMS.items()}
    buckets: dict[str, dict[str, float]] = {}
    errors = 0.0
    for family in registry.collect():
        key = keys.get(family.name)
        if key is None:
            continue
        for sample in family.samples:
            if sample.name == f"{family.name}_bucket":
                found = buckets.setdefault(key, {})
                found[sample.labels["le"]] = found.get(sample.labels["le"], 0.0) + sample.value
            elif key == "read" and sample.name == f"{family.name}_count" and sample.labels.get("outcome") == "error":
                errors += sample.value
    totals: dict[str, Any] = {key: histogram(found) for key, found in buckets.items()}
    if "read" in totals:
        totals[READ_ERRORS] = int(errors)
    return totals


def _histogram_delta(current: Histogram, previous: Histogram | None) -> Histogram:
    if previous is None or current["count"] < previous["count"]:  # new, or reset by a restart
        return current
    before = {bound: count for bound, count in previous["buckets"]}
    return {
        "buckets": [[bound, max(0, count - before.get(bound, 0))] for bound, count in current["buckets"]],
        "count": current["count"] - previous["count"],
    }


def totals_delta(current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """What was counted between two samples."""
    previous = previous or {}
    delta: dict[str, Any] = {}
    for key in HISTOGRAMS:
        if key in current:
            delta[key] = _histogram_delta(current[key], previous.get(key))
    if READ_ERRORS in current:
        before = previous.get(READ_ERRORS, 0)
        delta[READ_ERRORS] = current[READ_ERRORS] - before if current[READ_ERRORS] >= before else current[READ_ERRORS]
    return delta


def _cumulative_at(item: Histogram, upper: float) -> int:
    """Observations at or below ``upper`` as far as the item's own bounds tell."""
    below = 0
    for bound, cumulative in item["buckets"]:
        if float(bound) > upper:
            break
        below = cumulative
    return below


def histogram_sum(histograms: Iterable[Histogram]) -> Histogram:
    """Added up on the union of their bounds (bounds that changed between deploys still add up)."""
    items = list(histograms)
    bounds = {bound for item in items for bound, _ in item["buckets"]}
    return histogram({bound: sum(_cumulative_at(item, float(bound)) for item in items) for bound in bounds})


def quantile(item: Histogram, q: float) -> float | None:
    """Linear interpolation inside the bucket holding the rank; the highest finite bound when the
    rank falls in +Inf. None without observations."""
    if not item["count"]:
        return None
    rank = q * item["count"]
    lower, below = 0.0, 0
    for bound, cumulative in item["buckets"]:
        upper = float(bound)
        if cumulative >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (cumulative - below) if cumulative > below else upper
        lower, below = upper, cumulative
    return lower


def count_above(item: Histogram, threshold: float) -> float:
    """Observations above ``threshold``, interpolated inside its bucket."""
    lower, below = 0.0, 0
    for bound, cumulative in item["buckets"]:
        upper = float(bound)
        if threshold < upper:
            at = below if math.isinf(upper) else below + (cumulative - below) * (threshold - lower) / (upper - lower)
            return item["count"] - at
        lower, below = upper, cumulative
    return 0.0


# --- objectives -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    key: str
    title: str
    source: str  # a key of HISTOGRAMS
    threshold: float  # seconds for a latency, a fraction for an error rate
    allowed: float  # the fraction of events that may be bad
    unit: str  # ms or %

    @property
    def is_latency(self) -> bool:
        return self.unit == "ms"

    @property
    def percentile(self) -> str:
        """The percentile a latency objective bounds: p95 allows 5 % above, p99 1 %."""
        return f"p{100 - self.allowed * 100:g}"

    @property
    def target(self) -> float:
        """The objective in the unit shown."""
        return self.threshold * 1000 if self.is_latency else self.threshold * 100

    def describe(self) -> str:
        if self.is_latency:
            return f"{self.percentile} ≤ {self.target:g} ms"
        return f"≤ {self.target:g} % of reads fail (5xx)"


def objectives() -> list[Objective]:
    return [
        Objective("read_latency", "Read latency", "read", settings.SLO_READ_P95_MS / 1000, 0.05, "ms"),
        Objective(
            "read_errors", "Read errors", "read",
            settings.SLO_READ_ERROR_PERCENT / 100, settings.SLO_READ_ERROR_PERCENT / 100, "%",
        ),
        Objective(
            "projection_lag", "Projection lag (commit → DynamoDB)", "projection_lag",
            settings.SLO_PROJECTION_LAG_P95_MS / 1000, 0.05, "ms",
        ),
        Objective(
            "writeback_lag", "Write-back lag (DynamoDB → Postgres)", "writeback_lag",
            settings.SLO_WRITEBACK_LAG_P95_MS / 1000, 0.05, "ms",
        ),
        Objective(
            "replication_lag", "Replication lag (home region → this region's DynamoDB)", "replication_lag",
            settings.SLO_REPLICATION_LAG_SECONDS, 0.01, "ms",
        ),
    ]


@dataclass
class Window:
    """One objective over one window: the events, the bad ones, the value shown, and a point per bin."""

    label: str
    start: datetime
    end: datetime
    total: int = 0
    bad: float = 0.0
    value: float | None = None
    points: list[tuple[datetime, float | None]] = field(default_factory=list)
    allowed: float = 0.0

    @property
    def has_data(self) -> bool:
        return self.total > 0

    @property
    def burn_rate(self) -> float | None:
        return (self.bad / self.total) / self.allowed if self.total else None

    @property
    def budget_left(self) -> float | None:
        """The fraction of the window's error budget not spent (negative: overspent)."""
        return None if self.burn_rate is None else 1 - self.burn_rate

    @property
    def met(self) -> bool | None:
        return None if self.burn_rate is None else self.burn_rate <= 1


def _value(objective: Objective, deltas: list[dict[str, Any]]) -> tuple[int, float, float | None]:
    """Events, bad events and the value shown for some deltas."""
    item = histogram_sum(delta[objective.source] for delta in deltas if objective.source in delta)
    total = item["count"]
    if not total:
        return 0, 0.0, None
    if objective.is_latency:
        shown = quantile(item, 1 - objective.allowed)
        return total, count_above(item, objective.threshold), None if shown is None else shown * 1000
    errors = sum(delta.get(READ_ERRORS, 0) for delta in deltas)
    return total, float(errors), errors / total * 100


def evaluate(
    objective: Objective, samples: list[tuple[datetime, dict[str, Any]]], *, label: str, end: datetime,
    span: timedelta, bins: int,
) -> Window:
    """``samples``: (time, delta) pairs, any order; those in (end - span, end] count."""
    start = end - span
    inside = [(at, delta) for at, delta in samples if start < at <= end]
    window = Window(label=label, start=start, end=end, allowed=objective.allowed)
    window.total, window.bad, window.value = _value(objective, [delta for _, delta in inside])
    width = span / bins
    grouped: list[list[dict[str, Any]]] = [[] for _ in range(bins)]
    for at, delta in inside:
        grouped[min(bins - 1, int((at - start) / width))].append(delta)
    window.points = [(start + width * (i + 1), _value(objective, group)[2]) for i, group in enumerate(grouped)]
    return window
