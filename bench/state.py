"""Put products back in the state a read path needs: not cached, or not projected at all.

Used between measured requests (untimed) and before HTTP runs, so that paths 5 and 6 go through
the real ``/api/products/<sku>/`` view: a Redis miss served from DynamoDB, and a cold read that
finds nothing in Redis or DynamoDB and projects the product on the read path.
"""

from __future__ import annotations

from collections.abc import Iterable

from django_redis import get_redis_connection

from catalog.models import Product
from hybridsite import cache_keys, dynamodb
from projections.models import OwnerManifest
from projections.registry import listing_key, product_cache_name, product_key, product_owner
from projections.tables import CategoryListingItem, ProductDocument

BATCH = 25  # BatchWriteItem's limit


def forget_cached(skus: Iterable[str]) -> None:
    """Drop the products' Redis entries: the next read misses Redis and finds DynamoDB's document."""
    pipe = get_redis_connection("default").pipeline(transaction=False)
    for sku in skus:
        pipe.delete(cache_keys.document(product_cache_name(sku)))
    pipe.execute()


def _attribute_values(key: dict[str, str]) -> dict[str, dict[str, str]]:
    """A key as DynamoDB's low-level API takes it (every key attribute is a string)."""
    return {name: {"S": value} for name, value in key.items()}


class Unprojector:
    """Drop everything a projection of these products left: the Redis entry, the document and the
    listing item in DynamoDB, the owner manifest in Postgres."""

    def __init__(self, skus: Iterable[str]) -> None:
        products = Product.objects.filter(sku__in=list(skus)).values_list("sku", "pk", "category__slug")
        self.owners = {sku: product_owner(pk) for sku, pk, _ in products}
        self.requests = {
            sku: [
                (ProductDocument.Meta.table_name, _attribute_values(product_key(sku))),
                (CategoryListingItem.Meta.table_name, _attribute_values(listing_key(slug, sku))),
            ]
            for sku, _, slug in products
        }
        self.client = dynamodb.client(ProductDocument)

    def __call__(self, skus: Iterable[str]) -> None:
        skus = list(skus)
        forget_cached(skus)
        OwnerManifest.objects.filter(owner__in=[self.owners[sku] for sku in skus]).delete()
        deletes = [request for sku in skus for request in self.requests[sku]]
        for start in range(0, len(deletes), BATCH):
            pending: dict[str, list] = {}
            for table, key in deletes[start:start + BATCH]:
                pending.setdefault(table, []).append({"DeleteRequest": {"Key": key}})
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

