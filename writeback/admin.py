"""The write-back in the admin: shard leases and checkpoints, resyncs, and dead letters to retry."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .apply import dead_letter_retry
from .models import DeadLetter, Resync, ShardLease


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ShardLease)
class ShardLeaseAdmin(ReadOnlyAdmin):
    list_display = ("table_name", "shard_id", "parent_shard_id", "owner", "lease_expires_at", "finished",
                    "records_applied", "checkpoint")
    list_filter = ("table_name", "finished")


@admin.register(Resync)
class ResyncAdmin(ReadOnlyAdmin):
    list_display = ("table_name", "shard_id", "started_at", "finished_at", "items", "reason")


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("table_name", "sequence_number", "attempts", "created_at", "last_tried_at", "error")
    list_filter = ("table_name",)
    readonly_fields = ("table_name", "shard_id", "sequence_number", "record", "error", "attempts")
    actions = ("retry",)

    @admin.action(description="Apply the selected records again", permissions=["delete"])
    def retry(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        outcomes = [dead_letter_retry(dead_letter=dead_letter) for dead_letter in queryset]
        self.message_user(
            request, f"{outcomes.count(True)} applied and removed, {outcomes.count(False)} failed again.",
            messages.SUCCESS if all(outcomes) else messages.WARNING,
        )
