from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import CartCopy


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
