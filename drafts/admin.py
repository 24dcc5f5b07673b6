from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import DraftCopy


@admin.register(DraftCopy)
class DraftCopyAdmin(admin.ModelAdmin):
    """Who is editing what: the drafts as the stream delivered them (read-only; pending ones first
    by the filter)."""

    list_display = ("sku", "user", "status", "updated_at", "base_version", "version")
    list_filter = ("status",)
    search_fields = ("sku", "user__username")
    readonly_fields = ("sku", "user", "status", "version", "base_version", "changes", "updated_at", "copied_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
