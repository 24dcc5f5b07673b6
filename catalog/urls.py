from django.urls import path

from . import apis

urlpatterns = [
    path("products/<str:sku>/price/", apis.PriceSetApi.as_view(), name="internal-price-set"),
    path("products/<str:sku>/stock/", apis.StockAdjustApi.as_view(), name="internal-stock-adjust"),
]
