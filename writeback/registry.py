"""Which tables are written back, and how: each owning app registers its table's apply function
(one record -> Postgres, inside the consumer's transaction) and its resync function (a Scan's
items -> Postgres). Write-back knows no app; apps know write-back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pynamodb.models import Model

from hybridsite.dynamodb import table_name


@dataclass(frozen=True)
class Change:
    """One stream record as an apply function sees it. ``expired``: DynamoDB's TTL removed the item
    (a REMOVE by the service principal), not a client."""

    table_name: str
    event: str  # INSERT | MODIFY | REMOVE
    keys: dict[str, Any]
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    expired: bool
    sequence_number: str


@dataclass(frozen=True)
class WriteBack:
    model: type[Model]
    apply: Callable[[Change], None]
    """Applies one change to Postgres; must be a no-op for a change already applied (replays)."""
    resync: Callable[[Iterable[Any]], int]
    """Brings Postgres to the table's items (a full Scan); returns how many items it saw."""


_REGISTRY: dict[str, WriteBack] = {}


def register(*, model: type[Model], apply: Callable[[Change], None], resync: Callable[[Iterable[Any]], int]) -> None:
    _REGISTRY[table_name(model)] = WriteBack(model=model, apply=apply, resync=resync)


def registered() -> list[WriteBack]:
    return list(_REGISTRY.values())


def for_table(name: str) -> WriteBack | None:
    return _REGISTRY.get(name)
