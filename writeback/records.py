"""Stream records in one shape: the Lambda event's (``eventSourceARN`` included, the creation time
as epoch seconds), whether they come from GetRecords or from a Lambda invocation. Dead letters
keep this shape, so a retry applies exactly what the stream carried."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .registry import Change

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


def normalized(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the Lambda shape: boto3 decodes the creation time to a datetime, and
    GetRecords names the identity's fields ``Type`` and ``PrincipalId`` where a Lambda event has
    ``type`` and ``principalId``."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    shaped = {**record, "dynamodb": dynamodb, "eventSourceARN": record.get("eventSourceARN", stream_arn)}
    if record.get("userIdentity"):
        shaped["userIdentity"] = {name[:1].lower() + name[1:]: value for name, value in record["userIdentity"].items()}
    return shaped


def table_of(record: dict[str, Any]) -> str:
    """``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`` -> ``<name>``."""
    return record["eventSourceARN"].split(":table/", 1)[1].split("/stream/", 1)[0]


def change_of(record: dict[str, Any]) -> Change:
    identity = record.get("userIdentity") or {}
    dynamodb = record["dynamodb"]
    return Change(
        table_name=table_of(record),
        event=record["eventName"],
        keys=dynamodb.get("Keys", {}),
        new_image=dynamodb.get("NewImage"),
        old_image=dynamodb.get("OldImage"),
        expired=record["eventName"] == "REMOVE"
        and identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL,
        sequence_number=dynamodb["SequenceNumber"],
    )
