"""How cart stream records reach Postgres (registered with the write-back consumer).

A change is applied only when it is newer than the row (versions only rise, even across an
expired cart, see ``services._first_version``), so a record delivered twice, or a whole stream
replayed from its start, changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from hybridsite.dynamodb import from_image
from writeback.registry import Change

from .models import CartCopy
from .selectors import lines_of
from .tables import Cart


def _copy(item: Cart) -> None:
    """Upsert the row from an item, unless the row already holds this version or a newer one."""
    row = CartCopy.objects.select_for_update().filter(user_id=int(item.user_id)).first()
    if row is not None and row.version >= int(item.version):
        return
    CartCopy.objects.update_or_create(
        user_id=int(item.user_id),
        defaults={
            "version": int(item.version), "lines": lines_of(item), "status": CartCopy.Status.ACTIVE,
            "updated_at": item.updated_at, "expires_at": item.expires_at,
        },
    )


def apply_cart_change(change: Change) -> None:
    if change.new_image is not None:
        _copy(from_image(Cart, change.new_image))
        return
    if change.old_image is None:
        raise ValueError("a REMOVE record without its old image (the stream must be NEW_AND_OLD_IMAGES)")
    gone = from_image(Cart, change.old_image)
    status = CartCopy.Status.EXPIRED if change.expired else CartCopy.Status.REMOVED
    CartCopy.objects.filter(user_id=int(gone.user_id), version__lte=int(gone.version)).exclude(status=status).update(
        status=status
    )


def resync_carts(items: Iterable[Cart]) -> int:
    """Postgres as the table holds it now: every item copied (if newer), rows of carts no longer
    in the table marked expired (TTL is what removes carts)."""
    seen: set[int] = set()
    for item in items:
        _copy(item)
        seen.add(int(item.user_id))
    CartCopy.objects.filter(status=CartCopy.Status.ACTIVE).exclude(user_id__in=seen).update(
        status=CartCopy.Status.EXPIRED
    )
    return len(seen)
