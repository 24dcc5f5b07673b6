"""The customer's orders: checkout (``POST``, exactly once per ``Idempotency-Key``) and reads of
their own orders. Another customer's order is a 404, never a 403 that would confirm it exists.
"""

from __future__ import annotations

import re
from typing import Any, cast

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.apis import StrictInputSerializer

from . import idempotency, selectors, services
from .models import IDEMPOTENCY_KEY_MAX_LENGTH, NOTE_MAX_LENGTH, Order

JSON = "application/json"
KEY_HEADER = "Idempotency-Key"
KEY_PATTERN = rf"^[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}$"
REPLAY_HEADER = "Idempotent-Replayed"
DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_ORDER_ID = 2**63 - 1


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


def _rendered(order: Order) -> bytes:
    """The order as JSON, always rendered from the committed rows: a replay and the first answer
    are the same bytes."""
    return JSONRenderer().render(OrderOutputSerializer(order).data)


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


@extend_schema(tags=["orders"])
class OrderListCreateApi(APIView):
    class OrderCreateInputSerializer(StrictInputSerializer):
        note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True, default="")

    class OrderPageOutputSerializer(serializers.Serializer):
        results = OrderOutputSerializer(many=True)
        next = serializers.CharField(allow_null=True, help_text="The next page's URL; null on the last page.")

    @property
    def throttle_scope(self) -> str:
        """Placing orders counts against the customer's write limit; reading against the default."""
        return "checkout" if self.request.method == "POST" else "default"

    @extend_schema(
        operation_id="order_list",
        parameters=[
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
                description=f"Orders per page, 1 to {MAX_PAGE}.",
            ),
            OpenApiParameter(
                "before", {"type": "integer", "minimum": 1, "maximum": MAX_ORDER_ID},
                description="Orders older than this order id (the `next` link sets it).",
            ),
        ],
        responses=OrderPageOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        """The customer's own orders, newest first."""
        limit = _integer_param(request, "limit", MAX_PAGE) or DEFAULT_PAGE
        before = _integer_param(request, "before", MAX_ORDER_ID)
        orders = selectors.order_list(user_id=_user_id(request))
        if before is not None:
            orders = orders.filter(pk__lt=before)
        page = list(orders[: limit + 1])
        following = None
        if len(page) > limit:
            page = page[:limit]
            following = request.build_absolute_uri(f"{request.path}?limit={limit}&before={page[-1].pk}")
        return Response(self.OrderPageOutputSerializer({"results": page, "next": following}).data)

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
class OrderDetailApi(APIView):
    @extend_schema(operation_id="order_detail", responses=OrderOutputSerializer)
    def get(self, request: Request, order_id: int) -> HttpResponse:
        order = selectors.order_get(user_id=_user_id(request), order_id=order_id)
        if order is None:
            raise exceptions.NotFound("No such order.")
        return HttpResponse(_rendered(order), content_type=JSON)
