"""The customer API: read-only, anonymous, throttled, served from the read-through reader.

Views return the reader's bytes as they are (no serializer on the hit path). Authentication is
off here on purpose: identifying a session would cost a database query on every hot read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.apis import AmountField
from catalog.converters import CategorySlugConverter
from catalog.currencies import ISO_4217_CURRENCIES
from catalog.selectors import SEARCH_SORTS
from hybridsite.clients import client_bucket

from . import documents, listings, reader, readpath, search, shapes
from .cursors import CURSOR_MAX_LENGTH, CURSOR_PATTERN, BadCursor, decode_offset
from .readpath import Result, Throttle
from .registry import category_tree_document, product_document

JSON = "application/json"
MAX_PAGE = 100
MAX_VERSION = 2**63 - 1  # versions are Postgres bigints
HOT_READ_ATTRIBUTE = "counted_read"  # set on the request by projections.middleware.HotReadMiddleware


def _not_modified(request, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]
    return etag in tags or "*" in tags


ETAG_VERSION = re.compile(r'\s*(?:W/)?"([0-9]{1,19})(?:-s[0-9]+)?"\s*')


def version_seen(request) -> int:
    """The highest document version among the client's If-None-Match tags (0: none). A client
    carries it from region to region: a read answers at or above it wherever it can (then 304
    when it is the same version), never with an older one."""
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return 0
    versions = [int(m[1]) for tag in header.split(",") if (m := ETAG_VERSION.fullmatch(tag))]
    return min(max(versions, default=0), MAX_VERSION)


class CatalogUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "unavailable"
    default_detail = "The catalog cannot be read right now; retry shortly."
    wait = 5  # seconds, sent as Retry-After


class MinVersionUnavailable(exceptions.APIException):
    """Postgres, the truth, holds no version of the document at or above ``min_version``: the
    request conflicts with the document's state (409). Not a 412, which answers a precondition
    sent in a header (``min_version`` is part of the URL), and not a 503: nothing is down, and
    retrying gets the same answer until a write reaches that version. See docs/api/contract.md."""

    status_code = 409
    default_code = "version_unavailable"
    default_detail = "This document has no version at or above min_version."


def _client_throttle(request, scope: str, limit: int, fills: int) -> Throttle:
    """``limit`` requests a minute per client bucket; a request that adds an entry to the cache
    costs as many requests as keep one client within ``fills`` new entries."""
    return Throttle(scope, client_bucket(request), limit, fill_cost=max(0, -(-limit // fills) - 1))


def anon_throttle(request) -> Throttle:
    """The anonymous client's limit on reads (``THROTTLE_CACHE_FILLS_PER_MINUTE`` new entries)."""
    return _client_throttle(
        request, "anon", settings.THROTTLE_ANON_PER_MINUTE, settings.THROTTLE_CACHE_FILLS_PER_MINUTE
    )


def search_throttle(request) -> Throttle:
    """Searches have a limit of their own: fewer, and fewer still computed afresh."""
    return _client_throttle(
        request, "search", settings.THROTTLE_SEARCH_PER_MINUTE, settings.THROTTLE_SEARCH_FILLS_PER_MINUTE
    )


def min_version_parameter(description: str) -> OpenApiParameter:
    """``min_version`` as the schema declares it, for every read that ``min_version_of`` serves."""
    return OpenApiParameter(
        "min_version", {"type": "integer", "minimum": 0, "maximum": MAX_VERSION}, description=description
    )


MIN_VERSION_CONFLICT = "`version_unavailable`: the document has no version at or above min_version."


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
        parameters=[min_version_parameter(
            "Read your writes: never answer with a version below this one (the `version` a write returned)."
        )],
        responses={
            **DOCUMENT_RESPONSES,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="min_version is not a non-negative integer."),
            409: OpenApiResponse(OpenApiTypes.OBJECT, description=MIN_VERSION_CONFLICT),
        },
    )
    def get(self, request, sku: str) -> HttpResponse:
        min_version = min_version_of(request)
        throttle = self.throttle(request)
        # The hot-read middleware's round trip, when it made one and left the answer to this view.
        counted = getattr(request, HOT_READ_ATTRIBUTE, None)
        result = reader.read_document(product_document(sku), throttle, min_version, counted, version_seen(request))
        if not result.found and result.source != "cache":
            readpath.charge_fill(throttle)  # the absence is cached now: bounded per client
        return self.respond(request, result, "No product with this SKU.", shapes.read_shape())


@extend_schema(tags=["categories"])
class CategoryTreeApi(PublicApi):
    @extend_schema(operation_id="category_tree", responses=DOCUMENT_RESPONSES)
    def get(self, request) -> HttpResponse:
        result = reader.read_document(category_tree_document(), self.throttle(request), seen=version_seen(request))
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


SEARCH_QUERY_MAX_LENGTH = 200
SEARCH_MAX_PAGE = 50


@extend_schema(tags=["products"])
class ProductSearchApi(PublicApi):
    """Full-text search of the catalog with filters; see ``projections.search``."""

    class SearchInputSerializer(serializers.Serializer):
        q = serializers.RegexField(
            r"^[^\x00]*$", required=False, default="", allow_blank=True, trim_whitespace=False,
            max_length=SEARCH_QUERY_MAX_LENGTH,
            help_text='Words to find in SKU, name and description (web search syntax: "a phrase", -without, or).',
        )
        category = serializers.RegexField(
            f"^{CategorySlugConverter.regex}$", required=False,
            help_text="A category's slug: products in it and in the categories below it.",
        )
        min_price = AmountField(required=False, help_text="Lowest price in `currency`, inclusive.")
        max_price = AmountField(required=False, help_text="Highest price in `currency`, inclusive.")
        currency = serializers.ChoiceField(
            choices=sorted(ISO_4217_CURRENCIES), required=False,
            help_text="The currency of the price bounds and price orders (the shop's by default).",
        )
        in_stock = serializers.BooleanField(
            required=False, help_text="Only products in stock (true), or only those out of it (false)."
        )
        sort = serializers.ChoiceField(
            choices=SEARCH_SORTS, required=False,
            help_text="relevance (the default with q), name (the default without), price_asc, price_desc, newest.",
        )
        limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=SEARCH_MAX_PAGE)
        cursor = serializers.CharField(
            required=False, default="", max_length=CURSOR_MAX_LENGTH,
            help_text="The next_cursor of the previous page (opaque and signed: use it as it is).",
        )

    @extend_schema(
        operation_id="product_search",
        parameters=[SearchInputSerializer],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def get(self, request) -> HttpResponse:
        # A plain dict: a QueryDict would make a missing boolean false, as an unticked HTML checkbox.
        serializer = self.SearchInputSerializer(data=request.GET.dict())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        limit, cursor = data.pop("limit"), data.pop("cursor")
        offset = decode_offset(cursor, settings.SEARCH_MAX_RESULTS)
        skus, self.served_from = search.matching_skus(search.normalize(**data), search_throttle(request))
        response = HttpResponse(search.page(skus, offset, limit), content_type=JSON)
        response["Cache-Control"] = settings.API_CACHE_CONTROL
        return response
