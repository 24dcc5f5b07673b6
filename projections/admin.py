"""The outbox in the admin: pending and dead-lettered changes, with their errors, retryable."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from catalog.models import OutboxEvent

from . import relay
from .models import BackfillCheckpoint
from .tasks import kick_relay


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = (
        "id", "aggregate_type", "aggregate_id", "status", "attempts", "permanent_failures", "created_at",
        "available_at", "short_error",
    )
    list_filter = ("status", "aggregate_type")
    search_fields = ("aggregate_id", "last_error")
    ordering = ("-id",)
    actions = ["retry"]
    readonly_fields = [field.name for field in OutboxEvent._meta.fields]

    @admin.display(description="last error")
    def short_error(self, event: OutboxEvent) -> str:
        return event.last_error[:120]

    @admin.action(description="Retry the selected dead-lettered changes")
    def retry(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = relay.retry_dead(list(queryset.values_list("pk", flat=True)))
        kick_relay()
        self.message_user(request, f"{count} change(s) queued again.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return False


@admin.register(BackfillCheckpoint)
class BackfillCheckpointAdmin(admin.ModelAdmin):
    """A backfill's progress (``projections_backfill``, ``--reshape`` included), read-only."""

    list_display = ("aggregate_type", "progress", "projected", "total", "last_id", "finished", "updated_at")
    readonly_fields = [field.name for field in BackfillCheckpoint._meta.fields]

    @admin.display(description="progress")
    def progress(self, checkpoint: BackfillCheckpoint) -> str:
        return f"{checkpoint.percent:.0f} %"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BackfillCheckpoint | None = None) -> bool:
        return False
