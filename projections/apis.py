"""The customer API: read-only, anonymous, throttled, served from the read-through reader.

Views return the reader's bytes as they are (no serializer on the hit path). Authentication is
off here on purpose: identifying a session would cost a database query on every hot read.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from hybridsite.errors import error_body

from . import reader

JSON = "application/json"
MAX_PAGE = 100


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _not_modified(request, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]
    return etag in tags or "*" in tags


def respond(request, result: reader.Result) -> HttpResponse:
    """Status, ETag/304, Cache-Control, Retry-After and X-Served-From for any reader result."""
    etag = f'"{result.version}"'
    if result.status == 200 and result.version and _not_modified(request, etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(result.body, status=result.status, content_type=JSON)
    if result.status in (200, 304) and result.version:
        response["ETag"] = etag
    if result.status == 200:
        response["Cache-Control"] = settings.API_CACHE_CONTROL
    if result.status == 429:
        response["Retry-After"] = str(result.retry_after)
    response["X-Served-From"] = result.source
    return response


class PublicApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # the reader counts the rate limit in its own Redis round trip

    def perform_content_negotiation(self, request, force: bool = False) -> tuple[JSONRenderer, str]:
        """The answer is JSON bytes already rendered: there is nothing to negotiate."""
        return JSONRenderer(), JSON

    def throttle(self, request) -> reader.Throttle:
        return reader.Throttle("anon", _client_ip(request), settings.THROTTLE_ANON_PER_MINUTE)

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, reader.Unavailable):
            body = orjson.dumps(error_body("unavailable", "The catalog cannot be read right now; retry shortly."))
            response = HttpResponse(body, status=503, content_type=JSON)
            response["Retry-After"] = "5"
            return response
        return super().handle_exception(exc)


DOCUMENT_RESPONSES = {
    200: OpenApiResponse(OpenApiTypes.OBJECT, description="The document; ETag is its version."),
    304: OpenApiResponse(description="Not modified (If-None-Match matched)."),
    404: OpenApiResponse(OpenApiTypes.OBJECT, description="Unknown key (cached briefly)."),
    429: OpenApiResponse(OpenApiTypes.OBJECT, description="Rate limit reached; see Retry-After."),
}


class ProductDetailApi(PublicApi):
    @extend_schema(operation_id="product_detail", responses=DOCUMENT_RESPONSES)
    def get(self, request, sku: str) -> HttpResponse:
        return respond(request, reader.read_document(reader.product_ref(sku), self.throttle(request)))


class CategoryTreeApi(PublicApi):
    @extend_schema(operation_id="category_tree", responses=DOCUMENT_RESPONSES)
    def get(self, request) -> HttpResponse:
        return respond(request, reader.read_document(reader.category_tree_ref(), self.throttle(request)))


class CategoryProductsApi(PublicApi):
    @extend_schema(
        operation_id="category_products",
        parameters=[
            OpenApiParameter("limit", int, description=f"Items per page, 1 to {MAX_PAGE} (default 20)."),
            OpenApiParameter("cursor", str, description="The next_cursor of the previous page."),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request, slug: str) -> HttpResponse:
        try:
            limit = int(request.GET.get("limit", "20"))
            if not 1 <= limit <= MAX_PAGE:
                raise ValueError
        except ValueError:
            return _bad_request("limit", f"Must be an integer from 1 to {MAX_PAGE}.")
        try:
            result = reader.read_listing(slug, limit, request.GET.get("cursor", ""), self.throttle(request))
        except reader.BadCursor as exc:
            return _bad_request("cursor", str(exc))
        return respond(request, result)


def _bad_request(field: str, message: str) -> HttpResponse:
    body = orjson.dumps(error_body("invalid", "The request has invalid fields.", {field: [message]}))
    return HttpResponse(body, status=400, content_type=JSON)
