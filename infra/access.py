"""Which process may do what to which table: one line per table per role, the DynamoDB actions
that role's code calls, and nothing else. The stack turns each line into statements on the exact
table, index and stream ARNs (:func:`statements`); ``infra/policies/<role>.json`` holds each role's
reviewed result, which a test compares with the synthesized policy.

A line's actions are DynamoDB's own names. ``Query@<index>`` is a Query on that index (its ARN,
not the table's); ``Stream`` is reading the table's stream (``DescribeStream``,
``GetShardIterator``, ``GetRecords`` on the stream's ARN). The line ``"*"`` holds the actions
that name no table. A new table needs lines here for the
roles that use it, and nothing else in the infra.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .tables import TableSpec

PROJECTIONS = ("products", "category-listing", "category-tree", "orders", "history")
HEARTBEAT = "heartbeat"
"""The replication heartbeat (hybridsite/heartbeat.py): one item, written by the home region."""

# The read path projects a miss, and the admin's drift repair re-projects (web); the relay projects
# (worker, and the listener when the relay stalls); the drift watch and projections_check read
# the tables back (worker). The owner index holds keys only: its readers then BatchGetItem the
# items; the tree's reader BatchGetItems its pieces.
_PROJECTOR = ("GetItem", "BatchGetItem", "PutItem", "Query@owner-keys-index")
# A product's history is appended by whoever projects products (a conditional put, never replaced)
# and read back by the drift check one key at a time; it has no owner index.
_APPENDER = ("GetItem", "PutItem")

ACCESS: dict[str, dict[str, tuple[str, ...]]] = {
    "web": {
        "*": ("ListTables",),  # the health check's one call (Limit=1): no resource-level permission exists
        "products": _PROJECTOR,
        "category-listing": (*_PROJECTOR, "Query"),  # a listing page is one Query on its category
        "category-tree": _PROJECTOR,
        "orders": (*_PROJECTOR, "Query"),  # a customer's orders are one Query on their partition
        "history": (*_APPENDER, "Query"),  # staff read a product's history as one Query
        "carts": ("GetItem", "PutItem"),  # conditional on the cart's version
        "drafts": ("GetItem", "PutItem", "DeleteItem"),  # autosave; deleted once published
        # a claim (conditional put), its response (update), a released claim (delete)
        "idempotency-keys": ("GetItem", "PutItem", "UpdateItem", "DeleteItem"),
        HEARTBEAT: ("GetItem",),  # the replication lag: /metrics and the health check's details
    },
    "worker": {
        # Scan: projections_check and projections_shapes (one-off tasks on the worker's definition)
        "products": (*_PROJECTOR, "Scan"),
        "category-listing": (*_PROJECTOR, "Scan"),
        "category-tree": (*_PROJECTOR, "Scan"),
        "orders": (*_PROJECTOR, "Scan"),
        "history": (*_APPENDER, "Scan"),
        HEARTBEAT: ("PutItem",),  # beat's ops.replication_heartbeat (conditional: never moved back)
    },
    "beat": {},  # schedules tasks on the broker; touches no table
    "listener": {
        "products": _PROJECTOR,
        "category-listing": _PROJECTOR,
        "category-tree": _PROJECTOR,
        "orders": _PROJECTOR,
        "history": _APPENDER,
    },
    "consumer": {  # streams_consume: the stream found through DescribeTable; Scan to resync a trimmed shard
        "carts": ("DescribeTable", "Stream", "Scan"),
        "drafts": ("DescribeTable", "Stream", "Scan"),
    },
    "cache-follower": {  # cache_follow: the streams of the tables the reader caches, found through DescribeTable
        "products": ("DescribeTable", "Stream"),
        "category-listing": ("DescribeTable", "Stream"),
        "category-tree": ("DescribeTable", "Stream", "GetItem", "BatchGetItem"),  # the tree read back whole
        "orders": ("DescribeTable", "Stream"),
        HEARTBEAT: ("DescribeTable", "Stream", "GetItem"),  # how far it followed; the lag it checks
    },
    "migrate": {},  # projections_setup on the tables this stack made: see MIGRATE_ACTIONS
}

MIGRATE_ACTIONS = ("DescribeTable", "DescribeTimeToLive")
"""``projections_setup`` finds every table as the stack made it (both read the same models), so
the one-off task only describes them; a table it would have to create or change is refused,
which shows a stack out of date with the code."""

STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords")
ROLES = tuple(ACCESS)


@dataclass(frozen=True)
class Grant:
    """One statement: these actions on these resources, each ``table/<name>[/index/<index>]`` or
    ``stream/<name>`` (the stack writes the ARNs)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]


def grants(role: str, specs: Iterable[TableSpec]) -> list[Grant]:
    """The role's statements: per table, its item and index actions and its stream reading.
    ``Stream`` on a table without a stream grants nothing. Raises on a line naming an unknown
    table or index."""
    by_name = {spec.name: spec for spec in specs}
    if role == "migrate":
        return [Grant(tuple(f"dynamodb:{a}" for a in MIGRATE_ACTIONS), tuple(f"table/{n}" for n in by_name))]
    found: list[Grant] = []
    for table, actions in ACCESS[role].items():
        if table == "*":
            found.append(Grant(tuple(f"dynamodb:{a}" for a in actions), ("*",)))
            continue
        spec = by_name.get(table)
        if spec is None:
            raise ValueError(f"infra.access: {role} names table {table!r}, which no model declares")
        on_table = tuple(f"dynamodb:{a}" for a in actions if "@" not in a and a != "Stream")
        if on_table:
            found.append(Grant(on_table, (f"table/{table}",)))
        indexes = sorted({a.split("@", 1)[1] for a in actions if "@" in a})
        for index in indexes:
            if index not in {i.name for i in (*spec.global_indexes, *spec.local_indexes)}:
                raise ValueError(f"infra.access: {role} queries {table}'s index {index!r}, which it has not")
        index_actions = tuple(sorted({f"dynamodb:{a.split('@', 1)[0]}" for a in actions if "@" in a}))
        if indexes:
            found.append(Grant(index_actions, tuple(f"table/{table}/index/{i}" for i in indexes)))
        if "Stream" in actions and spec.stream_view_type:
            found.append(Grant(STREAM_ACTIONS, (f"stream/{table}",)))
    return found
