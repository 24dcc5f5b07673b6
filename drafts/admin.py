"""The drafts' Postgres copy in the admin (read-only), and the report of pending drafts built on it
(``admin:drafts_pending``): who is editing what, and which drafts could no longer be published."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from .models import DraftCopy
from .selectors import pending_drafts


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

    def get_urls(self) -> list[URLPattern]:
        report = path("pending/", self.admin_site.admin_view(self.pending_view), name="drafts_pending")
        return [report, *super().get_urls()]

    def pending_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request), "title": "Pending drafts", "opts": self.model._meta,
            "now": now, "drafts": pending_drafts(now=now),
        }
        return TemplateResponse(request, "admin/drafts/pending.html", context)
