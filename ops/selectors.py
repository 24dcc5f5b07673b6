"""Reads of the ops app: the outbox and the write-back consumer at scrape time, the SLO history for
the admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from catalog.models import OutboxEvent
from projections.models import OwnerManifest
from writeback.models import DeadLetter, ShardLease

from . import slo
from .models import SloSample


@dataclass(frozen=True)
class Backlog:
    pending: int
    dead: int
    oldest_pending_age_seconds: float


def outbox_backlog(*, now: datetime | None = None) -> Backlog:
    """One query over the outbox (its status index): rows waiting, rows dead-lettered, and how long
    the oldest waiting row has waited since its commit."""
    pending = Q(status=OutboxEvent.Status.PENDING)
    row = OutboxEvent.objects.aggregate(
        pending=Count("id", filter=pending),
        dead=Count("id", filter=Q(status=OutboxEvent.Status.DEAD)),
        oldest=Min("created_at", filter=pending),
    )
    oldest = row["oldest"]
    age = max(0.0, ((now or timezone.now()) - oldest).total_seconds()) if oldest else 0.0
    return Backlog(pending=row["pending"], dead=row["dead"], oldest_pending_age_seconds=age)


@dataclass(frozen=True)
class WritebackState:
    parked: int
    shards_unowned: int


def writeback_state(*, now: datetime | None = None) -> WritebackState:
    """Records parked for an operator, and open shards no live consumer holds: nothing reads them
    (every consumer gone), so their changes wait in the stream. A deployment where Lambda applies
    the stream keeps no leases and shows 0."""
    unowned = ShardLease.objects.filter(finished=False, lease_expires_at__lt=now or timezone.now()).count()
    return WritebackState(parked=DeadLetter.objects.count(), shards_unowned=unowned)


def unstorable_documents() -> int:
    """Documents too large for DynamoDB at their aggregate's current version (Postgres serves
    them): one query over the manifests' partial index of those that have any."""
    return OwnerManifest.objects.filter(unstorable__gt=0).aggregate(total=Sum("unstorable"))["total"] or 0


WINDOWS = (("last hour", timedelta(hours=1), 60), ("last day", timedelta(days=1), 96))


@dataclass(frozen=True)
class ObjectiveReport:
    objective: slo.Objective
    windows: list[slo.Window]


def slo_report(*, now: datetime | None = None) -> list[ObjectiveReport]:
    """Every objective over the last hour (a point a minute) and the last day (a point per 15 minutes)."""
    end = now or timezone.now()
    longest = max(span for _, span, _ in WINDOWS)
    samples = list(SloSample.objects.filter(at__gt=end - longest, at__lte=end).values_list("at", "delta"))
    return [
        ObjectiveReport(objective, [
            slo.evaluate(objective, samples, label=label, end=end, span=span, bins=bins)
            for label, span, bins in WINDOWS
        ])
        for objective in slo.objectives()
    ]
