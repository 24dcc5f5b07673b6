"""The drift watch's runs in the admin, with a "repair" action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .drift_watch import drift_repair
from .models import DriftRun


@admin.register(DriftRun)
class DriftRunAdmin(admin.ModelAdmin):
    list_display = (
        "started_at", "sample", "checked", "missing", "stale", "differ", "extra", "drifted_count", "repaired_at"
    )
    list_filter = ("repaired_at",)
    readonly_fields = [field.name for field in DriftRun._meta.fields]
    actions = ["repair"]

    @admin.display(description="drifted")
    def drifted_count(self, run: DriftRun) -> int:
        return len(run.drifted)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DriftRun | None = None) -> bool:
        return False

    def has_repair_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ops.repair_driftrun")

    @admin.action(description="Repair: re-project the drifted aggregates", permissions=["repair"])
    def repair(self, request: HttpRequest, queryset: QuerySet[DriftRun]) -> None:
        repaired = sum(drift_repair(run=run) for run in queryset if run.drifted and not run.repaired_at)
        self.message_user(request, f"{repaired} aggregates re-projected.", messages.SUCCESS)
