"""The cart table: DynamoDB is where a cart lives (customers write it at a rate Postgres should
never see); its stream carries every change to the write-back consumer, which keeps a copy in
Postgres. Connections, creation and PynamoDB internals are in :mod:`hybridsite.dynamodb`.
"""

from __future__ import annotations

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.constants import STREAM_NEW_AND_OLD_IMAGE
from pynamodb.models import Model

from hybridsite.dynamodb import table_meta


class Cart(Model):
    """One item per customer. ``version`` is the write condition of every write (ETag/If-Match);
    ``expires_at`` is pushed forward by each write, so DynamoDB's TTL removes idle carts."""

    Meta = table_meta("carts", stream_view_type=STREAM_NEW_AND_OLD_IMAGE)
    user_id = UnicodeAttribute(hash_key=True)  # the Django user's pk, as a string
    version = NumberAttribute()
    lines: MapAttribute[str, int] = MapAttribute(default=dict)  # SKU -> quantity
    updated_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


TABLES: tuple[type[Model], ...] = (Cart,)
