"""The internal API's reads of projected data: a product's history (staff who may view products)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.apis import StaffWithPermission
from catalog.models import Product

from .apis import refuse_unknown
from .cursors import CURSOR_MAX_LENGTH, BadCursor, decode_history_cursor, encode_history_cursor
from .history import product_history

HISTORY_PAGE = 50


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text='"name", "category", "stock_band", "is_active" or "price <currency>".')
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class ProductVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    committed_at = serializers.DateTimeField(help_text="When this version was written in Postgres.")
    document = serializers.DictField(help_text="The version: name, category, prices, stock band, active.")
    changes = ChangeSerializer(
        many=True, allow_null=True, help_text="What changed since the version before; null for the oldest kept."
    )


@extend_schema(tags=["history"])
class ProductHistoryApi(APIView):
    permission_classes = [StaffWithPermission.for_methods(GET="catalog.view_product")]

    class HistoryOutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        results = ProductVersionSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True, help_text="The next (older) page's `cursor`.")

    @extend_schema(
        operation_id="internal_product_history",
        parameters=[OpenApiParameter(
            "cursor", {"type": "string", "maxLength": CURSOR_MAX_LENGTH},
            description="The next_cursor of the previous page (opaque and signed: use it as it is).",
        )],
        responses={
            200: HistoryOutputSerializer,
            400: OpenApiResponse(description="The cursor is not one handed out for this product."),
            404: OpenApiResponse(description="No such product, and no history of one."),
        },
    )
    def get(self, request: Request, sku: str) -> Response:
        """The product's versions, newest first, each with what changed since the one before it
        (kept for ``HISTORY_DAYS``; a deleted product's history stays until then)."""
        refuse_unknown(request, {"cursor"})
        try:
            before = decode_history_cursor(request.query_params.get("cursor", ""), sku)
        except BadCursor as exc:
            raise exceptions.ValidationError({"cursor": [str(exc)]}) from None
        page = product_history(sku=sku, limit=HISTORY_PAGE, before=before)
        if not page.versions and not before and not Product.objects.filter(sku=sku).exists():
            raise exceptions.NotFound("No product with this SKU.")
        following = encode_history_cursor(sku, page.before) if page.before else None
        return Response(
            self.HistoryOutputSerializer({"sku": sku, "results": page.versions, "next_cursor": following}).data
        )
