from django.urls import path

from . import apis, converters  # noqa: F401  (converters registers <sku:...>)

urlpatterns = [
    path("products/<sku:sku>/price/", apis.PriceSetApi.as_view(), name="internal-price-set"),
    path("products/<sku:sku>/stock/", apis.StockApi.as_view(), name="internal-stock"),
]
