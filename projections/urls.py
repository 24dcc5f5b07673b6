from django.urls import path

import catalog.converters  # noqa: F401  (registers the sku and category_slug converters)

from . import apis, internal_apis

urlpatterns = [
    path("products/", apis.ProductSearchApi.as_view(), name="product-search"),
    path("products/<sku:sku>/", apis.ProductDetailApi.as_view(), name="product-detail"),
    path("categories/", apis.CategoryTreeApi.as_view(), name="category-tree"),
    path("categories/<category_slug:slug>/products/", apis.CategoryProductsApi.as_view(), name="category-products"),
    path(
        "internal/products/<sku:sku>/history/", internal_apis.ProductHistoryApi.as_view(),
        name="internal-product-history",
    ),
]
