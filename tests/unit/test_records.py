"""Stream records in the Lambda shape, whichever API delivered them."""

from __future__ import annotations

from datetime import UTC, datetime

from writeback.records import change_of, normalized

ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/carts/stream/2026-11-23T00:00:00.000"


def removal(**extra: object) -> dict:
    return {
        "eventName": "REMOVE",
        "dynamodb": {"Keys": {"user_id": {"S": "7"}}, "OldImage": {"user_id": {"S": "7"}}, "SequenceNumber": "42",
                     "ApproximateCreationDateTime": datetime(2026, 11, 23, tzinfo=UTC)},
        **extra,
    }


def test_a_ttl_deletion_read_with_getrecords_is_an_expiry():
    """GetRecords spells the identity ``{"Type", "PrincipalId"}``, a Lambda event ``{"type", "principalId"}``."""
    service = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
    record = normalized(removal(userIdentity=service), ARN)
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert record["dynamodb"]["ApproximateCreationDateTime"] == datetime(2026, 11, 23, tzinfo=UTC).timestamp()
    assert change_of(record).expired
    assert change_of(normalized(record, ARN)).expired  # a Lambda event's record stays as it is


def test_other_removals_are_not_expiries():
    assert not change_of(normalized(removal(), ARN)).expired
    user = {"Type": "User", "PrincipalId": "dynamodb.amazonaws.com"}
    assert not change_of(normalized(removal(userIdentity=user), ARN)).expired
