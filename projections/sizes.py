"""How large each projected item is and what a projection costs in write units: the figures that
show no item grows with the catalog (DynamoDB refuses items over 400 KB) and what a write costs on
AWS. For the bench and operators (each call Scans or writes): never on a request's path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hybridsite import dynamodb

from .projector import Request, project_many
from .tables import TABLES, ProjectedItem


@dataclass(frozen=True)
class Largest:
    table: str
    items: int
    """Live items of the table."""
    bytes: int
    """The largest one's size as DynamoDB counts it (attribute names and values)."""
    key: dict[str, Any]


def item_bytes(item: ProjectedItem) -> int:
    """An item's size by DynamoDB's rule: each attribute's name plus its value (strings in UTF-8,
    numbers about one byte per two digits plus one, booleans and nulls one byte)."""
    size = 0
    for name, value in item.serialize().items():
        (kind, raw), = value.items()
        size += len(name.encode())
        if kind == "S":
            size += len(raw.encode())
        elif kind == "N":
            size += len(raw.lstrip("-").replace(".", "")) // 2 + 1
        else:
            size += 1
    return size


def largest_items(tables: Iterable[type[ProjectedItem]] = TABLES) -> list[Largest]:
    """Each table's largest live item (one Scan per table)."""
    found = []
    for model in tables:
        live = [item for item in model.scan() if not item.deleted]
        sizes = [(item_bytes(item), item) for item in live]
        size, largest = max(sizes, key=lambda pair: pair[0], default=(0, None))
        key = {} if largest is None else {name: getattr(largest, name) for name in dynamodb.key_names(model)}
        found.append(Largest(dynamodb.table_name(model), len(live), size, key))
    return found


def write_units_per_projection(aggregate_type: str, ids: list[int], *, repair: bool = True) -> dict[str, float]:
    """The write units one projection of each of ``ids`` consumes, on average, per table, as
    DynamoDB reports them (``ReturnConsumedCapacity`` on each conditional put). With ``repair``
    they are projected again as they are (their documents rewritten at the version they have);
    without, what a change made in Postgres costs to project (only what changed is written)."""
    before = dynamodb.write_units()
    for result in project_many([Request(aggregate_type, i) for i in ids], repair=repair):
        if isinstance(result, Exception):
            raise result
    after = dynamodb.write_units()
    return {table: (units - before.get(table, 0.0)) / len(ids) for table, units in after.items()
            if units > before.get(table, 0.0)}
