from django.urls import path

from . import apis

urlpatterns = [
    path("products/<str:sku>/", apis.ProductDetailApi.as_view(), name="product-detail"),
    path("categories/", apis.CategoryTreeApi.as_view(), name="category-tree"),
    path("categories/<slug:slug>/products/", apis.CategoryProductsApi.as_view(), name="category-products"),
]
