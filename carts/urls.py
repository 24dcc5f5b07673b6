from django.urls import path

from catalog import converters  # noqa: F401  (registers <sku:...>)

from . import apis

urlpatterns = [
    path("", apis.CartApi.as_view(), name="cart"),
    path("items/<sku:sku>/", apis.CartItemApi.as_view(), name="cart-item"),
]
