"""Read-only mode at the edge: one place that knows which requests are writes."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from hybridsite.errors import error_body

from .readonly import is_read_only

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadOnlyMiddleware:
    """While read-only mode is on, every write to the API answers 503 with ``Retry-After`` in the
    API's error shape, and admin pages learn it through ``request.read_only`` (the catalog admin
    then offers no add, change or delete, and shows a banner). Reads never pay for the check."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            if request.method not in SAFE_METHODS and is_read_only():
                response = JsonResponse(
                    error_body("read_only", "The site is in read-only mode for maintenance; retry later."),
                    status=503,
                )
                response["Retry-After"] = str(settings.READ_ONLY_RETRY_AFTER_SECONDS)
                return response
        elif request.path.startswith("/admin/"):
            request.read_only = is_read_only()  # type: ignore[attr-defined]
        return self.get_response(request)
