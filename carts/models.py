"""The Postgres copy of the carts, kept by the write-back consumer (never written by the API):
one row per cart with its lines, version and whether it expired. Reports read it; no trigger
projects it anywhere, so a copied row never echoes back over the item it came from."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class CartCopy(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        EXPIRED = "expired", "expired (DynamoDB TTL)"
        REMOVED = "removed", "removed (deleted in DynamoDB)"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="cart_copy"
    )
    version = models.BigIntegerField(help_text="The DynamoDB item's version this row holds.")
    lines = models.JSONField(default=dict, help_text="SKU -> quantity.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    updated_at = models.DateTimeField(help_text="When the customer last changed the cart.")
    expires_at = models.DateTimeField(null=True, blank=True)
    copied_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "cart (copy)"
        verbose_name_plural = "carts (copies)"
        indexes = (models.Index(fields=["status", "updated_at"], name="cartcopy_status_updated"),)

    def __str__(self) -> str:
        return f"cart of user {self.user_id} v{self.version}"
