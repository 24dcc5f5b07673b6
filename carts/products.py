"""What a cart needs to know of a product, from the hot path only: the Redis entry of its document,
else the document in DynamoDB. A cart write makes no Postgres query, so a product not projected yet
(or inactive: projected as absent) cannot be put in a cart.

A replica region asks as its reads do (docs/architecture/regions.md): where its own DynamoDB holds
no live document (not replicated yet), the home region's DynamoDB, so that the replica answers as
the home region would; only where that cannot be reached, Postgres, rendered (a replica never
projects).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from redis.exceptions import RedisError

from hybridsite import cache_keys, redis_client
from projections import cache
from projections.breaker import CircuitOpen
from projections.documents import product_in_shape
from projections.projector import render_documents
from projections.readpath import DYNAMODB_ERRORS, dynamodb_layers
from projections.registry import DocumentAddress, product_document


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
    then one DynamoDB read per SKU Redis did not hold (in a replica region, see ``_stored_offer``)."""
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
        offer = _stored_offer(address)
        if offer is not None:
            found[sku] = offer
    return found


def _stored_offer(address: DocumentAddress) -> Offer | None:
    """The offer this region's DynamoDB holds (it unreachable: raised, the cart lives there too);
    in a replica region, where that is none (not replicated yet, or deleted here and created again
    since), the home region's, and where that cannot be reached, Postgres's."""
    for layer in dynamodb_layers():
        if layer.own:
            stored = address.stored()
        else:
            try:
                stored = layer.read(address.stored)
            except (CircuitOpen, *DYNAMODB_ERRORS):
                return _rendered_offer(address)
        if stored is not None and not stored.deleted and stored.body:
            return _offer(stored.body)
    return None


def _rendered_offer(address: DocumentAddress) -> Offer | None:
    """The offer as Postgres renders it now, written nowhere (a replica region never projects)."""
    located = address.locate()
    if located is None:
        return None
    body = render_documents(*located)[1].get(address.name)
    return None if body is None else _offer(body)


def offer_get(*, sku: str) -> Offer | None:
    return offers_get(skus=[sku]).get(sku)
