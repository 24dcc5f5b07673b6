from django.urls import path

from . import exports, views

urlpatterns = [
    path("metrics", views.MetricsApi.as_view(), name="metrics"),
    path("api/internal/exports/products.csv", exports.ProductsExportApi.as_view(), name="export-products"),
    path("api/internal/exports/orders.csv", exports.OrdersExportApi.as_view(), name="export-orders"),
]
