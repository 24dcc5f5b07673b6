"""The customer's orders: checkout (``POST``, exactly once per ``Idempotency-Key``) and reads of
their own orders. Another customer's order is a 404, never a 403 that would confirm it exists.

Reads are served like the catalog's, from the projection of the orders (Redis -> DynamoDB ->
Postgres), with the token's owner read from Redis: a read served from the cache asks Postgres
nothing. Checkout answers with the order's ``version``; a read with ``min_version`` set to it
never answers without that order.
"""

from __future__ import annotations

import re
from typing import Any, cast

import orjson
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from catalog.apis import StrictInputSerializer
from hybridsite.authentication import CachedTokenAuthentication
from projections import reader
from projections.apis import (
    MIN_VERSION_CONFLICT,
    PublicApi,
    min_version_of,
    min_version_parameter,
    refuse_unknown,
    version_seen,
)
from projections.cursors import CURSOR_MAX_LENGTH
from projections.readpath import Result, Throttle

from . import idempotency, services
from .models import IDEMPOTENCY_KEY_MAX_LENGTH, NOTE_MAX_LENGTH, Order
from .projection import order_document
from .reads import order_address, read_orders

JSON = "application/json"
KEY_HEADER = "Idempotency-Key"
KEY_PATTERN = rf"^[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}$"
REPLAY_HEADER = "Idempotent-Replayed"
DEFAULT_PAGE = 20
MAX_PAGE = 100
PRIVATE = "private, no-store"


class OrderOutputSerializer(serializers.Serializer):
    class OrderLineSerializer(serializers.Serializer):
        sku = serializers.CharField()
        name = serializers.CharField()
        quantity = serializers.IntegerField()
        unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    currency = serializers.CharField()
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    note = serializers.CharField()
    lines = OrderLineSerializer(many=True)
    version = serializers.IntegerField(help_text="Read your writes: pass it as `min_version` to the reads.")


def _rendered(order: Order) -> bytes:
    """The order as JSON, always rendered from the committed rows, as the projection renders it: a
    replay and the first answer are the same bytes, and the reads serve the same document."""
    return orjson.dumps(order_document(order))


def _user_id(request: Request) -> int:
    """The caller's user id (IsAuthenticated has run: the user is a saved one)."""
    return cast(int, request.user.pk)


