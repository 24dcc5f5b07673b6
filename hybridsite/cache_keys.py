"""Every Redis key Hybridsite uses, one function per data set, namespaced and versioned.

Bump ``KEY_VERSION`` when a cached format changes: old entries become unreachable and expire.
"""

from __future__ import annotations

import hashlib

from django.conf import settings

KEY_VERSION = 1
NAMESPACE = f"{settings.CACHES['default']['KEY_PREFIX']}:v{KEY_VERSION}"


def document(name: str) -> str:
    """A rendered document (``product:<sku>``, ``category-tree``) with its version."""
    return f"{NAMESPACE}:doc:{name}"


def floor(name: str) -> str:
    """The highest version of a document stored in the cache; outlives the entry."""
    return f"{NAMESPACE}:floor:{name}"


def listing_generation(listing: str) -> str:
    """Bumped whenever an item of the listing changes; part of every page key of that listing."""
    return f"{NAMESPACE}:listing-gen:{listing}"


def listing_page(listing: str, generation: int, limit: int, after: str) -> str:
    """A cached page, keyed by the decoded position (the SKU it follows), never by cursor text."""
    return f"{NAMESPACE}:listing:{listing}:{generation}:{limit}:{after}"


def fill_lock(name: str) -> str:
    """Single-flight lock of a cold miss; its token is the filler's lease (revoked by a projection)."""
    return f"{NAMESPACE}:fill:{name}"


def relay_kick() -> str:
    """Set while a relay task is queued: further commits need not queue another."""
    return f"{NAMESPACE}:relay-kick"


def rate_limit(scope: str, ident: str, window: int) -> str:
    return f"{NAMESPACE}:rl:{scope}:{ident}:{window}"


def metrics() -> str:
    return f"{NAMESPACE}:metrics"


def lag_samples() -> str:
    return f"{NAMESPACE}:lag-ms"


def auth_token(digest: str) -> str:
    """Who an API token belongs to (by the token's SHA-256, never the token itself)."""
    return f"{NAMESPACE}:auth-token:{digest}"


def _digest(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def search_results(canonical: str) -> str:
    """The SKUs matching a search, keyed by its normalized parameters (their canonical JSON)."""
    return f"{NAMESPACE}:search:{_digest(canonical)}"


def search_fill_lock(canonical: str) -> str:
    """Single-flight lock of a search's computation, cold or in the background."""
    return f"{NAMESPACE}:search-fill:{_digest(canonical)}"


def export_chunks(canonical: str) -> str:
    """A finished export's CSV, a list of chunks, keyed by its normalized parameters."""
    return f"{NAMESPACE}:export:{_digest(canonical)}"


def export_chunks_pending(canonical: str, token: str) -> str:
    """An export being written by one request: renamed to ``export_chunks`` once complete."""
    return f"{NAMESPACE}:export-pending:{_digest(canonical)}:{token}"


def follow_shards() -> str:
    """cache_follow's shards of this region's streams: a hash of shard -> its table, parent,
    checkpoint and whether it is finished (kept in the region's own Redis, never in Postgres)."""
    return f"{NAMESPACE}:follow:shards"


def follow_lease(shard: str) -> str:
    """The follower holding a shard (its id as value), until the key's TTL lapses unrenewed."""
    return f"{NAMESPACE}:follow:lease:{_digest(shard)}"


def follow_processes() -> str:
    """The live followers: a sorted set of their ids, scored by when each stops counting as alive."""
    return f"{NAMESPACE}:follow:processes"


def follow_heartbeat() -> str:
    """The newest replication heartbeat (epoch seconds) cache_follow has read from its stream."""
    return f"{NAMESPACE}:follow:heartbeat"
