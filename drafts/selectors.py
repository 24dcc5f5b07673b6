"""Reads of drafts: from DynamoDB, consistently (an editor sees their own last autosave)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hybridsite.dynamodb import get_item

from .tables import Draft


@dataclass(frozen=True)
class DraftState:
    sku: str
    user_id: int
    version: int
    base_version: int
    changes: dict[str, Any]
    updated_at: datetime


def state_of(item: Draft) -> DraftState:
    return DraftState(
        sku=item.sku, user_id=int(item.user_id), version=int(item.version), base_version=int(item.base_version),
        changes=json.loads(item.changes), updated_at=item.updated_at,
    )


def draft_get(*, sku: str, user_id: int) -> DraftState | None:
    item = get_item(Draft, {"sku": sku, "user_id": str(user_id)})
    return None if item is None else state_of(item)
