"""Bench-only views: the baselines Hybridsite is compared with.

1. ``FloorApi``: a stock DRF APIView returning constant bytes (the framework's own cost).
2. ``ProductOrmApi``: the product built from Postgres on every request, the way a team without
   Hybridsite writes it: select_related/prefetch_related (3 queries) and nested DRF serializers.
3. ``ProductCachalotApi``: the same view with django-cachalot caching its queries.

Hybridsite's paths (Redis hit, DynamoDB hit, cold) are the real ``/api/products/<sku>/``. None of
the baselines is throttled; Hybridsite's view is (the counter shares the read's Redis round trip).
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.generics import RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from catalog.models import Category, Price, Product, StockLevel
from projections.apis import JSON

from . import cachalot_scope

FLOOR_BODY = b'{"status":"ok","floor":true}'


class FloorApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request) -> HttpResponse:
        return HttpResponse(FLOOR_BODY, content_type=JSON)


class CategorySerializer(serializers.ModelSerializer):
    path = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = ["slug", "name", "path"]

    def get_path(self, category: Category) -> list[dict[str, str]]:
        path = [category]
        while path[0].parent_id is not None and len(path) < 10:
            path.insert(0, path[0].parent)
        return [{"slug": c.slug, "name": c.name} for c in path]


class PriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Price
        fields = ["currency", "amount"]


class StockLevelSerializer(serializers.ModelSerializer):
    warehouse = serializers.CharField(source="warehouse.code")

    class Meta:
        model = StockLevel
        fields = ["warehouse", "quantity"]


class ProductSerializer(serializers.ModelSerializer):
    category = CategorySerializer()
    prices = PriceSerializer(many=True)
    stock_levels = StockLevelSerializer(many=True)
    in_stock = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = [
            "sku", "name", "description", "attributes", "category", "prices", "stock_levels", "in_stock",
            "version", "updated_at",
        ]

    def get_in_stock(self, product: Product) -> bool:
        return any(level.quantity > 0 for level in product.stock_levels.all())


class ProductOrmApi(RetrieveAPIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    serializer_class = ProductSerializer
    lookup_field = "sku"
    queryset = (
        Product.objects.filter(is_active=True)
        .select_related("category__parent")
        .prefetch_related("prices", Prefetch("stock_levels", queryset=StockLevel.objects.select_related("warehouse")))
    )


class ProductCachalotApi(ProductOrmApi):
    def dispatch(self, request, *args, **kwargs):
        with cachalot_scope.enabled():
            return super().dispatch(request, *args, **kwargs)
