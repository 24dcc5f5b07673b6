"""What a cart needs to know of a product, from the hot path only: the Redis entry of its document,
else the document in DynamoDB. Never Postgres: a cart write makes no Postgres query, so a product
not projected yet (or inactive: projected as absent) cannot be put in a cart.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from redis.exceptions import RedisError

from hybridsite import cache_keys, redis_client
from hybridsite.dynamodb import get_item
from projections import cache
from projections.documents import product_in_shape
from projections.registry import product_document


@dataclass(frozen=True)
class Offer:
    sku: str
    name: str
    prices: dict[str, str]  # currency -> decimal string, as the document has them
    version: int


def _offer(body: bytes) -> Offer:
    document = orjson.loads(product_in_shape(body, 1))  # whichever shape is stored: prices by currency
    return Offer(sku=document["sku"], name=document["name"], prices=document["prices"], version=document["version"])


def offers_get(*, skus: list[str]) -> dict[str, Offer]:
    """The offers of the SKUs that are on sale (absent ones are left out): one Redis round trip,
    then one DynamoDB read per SKU Redis did not hold."""
    addresses = {sku: product_document(sku) for sku in skus}
    try:
        keys = [cache_keys.document(address.name) for address in addresses.values()]
        raws = redis_client.client().mget(keys) if keys else []
    except RedisError:
        raws = [None] * len(skus)
    found: dict[str, Offer] = {}
    for (sku, address), raw in zip(addresses.items(), raws, strict=True):
        if raw is not None:
            entry = cache.decode(raw if isinstance(raw, bytes) else raw.encode())
            if entry.status == 200:
                found[sku] = _offer(entry.body)
            continue
        item = get_item(address.model, address.key)
        if item is not None and not item.deleted and item.body:
            found[sku] = _offer(item.body.encode())
    return found


def offer_get(*, sku: str) -> Offer | None:
    return offers_get(skus=[sku]).get(sku)
