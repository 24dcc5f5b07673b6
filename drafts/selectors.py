"""Reads of drafts: from DynamoDB, consistently (an editor sees their own last autosave). The
admin's report of pending drafts reads the Postgres copy instead (:func:`pending_drafts`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from catalog.models import Product
from hybridsite.dynamodb import get_item

from .models import DraftCopy
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


@dataclass(frozen=True)
class PendingDraft:
    sku: str
    name: str  # the product's name now (the draft may change it)
    editor: str
    fields: list[str]  # what the draft changes
    base_version: int  # the product's version when the draft started
    product_version: int | None  # the product's version now; None: the product is gone
    updated_at: datetime  # the last autosave

    @property
    def conflicts(self) -> bool:
        """Publishing it would be refused (409): the product changed since the draft started."""
        return self.product_version != self.base_version


def pending_drafts(*, now: datetime) -> list[PendingDraft]:
    """Who is editing what: the drafts not yet published, discarded or past their idle time, as
    the write-back consumer last copied them, by product then oldest autosave. Two queries."""
    rows = list(
        DraftCopy.objects.filter(
            status=DraftCopy.Status.EDITING, updated_at__gt=now - timedelta(seconds=settings.DRAFT_IDLE_SECONDS)
        ).select_related("user").order_by("sku", "updated_at")
    )
    products = {
        sku: (name, version)
        for sku, name, version in Product.objects.filter(sku__in={row.sku for row in rows}).values_list(
            "sku", "name", "version"
        )
    }
    return [
        PendingDraft(
            sku=row.sku, name=products.get(row.sku, ("(no such product)", None))[0], editor=row.user.get_username(),
            fields=sorted(row.changes), base_version=row.base_version,
            product_version=products.get(row.sku, ("", None))[1], updated_at=row.updated_at,
        )
        for row in rows
    ]
