"""The drift watch: a sampled drift check on beat's schedule, stored for the admin, loud on drift.

A sampled check can meet a change in flight (committed, not yet projected). An aggregate counts as
drifted only when a second check of it alone, right after, still differs and no outbox row of it
is pending: what remains is drift the relay will not fix by itself (a lost write, a dead row, a
hand-edited item).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.utils import timezone

from catalog.models import OutboxEvent
from projections import metrics
from projections.drift import Report, check
from projections.projector import project

from .models import DriftRun

logger = logging.getLogger(__name__)


def _by_type(pairs: set[tuple[str, int]]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for name, aggregate_id in sorted(pairs):
        grouped[name].append(aggregate_id)
    return grouped


def _pending(pairs: set[tuple[str, int]]) -> set[tuple[str, int]]:
    pending: set[tuple[str, int]] = set()
    for name, ids in _by_type(pairs).items():
        rows = OutboxEvent.objects.filter(
            status=OutboxEvent.Status.PENDING, aggregate_type=name, aggregate_id__in=ids
        ).values_list("aggregate_type", "aggregate_id")
        pending.update(rows)
    return pending


def confirmed(report: Report) -> set[tuple[str, int]]:
    """The drifted aggregates of ``report`` that still differ on a second look, with nothing pending."""
    if report.clean:
        return set()
    again = check(ids=_by_type(report.drifted))
    return (report.drifted & again.drifted) - _pending(again.drifted)


def drift_watch_run(*, sample: int | None = None) -> DriftRun:
    """Run one sampled check and store it; drift is logged at error level and counted."""
    size = sample or settings.DRIFT_WATCH_SAMPLE
    started = timezone.now()
    report = check(sample=size)
    drifted = confirmed(report)
    run = DriftRun.objects.create(
        started_at=started, finished_at=timezone.now(), sample=size, checked=report.checked,
        missing=report.missing, stale=report.stale, differ=report.differ, extra=report.extra,
        drifted=[[name, aggregate_id] for name, aggregate_id in sorted(drifted)],
    )
    metrics.incr_many({"drift.runs": 1, "drift.drifted": len(drifted)})
    if drifted:
        logger.error("drift watch: %d aggregates drifted (%s); repair from the admin", len(drifted), report.line())
    return run


def drift_repair(*, run: DriftRun) -> int:
    """Re-project every aggregate the run found drifted; returns how many were repaired."""
    for name, aggregate_id in run.drifted:
        project(name, aggregate_id, repair=True)
    DriftRun.objects.filter(pk=run.pk).update(repaired_at=timezone.now(), repaired=len(run.drifted))
    return len(run.drifted)
