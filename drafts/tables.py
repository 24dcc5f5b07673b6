"""Autosaved drafts of product edits: one item per product and editor, in DynamoDB (autosave runs
many times a minute; Postgres sees a draft only when it is published, and its copy through the
stream)."""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.constants import STREAM_NEW_AND_OLD_IMAGE
from pynamodb.models import Model

from hybridsite.dynamodb import table_meta


class Draft(Model):
    Meta = table_meta("drafts", stream_view_type=STREAM_NEW_AND_OLD_IMAGE)
    sku = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)  # the editor (a staff user's pk, as a string)
    version = NumberAttribute()  # +1 per autosave: the write condition
    base_version = NumberAttribute()  # the product's version the draft started from
    changes = UnicodeAttribute()  # JSON: the edited fields (name, description, attributes)
    updated_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


TABLES: tuple[type[Model], ...] = (Draft,)
