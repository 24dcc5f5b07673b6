"""The outbox in the admin: pending and dead-lettered changes, with their errors, retryable; and
each product's history of versions, on the product's own "History" page."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from catalog.admin import ProductAdmin
from catalog.models import OutboxEvent, Product

from . import relay
from .cursors import BadCursor, decode_history_cursor, encode_history_cursor
from .history import product_history
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


HISTORY_ADMIN_PAGE = 50

admin.site.unregister(Product)


@admin.register(Product)
class ProductWithHistoryAdmin(ProductAdmin):
    """The catalog's product admin, whose "History" page also lists the product's versions as
    projected (price, stock band, name, category, when), from the ``history`` table."""

    object_history_template = "admin/projections/product_history.html"

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        product = self.get_object(request, unquote(object_id))
        context = {"history_days": settings.HISTORY_DAYS, **(extra_context or {})}
        if product is not None and self.has_view_or_change_permission(request, product):
            try:
                before = decode_history_cursor(request.GET.get("versions", ""), product.sku)
            except BadCursor:
                before = ""
            page = product_history(sku=product.sku, limit=HISTORY_ADMIN_PAGE, before=before)
            context["versions"] = page.versions
            context["older_versions"] = encode_history_cursor(product.sku, page.before) if page.before else None
        return super().history_view(request, object_id, context)
