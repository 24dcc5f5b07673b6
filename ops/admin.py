"""The operations admin: the drift watch's runs with a "repair" action, and the SLO page (each
objective against what the last hour and day measured, for any staff member)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from .charts import line_chart
from .drift_watch import drift_repair
from .models import DriftRun, SloSample
from .selectors import slo_report


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


@admin.register(SloSample)
class SloSampleAdmin(admin.ModelAdmin):
    """The history is written by beat only: the changelist is the SLO page, read-only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: SloSample | None = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SloSample | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SloSample | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        reports = slo_report()
        rows = [
            {
                "objective": report.objective,
                "windows": [
                    {
                        "window": window,
                        "chart": line_chart(
                            window.points, objective=report.objective.target, unit=report.objective.unit,
                            start=window.start, end=window.end, label=f"{report.objective.title}, {window.label}",
                        ),
                    }
                    for window in report.windows
                ],
            }
            for report in reports
        ]
        latest = SloSample.objects.order_by("-at").values_list("at", flat=True).first()
        context = {
            **self.admin_site.each_context(request),
            "title": "Service level objectives",
            "opts": self.model._meta,
            "rows": rows,
            "latest": latest,
            "sample_seconds": settings.SLO_SAMPLE_SECONDS,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/ops/slo.html", context)
