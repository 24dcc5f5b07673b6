"""The customer API: read-only, anonymous, throttled, served from the read-through reader.

Views return the reader's bytes as they are (no serializer on the hit path). Authentication is
off here on purpose: identifying a session would cost a database query on every hot read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from hybridsite.clients import client_bucket

from . import documents, listings, reader, readpath, shapes
from .cursors import CURSOR_MAX_LENGTH, CURSOR_PATTERN, BadCursor
from .readpath import Result, Throttle
from .registry import category_tree_document, product_document

JSON = "application/json"
MAX_PAGE = 100
MAX_VERSION = 2**63 - 1  # versions are Postgres bigints
HOT_READ_ATTRIBUTE = "counted_read"  # set on the request by projections.middleware.HotReadMiddleware


def _not_modified(request, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]
    return etag in tags or "*" in tags


class CatalogUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "unavailable"
    default_detail = "The catalog cannot be read right now; retry shortly."
    wait = 5  # seconds, sent as Retry-After


class MinVersionUnavailable(exceptions.APIException):
    status_code = 412
    default_code = "version_unavailable"
    default_detail = "No version of this document at or above min_version exists."


def anon_throttle(request) -> Throttle:
    """The anonymous client's limit, per client bucket; a request that adds an entry to the cache
    costs as many requests as keep one client within ``THROTTLE_CACHE_FILLS_PER_MINUTE`` new entries."""
    limit = settings.THROTTLE_ANON_PER_MINUTE
    fill_cost = max(0, -(-limit // settings.THROTTLE_CACHE_FILLS_PER_MINUTE) - 1)
    return Throttle("anon", client_bucket(request), limit, fill_cost=fill_cost)


def min_version_of(request) -> int:
    """The ``min_version`` a client asked for (0 when none); 400 when it is not one."""
    if not request.META.get("QUERY_STRING"):
        return 0  # the usual read: no query string to parse
    raw = request.GET.get("min_version")
    if raw is None:
        return 0
    # "²" is a digit but no number; length first: int() refuses over 4,300 digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_VERSION:
        raise exceptions.ValidationError({"min_version": [f"Must be an integer from 0 to {MAX_VERSION}."]})
    return int(raw)


def refuse_unknown(request, known: set[str]) -> None:
    """400 for a query parameter the operation does not have: a misspelt ``min_version`` must not
    pass for a read without it."""
    unknown = sorted(set(request.GET) - known) if request.META.get("QUERY_STRING") else []
    if unknown:
        raise exceptions.ValidationError({name: ["Unknown parameter."] for name in unknown})


def document_response(request, result: Result, shape: int | None = None) -> HttpResponse:
    """A found document's bytes as they are (ETag, 304, Cache-Control), or converted to the product
    document ``shape`` being served."""
    etag = f'"{result.version}"' if shape in (None, 1) else f'"{result.version}-s{shape}"'
    if result.version and _not_modified(request, etag):
        response = HttpResponse(status=304)
    else:
        body = result.body if shape is None else documents.product_in_shape(result.body, shape)
        response = HttpResponse(body, content_type=JSON)
    if result.version:
        response["ETag"] = etag
    response["Cache-Control"] = settings.API_CACHE_CONTROL
    return response


class PublicApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # the reader counts the rate limit in its own Redis round trip
    # The layer that answered this request (one view instance per request), sent as X-Served-From:
    # ``edge`` when the request was refused before any layer was asked, ``none`` when none could answer.
    served_from = "edge"

    def perform_content_negotiation(self, request, force: bool = False) -> tuple[JSONRenderer, str]:
        """The answer is JSON bytes already rendered: there is nothing to negotiate."""
        return JSONRenderer(), JSON

    def throttle(self, request) -> Throttle:
        return anon_throttle(request)

    def respond(self, request, result: Result, not_found: str, shape: int | None = None) -> HttpResponse:
        """A found document (see ``document_response``); an absence is an error."""
        self.served_from = result.source
        if not result.found:
            raise exceptions.NotFound(not_found)
        return document_response(request, result, shape)

    def handle_exception(self, exc: Exception) -> Response:
        """The read path's errors become the API's exceptions; the project's one handler shapes
        every error body."""
        to_api = READ_ERRORS.get(type(exc))
        if to_api is not None:
            self.served_from = getattr(exc, "source", "edge")
            exc = to_api(exc)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        """Every answer says which layer served it."""
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Served-From"] = self.served_from
        return response


READ_ERRORS: dict[type[Exception], Callable[[Any], exceptions.APIException]] = {
    readpath.Throttled: lambda exc: exceptions.Throttled(wait=exc.retry_after),
    readpath.Unavailable: lambda exc: CatalogUnavailable(),
    readpath.VersionUnavailable: lambda exc: MinVersionUnavailable(),
    BadCursor: lambda exc: exceptions.ValidationError({"cursor": [str(exc)]}),
}


DOCUMENT_RESPONSES = {
    200: OpenApiResponse(
        OpenApiTypes.OBJECT, description="The document; ETag is its version (with the shape when it is not 1)."
    ),
    304: OpenApiResponse(description="Not modified (If-None-Match matched)."),
    404: OpenApiResponse(OpenApiTypes.OBJECT, description="Unknown key (cached briefly)."),
    429: OpenApiResponse(OpenApiTypes.OBJECT, description="Rate limit reached; see Retry-After."),
}


@extend_schema(tags=["products"])
class ProductDetailApi(PublicApi):
    @extend_schema(
        operation_id="product_detail",
        parameters=[OpenApiParameter(
            "min_version", {"type": "integer", "minimum": 0, "maximum": MAX_VERSION},
            description=(
                "Read your writes: never answer with a version below this one (the `version` a write returned)."
            ),
        )],
        responses={
            **DOCUMENT_RESPONSES,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="min_version is not a non-negative integer."),
            412: OpenApiResponse(OpenApiTypes.OBJECT, description="No version at or above min_version exists."),
        },
    )
    def get(self, request, sku: str) -> HttpResponse:
        min_version = min_version_of(request)
        throttle = self.throttle(request)
        # The hot-read middleware's round trip, when it made one and left the answer to this view.
        counted = getattr(request, HOT_READ_ATTRIBUTE, None)
        result = reader.read_document(product_document(sku), throttle, min_version, counted)
        if not result.found and result.source != "cache":
            readpath.charge_fill(throttle)  # the absence is cached now: bounded per client
        return self.respond(request, result, "No product with this SKU.", shapes.read_shape())


@extend_schema(tags=["categories"])
class CategoryTreeApi(PublicApi):
    @extend_schema(operation_id="category_tree", responses=DOCUMENT_RESPONSES)
    def get(self, request) -> HttpResponse:
        result = reader.read_document(category_tree_document(), self.throttle(request))
        return self.respond(request, result, "No categories.")


@extend_schema(tags=["categories"])
class CategoryProductsApi(PublicApi):
    @extend_schema(
        operation_id="category_products",
        parameters=[
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 20},
                description=f"Items per page, 1 to {MAX_PAGE}.",
            ),
            OpenApiParameter(
                "cursor", {"type": "string", "maxLength": CURSOR_MAX_LENGTH, "pattern": CURSOR_PATTERN},
                description="The next_cursor of the previous page (opaque and signed: use it as it is).",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request, slug: str) -> HttpResponse:
        raw = request.GET.get("limit", "20")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
            raise exceptions.ValidationError({"limit": [f"Must be an integer from 1 to {MAX_PAGE}."]})
        result = listings.read_listing(slug, int(raw), request.GET.get("cursor", ""), self.throttle(request))
        return self.respond(request, result, "No category with this slug.")
