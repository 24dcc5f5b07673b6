"""The cart API: the authenticated customer's own cart, in DynamoDB (no Postgres query per request).

A customer only ever reaches their own cart: the user comes from the token, never from the URL.
Responses carry the cart's version as ETag; a write with If-Match is refused with 412 when the
cart changed since. Prices come from the product documents (the hot path) and are indicative:
checkout prices the order from Postgres.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.apis import StrictInputSerializer
from hybridsite.authentication import CachedTokenAuthentication
from hybridsite.conditions import if_match_parameter, if_match_version
from projections.readpath import DYNAMODB_ERRORS

from . import products, services
from .selectors import CartState, cart_get

IF_MATCH_EXAMPLE = 'An ETag of this cart, such as "1763870000000001".'


class CartVersionChanged(exceptions.APIException):
    status_code = 412
    default_code = "precondition_failed"
    default_detail = "The cart changed since the version in If-Match; read it again."


class CartBusy(exceptions.APIException):
    status_code = 409
    default_code = "conflict"
    default_detail = "The cart is being changed by another request; retry."


class NotOnSale(exceptions.NotFound):
    default_detail = "No product with this SKU is on sale."


class CartLinesExceeded(exceptions.APIException):
    status_code = 409
    default_code = "cart_full"


class CartUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "unavailable"
    default_detail = "Carts cannot be reached right now; retry shortly."


class CartOutputSerializer(serializers.Serializer):
    class LineSerializer(serializers.Serializer):
        sku = serializers.CharField()
        quantity = serializers.IntegerField()
        name = serializers.CharField(allow_null=True)
        available = serializers.BooleanField(help_text="False when the product is no longer on sale.")
        unit_prices = serializers.DictField(child=serializers.CharField(), help_text="Currency -> decimal string.")

    version = serializers.IntegerField(help_text="The cart's version (also the ETag); 0: no cart yet.")
    lines = LineSerializer(many=True)
    totals = serializers.DictField(
        child=serializers.CharField(), help_text="Per currency that every available line is priced in."
    )
    prices_indicative = serializers.BooleanField(help_text="Always true: checkout prices the order from Postgres.")
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the cart expires if left idle.")


def cart_payload(cart: CartState) -> dict[str, Any]:
    offers = products.offers_get(skus=sorted(cart.lines))
    lines: list[dict[str, Any]] = []
    for sku in sorted(cart.lines):
        offer = offers.get(sku)
        lines.append({
            "sku": sku, "quantity": cart.lines[sku], "name": offer.name if offer else None,
            "available": offer is not None, "unit_prices": offer.prices if offer else {},
        })
    available = [line for line in lines if line["available"]]
    currencies = set.intersection(*(set(line["unit_prices"]) for line in available)) if available else set()
    totals = {
        currency: f"{sum(Decimal(line['unit_prices'][currency]) * line['quantity'] for line in available):.2f}"
        for currency in sorted(currencies)
    }
    return {
        "version": cart.version, "lines": lines, "totals": totals, "prices_indicative": True,
        "expires_at": cart.expires_at,
    }


IF_MATCH = if_match_parameter("The ETag of the cart this change is based on: 412 if the cart changed since.")
CART_RESPONSES = {
    200: CartOutputSerializer,
    409: OpenApiResponse(description="Concurrent writers kept changing the cart (`conflict`); retry."),
    412: OpenApiResponse(description="The cart changed since If-Match; the current ETag is in the response."),
    503: OpenApiResponse(description="Carts cannot be reached (or read-only mode); retry after Retry-After."),
}
CART_ITEM_SET_RESPONSES = {
    **CART_RESPONSES,
    404: OpenApiResponse(description="No product with this SKU is on sale."),
    409: OpenApiResponse(description=(
        "Concurrent writers kept changing the cart (`conflict`; retry), or it holds as many lines as it may"
        " (`cart_full`)."
    )),
}


@extend_schema(tags=["cart"])
class CartBaseApi(APIView):
    authentication_classes = [CachedTokenAuthentication]
    throttle_scope = "cart"

    def respond(self, cart: CartState) -> Response:
        response = Response(CartOutputSerializer(cart_payload(cart)).data)
        response["ETag"] = f'"{cart.version}"'
        response["Cache-Control"] = "private, no-store"
        return response

    def handle_exception(self, exc: Exception) -> Response:
        current = None
        if isinstance(exc, services.CartVersionMismatch):
            current, exc = exc.current, CartVersionChanged()
        elif isinstance(exc, services.CartContended):
            exc = CartBusy()
        elif isinstance(exc, services.ProductNotOnSale):
            exc = NotOnSale()
        elif isinstance(exc, services.CartFull):
            exc = CartLinesExceeded(str(exc))
        elif isinstance(exc, DYNAMODB_ERRORS):
            exc = CartUnavailable()
        response = super().handle_exception(exc)
        if current is not None:
            response["ETag"] = f'"{current.version}"'
        return response


def customer_id(request: Request) -> int:
    """The caller's user id (IsAuthenticated has run: the user is a saved one)."""
    return cast(int, request.user.pk)


class CartApi(CartBaseApi):
    @extend_schema(operation_id="cart_detail", responses={200: CartOutputSerializer, 503: CART_RESPONSES[503]})
    def get(self, request: Request) -> Response:
        return self.respond(cart_get(user_id=customer_id(request)))

    @extend_schema(operation_id="cart_clear", parameters=[IF_MATCH], responses=CART_RESPONSES)
    def delete(self, request: Request) -> Response:
        version = if_match_version(request, IF_MATCH_EXAMPLE)
        return self.respond(services.cart_clear(user_id=customer_id(request), version=version))


class CartItemApi(CartBaseApi):
    class CartItemInputSerializer(StrictInputSerializer):
        quantity = serializers.IntegerField(
            min_value=1, max_value=settings.CART_MAX_QUANTITY,
            help_text="The quantity of this SKU in the cart (replaces it).",
        )

    @extend_schema(
        operation_id="cart_item_set", parameters=[IF_MATCH], request=CartItemInputSerializer,
        responses=CART_ITEM_SET_RESPONSES,
    )
    def put(self, request: Request, sku: str) -> Response:
        serializer = self.CartItemInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart = services.cart_line_set(
            user_id=customer_id(request), sku=sku, quantity=serializer.validated_data["quantity"],
            expected=if_match_version(request, IF_MATCH_EXAMPLE),
        )
        return self.respond(cart)

    @extend_schema(operation_id="cart_item_remove", parameters=[IF_MATCH], responses=CART_RESPONSES)
    def delete(self, request: Request, sku: str) -> Response:
        expected = if_match_version(request, IF_MATCH_EXAMPLE)
        cart = services.cart_line_remove(user_id=customer_id(request), sku=sku, expected=expected)
        return self.respond(cart)
