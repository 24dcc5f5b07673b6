"""The DynamoDB table of idempotency keys. Connections, creation and PynamoDB internals are in
:mod:`hybridsite.dynamodb`."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from hybridsite.dynamodb import table_meta


class IdempotencyRecord(Model):
    """One ``Idempotency-Key`` of one customer: first an in-progress claim holding the request's
    hash, then the final response. DynamoDB's TTL forgets it after a day."""

    Meta = table_meta("idempotency-keys")
    pk = UnicodeAttribute(hash_key=True)  # "<user id>#<key>"
    request_hash = UnicodeAttribute()
    state = UnicodeAttribute()  # "in_progress", then "done"
    token = UnicodeAttribute()  # the claim of the request that works on it
    lease_until = NumberAttribute()  # epoch seconds; a claim older than this may be taken over
    status_code = NumberAttribute(null=True)
    body = UnicodeAttribute(null=True)  # the response, rendered JSON
    expires_at = TTLAttribute()


TABLES: tuple[type[Model], ...] = (IdempotencyRecord,)
