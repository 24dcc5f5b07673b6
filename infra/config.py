"""What a deployment chooses, from CDK context (``cdk deploy -c key=value`` or ``cdk.json``):
task counts, the consumer, replicas. Defaults give a small production site in one region."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
LAMBDA_ZIP = BASE_DIR / "var" / "lambda" / "writeback.zip"


@dataclass(frozen=True)
class Config:
    table_prefix: str = "hybridsite-"
    """The tables' names are this plus each model's name; the tasks get it as DYNAMODB_TABLE_PREFIX."""
    replica_regions: tuple[str, ...] = ()
    """Global-table replicas of every table (needs ``region``): off by default."""
    region: str | None = None
    """A region to pin the stack to; None keeps the template region-agnostic (replicas need one)."""
    consumer: str = "lambda"
    """``lambda``: the Streams event source mapping applies the write-back; ``ecs``: the
    ``streams_consume`` service does (``consumer_tasks`` of them) and the mapping is disabled."""
    web_tasks: int = 2
    worker_tasks: int = 2
    listener_tasks: int = 1
    consumer_tasks: int = 1
    cache_follower_tasks: int = 1
    """``cache_follow`` keeps a region's Redis current from its tables' streams: in a replica region
    the only way replicated changes reach its Redis, in the home region the projector's backstop."""
    relay_threads: int = 2
    """OUTBOX_PROJECT_THREADS of the worker and the listener."""
    lambda_parallelization: int = 1
    """Concurrent batches per shard (1..10); order per item holds at any value."""
    lambda_batch_size: int = 100
    lambda_asset: str = str(LAMBDA_ZIP)
    """The write-back Lambda's code: the zip ``make lambda`` builds, or a directory."""
    retained_indexes: tuple[str, ...] = ()
    """Indexes that a stack made for an older release and keeps for one more deploy (a model's
    ``retired_indexes``; with all attributes projected, as they were). CloudFormation cannot add
    one index and delete another in one update, so a stack made before ``owner-keys-index`` is
    deployed with ``-c retainedIndexes=owner-index`` first (the new index is added and built),
    then without (the old one is deleted)."""
    domain_name: str = "localhost"
    """The site's host name (ALLOWED_HOSTS), the name on the load balancer's certificate."""

    @classmethod
    def from_context(cls, get: Any) -> Config:
        """From a CDK node's ``try_get_context``; lists are comma-separated."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = get(_camel(field.name))
            if raw is None:
                continue
            if field.type == "tuple[str, ...]":
                values[field.name] = tuple(r.strip() for r in (raw.split(",") if isinstance(raw, str) else raw) if r)
            elif field.type == "int":
                values[field.name] = int(raw)
            else:
                values[field.name] = str(raw)
        config = cls(**values)
        if config.consumer not in ("lambda", "ecs"):
            raise ValueError(f"context consumer={config.consumer!r}: lambda or ecs")
        if config.replica_regions and not config.region:
            raise ValueError("context replicaRegions needs region (global tables are made from a known region)")
        if not 1 <= config.lambda_parallelization <= 10:
            raise ValueError("context lambdaParallelization: 1 to 10")
        return config


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
