"""The internal API for pricing and inventory systems: staff accounts holding the model permission
of what they change (``catalog.change_price``, ``catalog.change_stocklevel``; reading stock per
warehouse needs ``catalog.view_stocklevel``).

Writes go to Postgres through the catalog services; the projection follows through the outbox.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, ClassVar

from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .currencies import ISO_4217_CURRENCIES
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


# What DRF's CharField refuses, as patterns (ECMA-262 and Python agree on ``\uXXXX``): a NUL
# character always (Postgres refuses it in text), and, unless blank is allowed, a value that is
# empty once ``str.strip()`` has trimmed it.
NUL = "\\u0000"
TEXT_PATTERN = f"^[^{NUL}]*$"
_STRIPPED = "".join(f"\\u{code:04x}" for code in range(0x3001) if chr(code).isspace())  # U+3000 is the last
NON_BLANK_TEXT_PATTERN = f"^[^{NUL}]*[^{NUL}{_STRIPPED}][^{NUL}]*$"


def text_pattern(field: serializers.CharField) -> str:
    if field.allow_blank:
        return TEXT_PATTERN
    return NON_BLANK_TEXT_PATTERN if field.trim_whitespace else f"^[^{NUL}]+$"


class StrictInputExtension(OpenApiSerializerExtension):
    """Input serializers that refuse unknown fields say so (``additionalProperties: false``), and
    their text fields say which strings they refuse (a NUL; blank, where blank is not allowed)."""

    target_class = StrictInputSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        for name, field in self.target.fields.items():
            described = schema["properties"].get(name, {})
            if isinstance(field, serializers.CharField) and "pattern" not in described:
                described["pattern"] = text_pattern(field)
        return schema


class StaffWithPermission(BasePermission):
    """Staff status alone is not enough: each method needs the model permission named for it.

    Unlike ``IsAdminUser`` this follows the permissions given in the admin, so a clerk who may
    view stock cannot reprice the catalog.
    """

    required: ClassVar[dict[str, str]] = {}

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        permission = self.required.get(request.method or "")
        return bool(user and user.is_authenticated and user.is_staff and permission and user.has_perm(permission))

    @classmethod
    def for_methods(cls, **required: str) -> type[StaffWithPermission]:
        return type(f"{cls.__name__}For{''.join(sorted(required))}", (cls,), {"required": required})


AMOUNT_PATTERN = r"^\d{1,10}(\.\d{1,2})?$"


@extend_schema_field({"type": "string", "format": "decimal", "pattern": AMOUNT_PATTERN, "example": "19.90"})
class AmountField(serializers.DecimalField):
    """A price as a decimal string ("19.90"): no exponents, signs, blanks or JSON numbers, which
    would reach the database as something else than what the client meant."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=2, **kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if not isinstance(data, str) or not re.fullmatch(AMOUNT_PATTERN, data):
            raise serializers.ValidationError("A decimal string with up to 2 places, such as 19.90.")
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


@extend_schema(tags=["prices"])
class PriceSetApi(APIView):
    permission_classes = [StaffWithPermission.for_methods(PUT="catalog.change_price")]

    class PriceSetInputSerializer(StrictInputSerializer):
        currency = serializers.ChoiceField(
            choices=sorted(ISO_4217_CURRENCIES),
            error_messages={"invalid_choice": "An ISO-4217 currency code such as EUR."},
        )
        amount = AmountField()

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


class StockConflict(exceptions.APIException):
    status_code = 409
    default_code = "stock_out_of_range"


@extend_schema(tags=["stock"])
class StockApi(APIView):
    permission_classes = [
        StaffWithPermission.for_methods(GET="catalog.view_stocklevel", POST="catalog.change_stocklevel")
    ]

    class StockOutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        total = serializers.IntegerField()
        warehouses = serializers.DictField(child=serializers.IntegerField(), help_text="Quantity per warehouse code.")

    class StockAdjustInputSerializer(StrictInputSerializer):
        warehouse = serializers.CharField(max_length=Warehouse._meta.get_field("code").max_length)
        delta = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000)

    class StockAdjustOutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        warehouse = serializers.CharField()
        quantity = serializers.IntegerField()
        version = serializers.IntegerField(help_text="The product's version after this write.")

    @extend_schema(operation_id="internal_stock_detail", responses=StockOutputSerializer)
    def get(self, request: Request, sku: str) -> Response:
        """Stock per warehouse, which the public documents do not show."""
        product = _product(sku)
        warehouses = selectors.product_stock_by_warehouse(product=product)
        return Response(self.StockOutputSerializer(
            {"sku": product.sku, "total": sum(warehouses.values()), "warehouses": warehouses}
        ).data)

    @extend_schema(
        operation_id="internal_stock_adjust", request=StockAdjustInputSerializer,
        responses={
            200: StockAdjustOutputSerializer,
            404: OpenApiResponse(description="No product with this SKU, or no warehouse with this code."),
            409: OpenApiResponse(description="The stock would go below zero or above its maximum; nothing changed."),
        },
    )
    def post(self, request: Request, sku: str) -> Response:
        data = _validated(self.StockAdjustInputSerializer, request)
        product = _product(sku)
        warehouse = Warehouse.objects.filter(code=data["warehouse"]).first()
        if warehouse is None:
            raise exceptions.NotFound(f"No warehouse with the code {data['warehouse']!r}.")
        try:
            level = services.stock_adjust(product=product, warehouse=warehouse, delta=data["delta"])
        except services.StockOutOfRange as exc:
            raise StockConflict(str(exc)) from exc
        return Response(self.StockAdjustOutputSerializer({
            "sku": product.sku, "warehouse": level.warehouse.code, "quantity": level.quantity,
            "version": _version(product),
        }).data)
