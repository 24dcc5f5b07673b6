"""Drafts: autosave to DynamoDB (conditional on the draft's version), publish to Postgres through
the catalog services (conditional on the product version the draft started from)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404
from pynamodb.exceptions import DeleteError, PutError

from catalog import services as catalog_services
from catalog.models import Product
from hybridsite.dynamodb import error_code, get_item, hash_key_attribute

from .selectors import DraftState, state_of
from .tables import Draft

DRAFT_FIELDS = ("name", "description", "attributes")


class DraftVersionMismatch(Exception):
    """The draft changed since the version the editor's If-Match names."""

    def __init__(self, current: int) -> None:
        super().__init__(f"draft is at version {current}")
        self.current = current


class DraftConflict(Exception):
    """The product changed since the draft started: publishing would overwrite that change."""

    def __init__(self, base_version: int, product_version: int) -> None:
        super().__init__(f"the draft started from version {base_version}, the product is at {product_version}")
        self.base_version = base_version
        self.product_version = product_version


def _key(sku: str, user_id: int) -> dict[str, str]:
    return {"sku": sku, "user_id": str(user_id)}


def draft_save(*, sku: str, user_id: int, changes: dict[str, Any], expected: int | None = None) -> DraftState:
    """Merge ``changes`` into the editor's draft of the product (created from the product's current
    version on the first save: the one Postgres read of a draft's life until it is published)."""
    item = get_item(Draft, _key(sku, user_id))
    current_version = 0 if item is None else int(item.version)
    if expected is not None and expected != current_version:
        raise DraftVersionMismatch(current_version)
    if item is None:
        base_version = Product.objects.filter(sku=sku).values_list("version", flat=True).first()
        if base_version is None:
            raise Http404("No product with this SKU.")
        merged, version = changes, time.time_ns() // 1000  # above any draft of this key before it
        condition = hash_key_attribute(Draft).does_not_exist()
    else:
        base_version = int(item.base_version)
        merged, version = {**json.loads(item.changes), **changes}, current_version + 1
        condition = Draft.version == current_version
    now = datetime.now(UTC)
    draft = Draft(
        sku, str(user_id), version=version, base_version=base_version, changes=json.dumps(merged, sort_keys=True),
        updated_at=now, expires_at=now + timedelta(seconds=settings.DRAFT_IDLE_SECONDS),
    )
    try:
        draft.save(condition=condition)
    except PutError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        latest = get_item(Draft, _key(sku, user_id))
        raise DraftVersionMismatch(0 if latest is None else int(latest.version)) from None
    return state_of(draft)


def draft_publish(*, sku: str, user_id: int) -> Product:
    """Apply the editor's draft to the product in one Postgres transaction, if the product is still
    at the version the draft started from; then remove the draft (unless it was autosaved again
    meanwhile: that newer draft stays, and now conflicts)."""
    item = get_item(Draft, _key(sku, user_id))
    if item is None:
        raise Http404("No draft of this product by you.")
    draft = state_of(item)
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(sku=sku).first()
        if product is None:
            raise Http404("No product with this SKU.")
        if product.version != draft.base_version:
            raise DraftConflict(draft.base_version, product.version)
        changes = {name: value for name, value in draft.changes.items() if name in DRAFT_FIELDS}
        catalog_services.product_update(product=product, **changes)
    try:
        item.delete(condition=Draft.version == draft.version)
    except DeleteError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
    product.refresh_from_db()
    return product