def _integer_param(request: Request, name: str, maximum: int) -> int | None:
    """A query parameter from 1 to ``maximum``; None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    # "²" is a digit but no number; length first: int() refuses over 4,300 digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) <= maximum:
        raise exceptions.ValidationError({name: [f"Must be an integer from 1 to {maximum}."]})
    return int(raw)


MIN_VERSION = min_version_parameter(
    "Read your writes: never answer without the order of this `version` (checkout returns it)."
)
READ_RESPONSES = {
    400: OpenApiResponse(description="A parameter is not valid (or the cursor is not one handed to this customer)."),
    404: OpenApiResponse(description="No such order of this customer."),
    429: OpenApiResponse(description="Rate limit reached; see Retry-After."),
    503: OpenApiResponse(description="Neither DynamoDB nor Postgres can answer; retry after Retry-After."),
}


class CustomerReadApi(PublicApi):
    """A customer's reads of their own orders: the token's owner comes from Redis, the rate limit
    is counted in the read's own round trip, and answers are private to the customer."""

    # A token from Redis first (no query on a hit); a browser's session still works, as it did.
    authentication_classes = [CachedTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def throttle(self, request: Request) -> Throttle:
        return Throttle("orders", f"user:{_user_id(request)}", settings.THROTTLE_RATES["orders"])

    def respond(self, request: Request, result: Result, not_found: str, shape: int | None = None) -> HttpResponse:
        response = super().respond(request, result, not_found, shape)
        response["Cache-Control"] = PRIVATE
        return response


@extend_schema(tags=["orders"])
class OrderListCreateApi(CustomerReadApi):
    class OrderCreateInputSerializer(StrictInputSerializer):
        note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True, default="")

    class OrderPageOutputSerializer(serializers.Serializer):
        results = OrderOutputSerializer(many=True)
        next_cursor = serializers.CharField(
            allow_null=True, help_text="The next page's `cursor` (opaque, for this customer only); null on the last."
        )

    throttle_classes = list(api_settings.DEFAULT_THROTTLE_CLASSES)  # POST; reads count in the read (``throttle``)
    throttle_scope = "checkout"

    def get_throttles(self) -> list[BaseThrottle]:
        """Placing orders counts against the customer's checkout limit; reads are counted apart."""
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        operation_id="order_list",
        parameters=[
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
                description=f"Orders per page, 1 to {MAX_PAGE}.",
            ),
            OpenApiParameter(
                "cursor", {"type": "string", "maxLength": CURSOR_MAX_LENGTH},
                description="The next_cursor of the previous page (opaque and signed: use it as it is).",
            ),
            MIN_VERSION,
        ],
        responses={200: OrderPageOutputSerializer, **READ_RESPONSES},
    )
    def get(self, request: Request) -> HttpResponse:
        """The customer's own orders, newest first."""
        refuse_unknown(request, {"limit", "cursor", "min_version"})
        limit = _integer_param(request, "limit", MAX_PAGE) or DEFAULT_PAGE
        result = read_orders(
            _user_id(request), limit, request.GET.get("cursor", ""), self.throttle(request), min_version_of(request)
        )
        # No ETag: a page's version is its newest order's, which a page with one order fewer can share.
        self.served_from = result.source
        response = HttpResponse(result.body, content_type=JSON)
        response["Cache-Control"] = PRIVATE
        return response

    @extend_schema(
        operation_id="order_create",
        parameters=[OpenApiParameter(
            KEY_HEADER, {"type": "string", "pattern": KEY_PATTERN}, location=OpenApiParameter.HEADER, required=True,
            description="A new unique value (a UUID) per order; send it again, with the same body, to retry.",
        )],
        request=OrderCreateInputSerializer,
        responses={
            201: OpenApiResponse(
                OrderOutputSerializer,
                description=f"The order. A replay of an earlier answer for this key says `{REPLAY_HEADER}: true`.",
            ),
            409: OpenApiResponse(description=(
                "The cart is empty (`cart_empty`), holds products no longer sold (`unavailable`) or more than is in"
                " stock (`out_of_stock`), or a request with this key is in progress (`request_in_progress`; see"
                " Retry-After)."
            )),
            422: OpenApiResponse(description="This Idempotency-Key was used with a different body."),
            503: OpenApiResponse(description="Idempotency keys cannot be checked; retry with the same key."),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        """Place an order from the customer's cart, exactly once per Idempotency-Key."""
        key = request.headers.get(KEY_HEADER, "")
        if not re.fullmatch(KEY_PATTERN, key):
            raise exceptions.ValidationError(
                {KEY_HEADER: [f"Required: 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters, such as a UUID."]}
            )
        serializer = self.OrderCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        user_id = _user_id(request)

        def place() -> tuple[int, bytes]:
            return 201, _rendered(services.order_checkout(user_id=user_id, idempotency_key=key, **data))

        def recover() -> tuple[int, bytes] | None:
            order = services.order_recover(user_id=user_id, idempotency_key=key)
            return None if order is None else (201, _rendered(order))

        outcome = idempotency.run(
            user_id=user_id, key=key, digest=idempotency.request_hash(data=data), work=place, recover=recover
        )
        response = HttpResponse(outcome.body, status=outcome.status_code, content_type=JSON)
        if outcome.replayed:
            response[REPLAY_HEADER] = "true"
        return response


@extend_schema(tags=["orders"])
class OrderDetailApi(CustomerReadApi):
    @extend_schema(
        operation_id="order_detail", parameters=[MIN_VERSION],
        responses={
            200: OrderOutputSerializer, 304: OpenApiResponse(description="Not modified."),
            409: OpenApiResponse(description=MIN_VERSION_CONFLICT), **READ_RESPONSES,
        },
    )
    def get(self, request: Request, order_id: int) -> HttpResponse:
        """One of the customer's orders (ETag: its version)."""
        refuse_unknown(request, {"min_version"})
        min_version = min_version_of(request)
        address = order_address(_user_id(request), order_id)
        result = reader.read_document(address, self.throttle(request), min_version, seen=version_seen(request))
        return self.respond(request, result, "No such order.")
