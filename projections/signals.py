"""The fast path: after an ORM write commits, kick the relay. Triggers are the guarantee."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from catalog.models import Category, Price, Product, StockLevel, Warehouse

from .tasks import kick_relay

WATCHED = (Category, Product, Price, Warehouse, StockLevel)


def _on_change(sender, **kwargs) -> None:
    transaction.on_commit(kick_relay)


def connect() -> None:
    for model in WATCHED:
        post_save.connect(_on_change, sender=model, dispatch_uid=f"projections-kick-save-{model.__name__}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"projections-kick-delete-{model.__name__}")
