"""The Postgres copy of the drafts, kept by the write-back consumer: who is editing which product.
A removed draft (published, or expired) keeps its row as ``gone`` with its last version, so a
replayed older record never brings it back."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DraftCopy(models.Model):
    class Status(models.TextChoices):
        EDITING = "editing"
        GONE = "gone", "gone (published, discarded or expired)"

    sku = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="draft_copies")
    version = models.BigIntegerField()
    base_version = models.BigIntegerField(help_text="The product version the draft started from.")
    changes = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.EDITING)
    updated_at = models.DateTimeField(help_text="The editor's last autosave.")
    copied_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "draft (copy)"
        verbose_name_plural = "drafts (copies)"
        constraints = (models.UniqueConstraint(fields=["sku", "user"], name="draftcopy_one_per_editor"),)
        ordering = ("-updated_at",)

    def __str__(self) -> str:
        return f"draft of {self.sku} by user {self.user_id}"
