"""The hot read served before the rest of the middleware stack.

A product read whose Redis entry is there is the customer API's most frequent request, and it needs
nothing from sessions, authentication, CSRF, messages, static files, read-only mode (reads are never
refused) or login limits; its view would not use them. This middleware sits right after the read
metrics and ``SecurityMiddleware`` (so the hit is timed, redirected to HTTPS and given the security
headers as every answer is) and answers the hit itself: the URL resolved as the handler would, the
host checked against ``ALLOWED_HOSTS``, then the reader's one Redis round trip (rate limit, entry,
hit counter), or none when the process-local layer holds the entry (``HOT_READ_LOCAL_CACHE``,
projections/local.py). Whatever that round trip cannot answer on its own — a miss, a client over its
limit, an entry below ``min_version`` or below the version of the client's If-None-Match, a cached
absence, Redis unreachable — goes down the whole stack to the view with the round trip's outcome
attached, so that the view neither counts the request again nor reads Redis twice. HEAD, OPTIONS
and every other route never stop here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve, reverse
from rest_framework.exceptions import ValidationError

from catalog.models import SKU_MAX_LENGTH
from hybridsite import cache_keys

from . import apis, local, reader, shapes
from .readpath import Result, unlearned
from .registry import product_document

ROUTE = "product-detail"
# Paths whose resolution is kept: Django resolves each request's path anew, which costs the hot read
# a tenth of its time; a path resolves the same way until the URLconf changes (a new process).
RESOLVED_PATHS = 10_000


def _product_match(path: str) -> ResolverMatch | None:
    """The product route's match for ``path``; None for any other route or none."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match if match.url_name == ROUTE else None


class HotReadMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = reverse(ROUTE, kwargs={"sku": "x"}).removesuffix("x/")
        view = apis.ProductDetailApi()
        view.setup(HttpRequest())  # as Django sets a view up: HEAD answered by GET
        self.allow = ", ".join(view.allowed_methods)  # DRF's Allow header
        self.product_match = lru_cache(maxsize=RESOLVED_PATHS)(_product_match)
        self.longest = len(self.prefix) + SKU_MAX_LENGTH + 1  # a longer path is no product's: not kept

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET" or not request.path_info.startswith(self.prefix):
            return self.get_response(request)
        path = request.path_info
        match = self.product_match(path) if len(path) <= self.longest else _product_match(path)
        if match is None:
            return self.get_response(request)
        try:
            # Never an entry below what the client asked for or says it holds (If-None-Match).
            wanted = max(apis.min_version_of(request), apis.version_seen(request))
        except ValidationError:
            return self.get_response(request)  # the view answers 400
        request.get_host()  # DisallowedHost (400) as CommonMiddleware would raise it
        request.resolver_match = match
        throttle = apis.anon_throttle(request)
        ref = product_document(match.kwargs["sku"])
        layer = local.layer()
        if layer is not None:
            key = cache_keys.document(ref.name)
            # Nor below what this process served that Redis has not learned (``readpath.Unlearned``).
            result = layer.get(key, throttle, max(wanted, unlearned.floor(ref.name)))
            if result is not None:
                return self.respond(request, result)
            epoch = layer.epoch()
        counted = reader.counted_read(ref, throttle)
        if layer is not None:
            counted = layer.after_read(key, counted, throttle, epoch)
        result = reader.cached_result(counted, throttle, wanted)
        if result is None:
            setattr(request, apis.HOT_READ_ATTRIBUTE, counted)
            return self.get_response(request)
        return self.respond(request, result)

    def respond(self, request: HttpRequest, result: Result) -> HttpResponse:
        response = apis.document_response(request, result, shapes.read_shape())
        response["Allow"] = self.allow
        response["X-Served-From"] = result.source
        response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
        response["Content-Length"] = str(len(response.content))
        return response
