"""DynamoDB tables holding the materialized views (PynamoDB models). Their connections, creation and
PynamoDB's internals are in :mod:`hybridsite.dynamodb`, the one adapter.

Every projected item has the same envelope: its key, the ``owner`` aggregate that produced it
(indexed, so that the projector finds the items an aggregate no longer wants), the aggregate's
``version`` (the write condition), ``deleted`` for tombstones, and ``body``: the document as
rendered JSON, so that the read path stores and returns bytes without serializer work (or
``unstorable``: the document is too large to be stored).

The tables the reader caches from have a stream (new and old images, as global tables need):
``cache_follow`` keeps each region's Redis current from it (:mod:`projections.follow`).
"""

from __future__ import annotations

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.constants import NUMBER, STREAM_NEW_AND_OLD_IMAGE
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from hybridsite.dynamodb import table_meta


class VersionAttribute(Attribute[int]):
    """An aggregate's version: a DynamoDB number that is always an integer (a Postgres bigint), so
    typed ``int`` where PynamoDB's ``NumberAttribute`` says ``float``."""

    attr_type = NUMBER

    def serialize(self, value: int) -> str:
        return str(value)

    def deserialize(self, value: str) -> int:
        return int(value)


class OwnerIndex(GlobalSecondaryIndex):
    """The items of one owner, for the projector's drift repair and the drift check, which then
    read the items themselves (:func:`projections.projector.owned_items`). Keys only: an index
    entry costs one write unit when an item is first stored, whatever the document's size, and
    none when a later version replaces it under the same owner (no key or projected attribute of
    the entry changes). With all attributes projected, every write cost its size twice."""

    class Meta:
        index_name = "owner-keys-index"
        projection = KeysOnlyProjection()

    owner = UnicodeAttribute(hash_key=True)


RETIRED_OWNER_INDEX = "owner-index"
"""The owner index as releases before ``owner-keys-index`` made it (all attributes projected).
DynamoDB changes no index's projection in place: ``projections_setup`` creates the new index and
deletes this one once the new one is active (``retired_indexes``)."""


class ProjectedItem(Model):
    """Shared envelope; concrete tables add their keys and ``Meta``."""

    owner = UnicodeAttribute()
    version = VersionAttribute()
    deleted = BooleanAttribute(default=False)
    body = UnicodeAttribute(null=True)
    source_committed_at = UnicodeAttribute(null=True)
    projected_at = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    unstorable = VersionAttribute(null=True)
    """Set, with no ``body``, on an item standing for a document too large for DynamoDB (its size in
    bytes): at its version, readers answer from Postgres instead of serving an older one."""
    owner_index = OwnerIndex()
    retired_indexes = {RETIRED_OWNER_INDEX: OwnerIndex.Meta.index_name}
    """Indexes an older release made, each with the index that replaces it (see ``table_ensure``)."""


class ProductDocument(ProjectedItem):
    Meta = table_meta("products", stream_view_type=STREAM_NEW_AND_OLD_IMAGE)
    pk = UnicodeAttribute(hash_key=True)  # the SKU


class CategoryListingItem(ProjectedItem):
    """One product's summary under its category: a listing page is one Query on each ``pk`` of the
    category (one per shard)."""

    Meta = table_meta("category-listing", stream_view_type=STREAM_NEW_AND_OLD_IMAGE)
    pk = UnicodeAttribute(hash_key=True)  # CATEGORY#<slug>, or CATEGORY#<slug>#<shard> (LISTING_SHARDS)
    sk = UnicodeAttribute(range_key=True)  # the SKU


class CategoryTreeDocument(ProjectedItem):
    Meta = table_meta("category-tree", stream_view_type=STREAM_NEW_AND_OLD_IMAGE)
    pk = UnicodeAttribute(hash_key=True)  # TREE (the head), TREE#<k>#<digest> (a piece)


class CustomerOrder(ProjectedItem):
    """One order under its customer: the customer's order history is one Query on ``pk``, newest
    first (the sort key inverts the order id), and an order is one GetItem."""

    Meta = table_meta("orders", stream_view_type=STREAM_NEW_AND_OLD_IMAGE)
    pk = UnicodeAttribute(hash_key=True)  # CUSTOMER#<user id>
    sk = UnicodeAttribute(range_key=True)  # the order id inverted, zero-padded: newest sorts first


class ProductVersion(ProjectedItem):
    """One version of a product as projected, appended once and never replaced (append-only): a
    product's history is one Query on ``pk``. Expires after ``HISTORY_DAYS`` (TTL)."""

    Meta = table_meta("history")
    pk = UnicodeAttribute(hash_key=True)  # the SKU
    sk = UnicodeAttribute(range_key=True)  # the version, zero-padded: versions sort in order
    # No owner index: nothing looks the history up by owner (the drift check reads the keys it
    # expects), and an index would be a second write for every append.
    owner_index = None  # type: ignore[assignment]
    retired_indexes = {}


TABLES: tuple[type[ProjectedItem], ...] = (
    ProductDocument, CategoryListingItem, CategoryTreeDocument, CustomerOrder, ProductVersion,
)
