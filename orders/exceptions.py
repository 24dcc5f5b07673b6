"""What stops an order, as API errors in the one error shape (``hybridsite.errors``)."""

from __future__ import annotations

from rest_framework import exceptions


class ProductsUnavailable(exceptions.APIException):
    status_code = 409
    default_code = "unavailable"

    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"No longer sold: {', '.join(skus)}. Remove them from the cart.")


class CartEmpty(exceptions.APIException):
    """Checkout conflicts with the cart's state: there is nothing in it to order."""

    status_code = 409
    default_code = "cart_empty"
    default_detail = "The cart is empty."


class OutOfStock(exceptions.APIException):
    status_code = 409
    default_code = "out_of_stock"

    def __init__(self, available: dict[str, int]) -> None:
        left = ", ".join(f"{sku} ({count} left)" for sku, count in sorted(available.items()))
        super().__init__(f"Not enough stock: {left}.")


class CartUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "unavailable"
    default_detail = "The cart cannot be read right now; retry shortly with the same Idempotency-Key."
    wait = 5
