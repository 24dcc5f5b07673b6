"""The internal write API for pricing and inventory systems (staff only).

Writes go to Postgres through the catalog services; the projection follows through the outbox.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .models import Product, Warehouse


class StrictInputSerializer(serializers.Serializer):
    """Refuses what it does not know: a JSON object with only the declared fields."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def _validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _product(sku: str) -> Product:
    return get_object_or_404(Product, sku=sku)


def _version(product: Product) -> int:
    """The product's version after the write: the triggers set it, in the database."""
    product.refresh_from_db(fields=["version"])
    return product.version


class PriceSetApi(APIView):
    permission_classes = [IsAdminUser]

    class PriceSetInputSerializer(StrictInputSerializer):
        currency = serializers.RegexField(r"^[A-Z]{3}$", error_messages={"invalid": "An ISO-4217 code such as EUR."})
        amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))

    class PriceSetOutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        currency = serializers.CharField()
        amount = serializers.DecimalField(max_digits=12, decimal_places=2)
        version = serializers.IntegerField(help_text="The product's version after this write.")

    @extend_schema(
        operation_id="internal_price_set", request=PriceSetInputSerializer, responses=PriceSetOutputSerializer
    )
    def put(self, request: Request, sku: str) -> Response:
        data = _validated(self.PriceSetInputSerializer, request)
        product = _product(sku)
        price = services.price_set(product=product, **data)
        return Response(self.PriceSetOutputSerializer(
            {"sku": product.sku, "currency": price.currency, "amount": price.amount, "version": _version(product)}
        ).data)


class StockAdjustApi(APIView):
    permission_classes = [IsAdminUser]

    class StockAdjustInputSerializer(StrictInputSerializer):
        warehouse = serializers.SlugRelatedField(slug_field="code", queryset=Warehouse.objects.all())
        delta = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000)

    class StockAdjustOutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        warehouse = serializers.CharField()
        quantity = serializers.IntegerField()
        version = serializers.IntegerField(help_text="The product's version after this write.")

    @extend_schema(
        operation_id="internal_stock_adjust", request=StockAdjustInputSerializer, responses=StockAdjustOutputSerializer
    )
    def post(self, request: Request, sku: str) -> Response:
        data = _validated(self.StockAdjustInputSerializer, request)
        product = _product(sku)
        level = services.stock_adjust(product=product, **data)
        return Response(self.StockAdjustOutputSerializer(
            {"sku": product.sku, "warehouse": level.warehouse.code, "quantity": level.quantity, "version": _version(product)}
        ).data)
