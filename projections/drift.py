"""Drift check: compare what Postgres says the projections should hold with what DynamoDB holds.

An append-only view (a product's history) is checked for the items the current state adds (the
current version must be there, as it was projected); older versions are history, never extra.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import orjson
from django.utils import timezone

from hybridsite.dynamodb import get_item

from . import documents
from .projector import key_of, owned_items, read_snapshot
from .registry import AGGREGATES, Aggregate
from .tables import ProjectedItem


@dataclass
class Report:
    checked: int = 0
    missing: int = 0
    stale: int = 0
    differ: int = 0
    extra: int = 0
    unstorable: int = 0
    """Documents DynamoDB holds as placeholders: too large to store, served from Postgres."""
    drifted: set[tuple[str, int]] = field(default_factory=set)
    """(aggregate, id) pairs to re-project for a repair."""

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.differ or self.extra or self.unstorable)

    def line(self) -> str:
        return (
            f"checked={self.checked} missing={self.missing} stale={self.stale} "
            f"differ={self.differ} extra={self.extra}"
        ) + (f" unstorable={self.unstorable}" if self.unstorable else "")


def _stored_by_owner(model: type[ProjectedItem], owners: Iterable[str] | None) -> dict[str, list[ProjectedItem]]:
    """Every live item of the table (one Scan), or those of the given owners (index Queries)."""
    grouped: dict[str, list[ProjectedItem]] = defaultdict(list)
    items: Iterator[ProjectedItem] = (
        model.scan() if owners is None else (i for o in owners for i in owned_items(model, o))
    )
    for item in items:
        if not item.deleted:
            grouped[item.owner].append(item)
    return grouped


def _ids(aggregate: Aggregate, sample: int | None) -> list[int]:
    ids = [i for chunk in aggregate.ids(1000, 0) for i in chunk]
    if sample is not None and sample < len(ids):
        ids = random.sample(ids, sample)
    return ids


def check(
    sample: int | None = None,
    aggregates: Iterable[str] | None = None,
    ids: Mapping[str, Iterable[int]] | None = None,
) -> Report:
    """Check every aggregate, ``sample`` random ones of each type, or just the given ``ids`` per
    type. Only a full check finds extra items of aggregates that no longer exist (one Scan)."""
    report = Report()
    whole = sample is None and ids is None
    for name in (ids.keys() if ids is not None else aggregates or AGGREGATES):
        aggregate = AGGREGATES[name]
        chosen = list(ids[name]) if ids is not None else _ids(aggregate, sample)
        owners = {aggregate.owner(i): i for i in chosen}
        for projection in aggregate.projections:
            if projection.append_only:
                _compare_appended(aggregate, projection, owners, report)
                continue
            stored = _stored_by_owner(projection.model, None if whole else owners)
            for owner, items in stored.items():
                owner_id = aggregate.owner_id(owner)
                if owner not in owners and whole and owner_id is not None:
                    report.extra += len(items)
                    report.drifted.add((name, owner_id))
            _compare(aggregate, projection, owners, stored, report)
        report.checked += len(chosen)
    return report


def _compare_appended(aggregate, projection, owners: dict[str, int], report: Report) -> None:
    now = timezone.now()
    for aggregate_id in owners.values():
        for item in projection.build(read_snapshot(aggregate, aggregate_id), now):
            found = get_item(projection.model, item.key)
            if found is None:
                report.missing += 1
            elif documents.comparable(orjson.loads(found.body)) != documents.comparable(item.body):
                report.differ += 1
            else:
                continue
            report.drifted.add((aggregate.name, aggregate_id))


def _compare(aggregate, projection, owners: dict[str, int], stored, report: Report) -> None:
    model = projection.model
    now = timezone.now()
    for owner, aggregate_id in owners.items():
        snapshot = read_snapshot(aggregate, aggregate_id)
        expected = {key_of(item, model): item for item in projection.build(snapshot, now)}
        actual = {key_of(item, model): item for item in stored.get(owner, [])}
        drift = False
        for key, item in expected.items():
            found = actual.get(key)
            if found is None:
                report.missing += 1
                drift = True
                continue
            if found.version < snapshot.version and not item.content_keyed:  # kept from an older version
                report.stale += 1
                drift = True
                continue
            if found.body is None:
                report.unstorable += 1
                drift = True
                continue
            if documents.comparable(item.body) != documents.comparable(orjson.loads(found.body)):
                report.differ += 1
                drift = True
        extra = set(actual) - set(expected)
        if extra:
            report.extra += len(extra)
            drift = True
        if drift:
            report.drifted.add((aggregate.name, aggregate_id))
