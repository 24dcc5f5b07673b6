"""The carts' Postgres copy in the admin (read-only), and the abandoned-carts report built on it
(``admin:carts_abandoned``, under the copy's admin URLs as the other reports are under theirs)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from .models import CartCopy
from .selectors import abandoned_carts

ABANDONED_LIMIT = 200


class AbandonedCartsForm(forms.Form):
    """The report's ``?hours=``: whole hours, from 1 to a cart's idle time (a cart unchanged for
    longer has expired: it reads as empty, and nothing is left to recover)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["hours"] = forms.IntegerField(
            min_value=1, max_value=math.ceil(settings.CART_IDLE_SECONDS / 3600), required=False
        )


@admin.register(CartCopy)
class CartCopyAdmin(admin.ModelAdmin):
    """Read-only: the rows are DynamoDB's carts as the stream delivered them."""

    list_display = ("user", "status", "version", "updated_at", "expires_at", "copied_at")
    list_filter = ("status",)
    search_fields = ("user__username",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        report = path("abandoned/", self.admin_site.admin_view(self.abandoned_view), name="carts_abandoned")
        return [report, *super().get_urls()]

    def abandoned_view(self, request: HttpRequest) -> TemplateResponse:
        """Carts left idle longer than ``?hours=`` (default ``ABANDONED_CART_HOURS``): who, how
        much, for how long. It names customers: only for those who may view the carts' copy."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = AbandonedCartsForm(request.GET)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request), "title": "Abandoned carts", "form": form,
            "opts": self.model._meta, "hours": request.GET.get("hours", ""),
        }
        if not form.is_valid():
            return TemplateResponse(request, "admin/carts/abandoned.html", context, status=400)
        hours = form.cleaned_data["hours"] or settings.ABANDONED_CART_HOURS
        now = timezone.now()
        context.update(
            hours=hours, now=now, limit=ABANDONED_LIMIT,
            report=abandoned_carts(idle=timedelta(hours=hours), now=now, limit=ABANDONED_LIMIT),
        )
        return TemplateResponse(request, "admin/carts/abandoned.html", context)
