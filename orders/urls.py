from django.urls import path, register_converter

from projections.registry import MAX_ORDER_ID

from . import apis


class OrderIdConverter:
    """An id Postgres can hold (a bigint): a longer one is a 404 from the resolver, not a 500."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ORDER_ID:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(OrderIdConverter, "order_id")

urlpatterns = [
    path("", apis.OrderListCreateApi.as_view(), name="orders"),
    path("<order_id:order_id>/", apis.OrderDetailApi.as_view(), name="order-detail"),
]
