from django.urls import path

import catalog.converters  # noqa: F401  (registers the sku and category_slug converters)

from . import apis

urlpatterns = [
    path("products/", apis.ProductSearchApi.as_view(), name="product-search"),
    path("products/<sku:sku>/", apis.ProductDetailApi.as_view(), name="product-detail"),
    path("categories/", apis.CategoryTreeApi.as_view(), name="category-tree"),
    path("categories/<category_slug:slug>/products/", apis.CategoryProductsApi.as_view(), name="category-products"),
]
