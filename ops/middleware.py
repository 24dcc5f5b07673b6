"""The ops app's middleware: customer reads timed as the client sees them, by the layer that
answered; and read-only mode at the edge, the one place that knows which requests are writes."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from hybridsite.errors import error_body
from projections.readpath import dynamodb_breaker, home_dynamodb_breaker, redis_breaker

from .instruments import BREAKER_OPEN, read_observe
from .readonly import is_read_only

BREAKERS = (redis_breaker, dynamodb_breaker, home_dynamodb_breaker)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadMetricsMiddleware:
    """Records every response that says ``X-Served-From`` (the customer API sets it on each answer,
    errors included), and this process's breaker states when they change: a gauge write per
    request would cost more than the read it measures."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.breaker_states: dict[str, bool] = {}

    def __call__(self, request):
        started = perf_counter()
        response = self.get_response(request)
        served_from = response.headers.get("X-Served-From")
        if served_from is not None:
            read_observe(request.resolver_match.url_name, served_from, response.status_code, perf_counter() - started)
            self._breakers_report()
        return response

    def _breakers_report(self) -> None:
        for breaker in BREAKERS:
            is_open = breaker.is_open
            if self.breaker_states.get(breaker.name) is not is_open:
                BREAKER_OPEN.labels(breaker.name).set(int(is_open))
                self.breaker_states[breaker.name] = is_open


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
