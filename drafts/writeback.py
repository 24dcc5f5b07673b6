"""How draft stream records reach Postgres (registered with the write-back consumer): the copy the
admin lists. Only a newer version changes a row, so replays change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterable

from hybridsite.dynamodb import from_image
from writeback.registry import Change

from .models import DraftCopy
from .tables import Draft


def _copy(item: Draft) -> None:
    row = DraftCopy.objects.select_for_update().filter(sku=item.sku, user_id=int(item.user_id)).first()
    if row is not None and row.version >= int(item.version):
        return
    DraftCopy.objects.update_or_create(
        sku=item.sku, user_id=int(item.user_id),
        defaults={
            "version": int(item.version), "base_version": int(item.base_version),
            "changes": json.loads(item.changes), "status": DraftCopy.Status.EDITING, "updated_at": item.updated_at,
        },
    )


def apply_draft_change(change: Change) -> None:
    if change.new_image is not None:
        _copy(from_image(Draft, change.new_image))
        return
    if change.old_image is None:
        raise ValueError("a REMOVE record without its old image (the stream must be NEW_AND_OLD_IMAGES)")
    gone = from_image(Draft, change.old_image)
    DraftCopy.objects.filter(sku=gone.sku, user_id=int(gone.user_id), version__lte=int(gone.version)).exclude(
        status=DraftCopy.Status.GONE
    ).update(status=DraftCopy.Status.GONE)


def resync_drafts(items: Iterable[Draft]) -> int:
    seen: set[tuple[str, int]] = set()
    for item in items:
        _copy(item)
        seen.add((item.sku, int(item.user_id)))
    editing = DraftCopy.objects.filter(status=DraftCopy.Status.EDITING)
    stale = [row.pk for row in editing if (row.sku, row.user_id) not in seen]
    DraftCopy.objects.filter(pk__in=stale).update(status=DraftCopy.Status.GONE)
    return len(seen)
