"""Drift check: compare what Postgres says the projections should hold with what DynamoDB holds
(this region's, or another region's replicas of the tables), and a region's Redis entries with what
that region's DynamoDB holds.

An append-only view (a product's history) is checked for the items the current state adds (the
current version must be there, as it was projected); older versions are history, never extra.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import cast

import orjson
from django.conf import settings
from django.utils import timezone
from redis import Redis

from hybridsite import cache_keys, redis_client
from hybridsite.dynamodb import batch_get_items, get_item, regional_table
from hybridsite.dynamodb import key_of as item_key

from . import cache, documents
from .projector import key_of, owned_items, read_snapshot
from .registry import AGGREGATES, Aggregate, DocumentAddress, document_address
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
    region: str | None = None,
) -> Report:
    """Check every aggregate, ``sample`` random ones of each type, or just the given ``ids`` per
    type, in ``region``'s DynamoDB (None: this region's). Only a full check finds extra items of
    aggregates that no longer exist (one Scan)."""
    report = Report()
    whole = sample is None and ids is None
    for name in (ids.keys() if ids is not None else aggregates or AGGREGATES):
        aggregate = AGGREGATES[name]
        chosen = list(ids[name]) if ids is not None else _ids(aggregate, sample)
        owners = {aggregate.owner(i): i for i in chosen}
        for projection in aggregate.projections:
            table = regional_table(projection.model, region)
            if projection.append_only:
                _compare_appended(aggregate, projection, table, owners, report)
                continue
            stored = _stored_by_owner(table, None if whole else owners)
            for owner, items in stored.items():
                owner_id = aggregate.owner_id(owner)
                if owner not in owners and whole and owner_id is not None:
                    report.extra += len(items)
                    report.drifted.add((name, owner_id))
            _compare(aggregate, projection, owners, stored, report)
        report.checked += len(chosen)
    return report


def _compare_appended(
    aggregate, projection, table: type[ProjectedItem], owners: dict[str, int], report: Report
) -> None:
    now = timezone.now()
    for aggregate_id in owners.values():
        for item in projection.build(read_snapshot(aggregate, aggregate_id), now):
            found = get_item(table, item.key)
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


@dataclass
class CacheReport:
    """A region's Redis entries of documents against that region's DynamoDB."""

    checked: int = 0
    ahead: int = 0
    """Entries at a version, or in a state, the region's DynamoDB does not hold: no region's Redis
    may hold a version its own DynamoDB has not had."""
    behind: int = 0
    """Entries older than the region's DynamoDB: its Redis was not kept current."""

    @property
    def clean(self) -> bool:
        return not (self.ahead or self.behind)

    def line(self) -> str:
        return f"cache checked={self.checked} ahead={self.ahead} behind={self.behind}"


def region_redis(region: str) -> Redis:
    """``region``'s Redis: this region's connection, or one to ``REDIS_REGION_URLS[region]``."""
    if region == settings.HYBRIDSITE_REGION:
        return redis_client.client()
    return Redis.from_url(settings.REDIS_REGION_URLS[region], socket_timeout=5, socket_connect_timeout=5)


CACHE_CHUNK = 500


def check_cache(region: str) -> CacheReport:
    """Every document entry of ``region``'s Redis (one SCAN) against the item ``region``'s
    DynamoDB holds for it (batch reads): the same version, found or absent alike."""
    report = CacheReport()
    redis = region_redis(region)
    prefix = cache_keys.document("")
    keys = [key for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    for start in range(0, len(keys), CACHE_CHUNK):
        chunk = keys[start:start + CACHE_CHUNK]
        entries: dict[str, cache.Entry] = {}
        raws = cast("list[bytes | None]", redis.mget(chunk))  # this client never decodes responses to str
        for key, raw in zip(chunk, raws, strict=True):
            if raw is not None:
                entries[(key.decode() if isinstance(key, bytes) else key).removeprefix(prefix)] = cache.decode(raw)
        refs = {name: ref for name in entries if (ref := document_address(name)) is not None}
        held = _held(list(refs.values()), region)
        for name in refs:
            entry = entries[name]
            version, status = held.get(name, (0, 404))
            report.checked += 1
            if (entry.version, entry.status) == (version, status):
                continue
            if entry.version >= version:
                report.ahead += 1
            else:
                report.behind += 1
    return report


def _held(refs: list[DocumentAddress], region: str) -> dict[str, tuple[int, int | None]]:
    """(version, status) of each document ``region``'s DynamoDB holds, by cache name: 200 found,
    404 a tombstone, None a placeholder (too large to store); absent ones are left out."""
    held: dict[str, tuple[int, int | None]] = {}
    by_model: dict[type[ProjectedItem], list[DocumentAddress]] = defaultdict(list)
    for ref in refs:
        if ref.fetch is not None:  # a document of several items (the category tree)
            stored = ref.stored(region)
            if stored is not None:
                held[ref.name] = (stored.version, 404 if stored.deleted else 200 if stored.body is not None else None)
        else:
            by_model[ref.model].append(ref)
    for model, model_refs in by_model.items():
        table = regional_table(model, region)
        items = batch_get_items(table, [ref.key for ref in model_refs])
        for ref in model_refs:
            item = items.get(item_key(table, ref.key))
            if item is not None:
                held[ref.name] = (item.version, 404 if item.deleted else 200 if item.body is not None else None)
    return held
